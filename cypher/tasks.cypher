// Follow-up tasks: dispatch on results, retest linkage, lifecycle, district queues.

// name: dispatch_context -> rows
// params: result_keys
UNWIND $result_keys AS key
MATCH (x:Result {result_key: key})-[:FOR_TUBE]->(t:Tube)
USING INDEX SEEK x:Result(result_key)
WHERE x.result IN ['positive', 'negative', 'invalid']
CALL (t) {
  OPTIONAL MATCH (t)<-[:INTO_TUBE]-(r:Registration)-[:OF_PERSON]->(p:Person)
  OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
  // The residence rule of cypher/directory.cypher: own compound, else the fallback.
  OPTIONAL MATCH (rc:Compound {code: r.residence_code})
  WITH r, p, c, rc ORDER BY r.collected_at, r.record_id
  RETURN collect(CASE WHEN r IS NULL THEN NULL ELSE {
    person_id: p.person_id, record_id: r.record_id, pool_size: r.pool_size, day: r.day,
    collected_at: r.collected_at, compound_code: c.code,
    district_code: CASE WHEN c.known THEN c.district_code
                        WHEN rc.known THEN rc.district_code END
  } END) AS members
}
CALL (t) {
  OPTIONAL MATCH (t)<-[:RETEST_IN]-(k:Task)
  WHERE k.status = 'retest_collected'
  RETURN collect(k.task_id) AS retest_tasks
}
CALL (t) {
  OPTIONAL MATCH (t)<-[:FOR_TUBE]-(k:Task {kind: 'resample'})
  WHERE k.status <> 'closed'
  RETURN collect(k.task_id) AS open_resample_tasks
}
CALL (t) {
  OPTIONAL MATCH (t)<-[:FOR_TUBE]-(k:Task {kind: 'case'})
  WHERE k.status <> 'closed'
  RETURN collect(k.task_id) AS open_case_tasks
}
CALL (members) {
  UNWIND CASE WHEN size(members) = 1 THEN members ELSE [] END AS m
  MATCH (:Person {person_id: m.person_id})<-[:FOR_PERSON]-(k:Task)
  WHERE k.status <> 'closed'
  RETURN collect(k.task_id) AS person_open_tasks
}
RETURN x.result_key AS key, x.result AS result, x.reported_at AS reported_at, x.day AS day,
       t.code AS tube_code,
       members, retest_tasks, open_resample_tasks, open_case_tasks, person_open_tasks

// name: upsert_tasks -> rows
// params: tasks, now
UNWIND $tasks AS task
MATCH (p:Person {person_id: task.person_id})
USING INDEX SEEK p:Person(person_id)
MATCH (t:Tube {code: task.tube_code})
USING INDEX SEEK t:Tube(code)
MERGE (k:Task {task_id: task.task_id})
  ON CREATE SET k += task.props, k.created_at = $now, k.updated_at = $now,
                k.history = [task.history]
MERGE (k)-[:FOR_PERSON]->(p)
MERGE (k)-[:FOR_TUBE]->(t)
RETURN k.task_id AS task_id, k.created_at = $now AS created

// name: mark_repeat_positive -> value
// params: person_ids
UNWIND $person_ids AS pid
MATCH (p:Person {person_id: pid})
USING INDEX SEEK p:Person(person_id)
WITH p, size(apoc.coll.toSet([
  (p)<-[:OF_PERSON]-(r:Registration)-[:INTO_TUBE]->(:Tube)<-[:FOR_TUBE]-(x:Result)
  WHERE x.result = 'positive' AND r.pool_size > 1 | r.day])) AS days
WHERE days >= 2
MATCH (p)<-[:FOR_PERSON]-(k:Task)
WHERE NOT coalesce(k.repeat_positive_pool, false)
SET k.repeat_positive_pool = true, k.sort_key = '0' + substring(k.sort_key, 1)
RETURN count(k) AS n

// name: link_retests -> rows
// params: reg_keys, now, at
// The write lock on each task is taken before its status is read, so a move made meanwhile by a
// district unit or another loader is seen (check-and-set in one locked step). Registrations by
// their (source, record_id) key: the same record_id of another sender is the swab of another person. A
// retest is a single tube collected after the pool of the task, as in link_earlier_retests, so the
// order in which the files arrive does not matter (when both times are known).
UNWIND $reg_keys AS key
MATCH (r:Registration {reg_key: key})-[:OF_PERSON]->(p:Person)
USING INDEX SEEK r:Registration(reg_key)
WHERE r.pool_size = 1
MATCH (r)-[:INTO_TUBE]->(t:Tube)
MATCH (p)<-[:FOR_PERSON]-(k:Task)
WHERE NOT (k)-[:FOR_TUBE]->(t)
SET k._lock = true
REMOVE k._lock
WITH k, t, r
// Times compared when both are known (an invalid collected_at is a flag, not a later swab).
WHERE k.status <> 'closed' AND coalesce(r.collected_at > k.collected_at, true)
MERGE (k)-[:RETEST_IN]->(t)
WITH k, t, r
WHERE k.status <> 'retest_collected'
SET k.history = k.history + [apoc.convert.toJson({status: 'retest_collected', at: $at,
                  actor: 'system',
                  note: 'single-tube retest ' + r.record_id + ' in tube ' + t.code})],
    k.status = 'retest_collected', k.updated_at = $now
RETURN DISTINCT k.task_id AS task_id

// name: close_tasks -> rows
// params: closes, now, at
// closes: [{task_id, outcome, note}], one row per task.
UNWIND $closes AS c
MATCH (k:Task {task_id: c.task_id})
USING INDEX SEEK k:Task(task_id)
SET k._lock = true
REMOVE k._lock
WITH k, c
WHERE k.status <> 'closed'
SET k.history = k.history + [apoc.convert.toJson({status: 'closed', outcome: c.outcome,
                  at: $at, actor: 'system', note: c.note})],
    k.status = 'closed', k.outcome = c.outcome, k.updated_at = $now,
    k.closed_at = $now
RETURN k.task_id AS task_id

// name: confirm_cases -> rows
// params: cases, now
// cases: [{person_id, tube_code, collected_at, compound_code}]
UNWIND $cases AS cs
MATCH (p:Person {person_id: cs.person_id})
USING INDEX SEEK p:Person(person_id)
MATCH (t:Tube {code: cs.tube_code})
USING INDEX SEEK t:Tube(code)
MERGE (c:Case {person_id: cs.person_id})
  ON CREATE SET c.confirmed_at = $now, c.collected_at = cs.collected_at,
                c.compound_code = cs.compound_code
MERGE (p)-[:IS_CASE]->(c)
MERGE (c)-[:CONFIRMED_BY]->(t)
WITH DISTINCT c, p
OPTIONAL MATCH (p)<-[:FOR_PERSON]-(k:Task)-[:FOR_TUBE]->(pool:Tube)
WHERE k.kind = 'follow_up'
FOREACH (x IN CASE WHEN pool IS NULL THEN [] ELSE [pool] END |
  MERGE (c)-[:FROM_POOL]->(x))
RETURN DISTINCT c.person_id AS person_id

// name: get_task -> value?
// params: task_id
MATCH (k:Task {task_id: $task_id})
USING INDEX SEEK k:Task(task_id)
RETURN k {.*} AS task

// name: lock_task -> value?
// params: task_id
// Takes the write lock on the task first, then reads it: a transition checks what it changes.
MATCH (k:Task {task_id: $task_id})
USING INDEX SEEK k:Task(task_id)
SET k._lock = true
REMOVE k._lock
WITH k
RETURN k {.*} AS task

// name: set_task_status -> value?
// params: task_id, expected, status, outcome, entry, now
MATCH (k:Task {task_id: $task_id})
USING INDEX SEEK k:Task(task_id)
WHERE k.status = $expected
SET k.status = $status, k.outcome = $outcome, k.updated_at = $now,
    k.history = k.history + [$entry],
    k.closed_at = CASE WHEN $status = 'closed' THEN $now ELSE k.closed_at END,
    k.acknowledged_at = CASE WHEN $status = 'acknowledged' AND k.acknowledged_at IS NULL
                        THEN $now ELSE k.acknowledged_at END
RETURN k {.*} AS task

// name: district_tasks -> rows
// params: district_code, status, after, limit
MATCH (k:Task)
USING INDEX SEEK k:Task(district_code, sort_key)
WHERE k.district_code = $district_code AND k.sort_key > $after
  AND ($status IS NULL OR k.status = $status)
// Ordered by the whole index key, the seek itself reads in order and stops at the limit; by
// sort_key alone the planner sorted the whole district (100,899 tasks at 26 M, ~1 s a page).
RETURN k {.*} AS task
ORDER BY k.district_code, k.sort_key
LIMIT $limit

// name: result_keys_of_registrations -> rows
// params: reg_keys
// A negative result counts too: a single-tube retest registered after its negative result
// closes its task as released (the loader sends single tubes only for that).
UNWIND $reg_keys AS key
MATCH (:Registration {reg_key: key})-[:INTO_TUBE]->(t:Tube)<-[:FOR_TUBE]-(x:Result)
WHERE x.result IN ['positive', 'invalid', 'negative']
RETURN DISTINCT x.result_key AS key

// name: link_earlier_retests -> rows
// params: task_ids, now, at
UNWIND $task_ids AS tid
MATCH (k:Task {task_id: tid})-[:FOR_PERSON]->(p:Person)
USING INDEX SEEK k:Task(task_id)
SET k._lock = true
REMOVE k._lock
WITH k, p
WHERE k.status IN ['pending', 'acknowledged', 'contacted', 'unreachable']
  AND k.collected_at IS NOT NULL
MATCH (k)-[:FOR_TUBE]->(pool:Tube)
MATCH (p)<-[:OF_PERSON]-(r:Registration)-[:INTO_TUBE]->(rt:Tube)
WHERE r.pool_size = 1 AND rt <> pool AND r.collected_at > k.collected_at
WITH k, r, rt
ORDER BY r.collected_at
WITH k, collect({r: r, t: rt})[0] AS first
WITH k, first.r AS r, first.t AS rt
SET k.history = k.history + [apoc.convert.toJson({status: 'retest_collected', at: $at,
                  actor: 'system', note: 'single-tube retest ' + r.record_id + ' in tube ' + rt.code})],
    k.status = 'retest_collected', k.updated_at = $now
MERGE (k)-[:RETEST_IN]->(rt)
WITH k, rt
OPTIONAL MATCH (rt)<-[:FOR_TUBE]-(x:Result)
RETURN DISTINCT k.task_id AS task_id, x.result_key AS key
