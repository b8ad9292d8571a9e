// Retention (storage limitation): sampling days older than the window lose their personal data
// (engine/ops/retention.py). A day's aggregates and its marker are written in one transaction before
// anything of it is deleted; the deletion then goes a batch of tubes per transaction.

// name: retention_next_day -> value
// params: after
// The first sampling or reporting day after `after` that has data: two index reads in order,
// one row each (the days before the window are walked this way, not day by day).
CALL () {
  MATCH (r:Registration)
  WHERE r.day > $after
  RETURN r.day AS day
  ORDER BY r.day
  LIMIT 1
  UNION
  MATCH (x:Result)
  WHERE x.day > $after
  RETURN x.day AS day
  ORDER BY x.day
  LIMIT 1
}
RETURN min(day) AS day

// name: retention_markers -> rows
MATCH (d:RetentionDay)
RETURN d.day AS day, d.state AS state
ORDER BY day

// name: retention_day_tubes -> rows
// params: day
// The tubes a day names: swabbed into that day, or reported that day (a tube known only from
// its result has no registration).
CALL () {
  MATCH (r:Registration {day: $day})-[:INTO_TUBE]->(t:Tube)
  RETURN t.code AS code
  UNION
  MATCH (x:Result {day: $day})-[:FOR_TUBE]->(t:Tube)
  RETURN t.code AS code
}
RETURN code
ORDER BY code

// name: retention_tube_verdicts -> rows
// params: codes, cutoff
// Why each tube is kept (null: it goes). A confirmed case, an open task or a registration or
// result inside the window keeps the whole tube (every registration in it, every person of
// those), so a kept tube's trace stays what it was. What a tube that goes takes with it.
UNWIND $codes AS code
MATCH (t:Tube {code: code})
RETURN code,
  CASE
    WHEN EXISTS { (t)<-[:CONFIRMED_BY|FROM_POOL]-(:Case) }
      OR EXISTS { (t)<-[:INTO_TUBE]-(:Registration)-[:OF_PERSON]->(:Person)-[:IS_CASE]->(:Case) }
      THEN 'case'
    WHEN EXISTS { (t)<-[:FOR_TUBE|RETEST_IN]-(k:Task) WHERE k.status <> 'closed' }
      OR EXISTS { (t)<-[:INTO_TUBE]-(:Registration)-[:OF_PERSON]->(:Person)<-[:FOR_PERSON]-(k:Task)
                  WHERE k.status <> 'closed' }
      THEN 'open_task'
    WHEN EXISTS { (t)<-[:INTO_TUBE]-(r:Registration) WHERE r.day >= $cutoff }
      OR EXISTS { (t)<-[:FOR_TUBE]-(x:Result) WHERE x.day >= $cutoff }
      THEN 'window'
  END AS kept,
  COUNT { (t)<-[:INTO_TUBE]-(:Registration) } AS registrations,
  COUNT { (t)<-[:FOR_TUBE]-(:Result) } AS results,
  COUNT { (t)<-[:FOR_TUBE]-(k:Task) WHERE k.status = 'closed' } AS tasks,
  apoc.coll.toSet([(t)<-[:INTO_TUBE]-(:Registration)-[:OF_PERSON]->(p:Person) | p.person_id])
    AS persons,
  apoc.coll.toSet([(t)<-[:INTO_TUBE]-(:Registration)-[:IN_BOX]->(b:Box) | b.code]) AS boxes

// name: retention_lock_tubes -> value
// params: codes
UNWIND $codes AS code
MATCH (t:Tube {code: code})
SET t._lock = true
REMOVE t._lock
RETURN count(t) AS n

// name: retention_delete_tubes -> value
// params: codes
// The tubes that go, with their registrations, results and closed tasks. Their persons and
// boxes are marked `RetentionPending` in the same transaction: what they are left with is
// looked at next (retention_delete_persons, ...), and again by a purge run after a stop.
UNWIND $codes AS code
MATCH (t:Tube {code: code})
CALL (t) {
  OPTIONAL MATCH (t)<-[:INTO_TUBE]-(r:Registration)
  OPTIONAL MATCH (r)-[:OF_PERSON]->(p:Person)
  OPTIONAL MATCH (r)-[:IN_BOX]->(b:Box)
  WITH collect(DISTINCT r) AS regs, collect(DISTINCT p) AS persons, collect(DISTINCT b) AS boxes
  FOREACH (n IN persons + boxes | SET n:RetentionPending)
  FOREACH (r IN regs | DETACH DELETE r)
}
CALL (t) {
  OPTIONAL MATCH (t)<-[:FOR_TUBE]-(x:Result)
  WITH collect(x) AS results
  FOREACH (x IN results | DETACH DELETE x)
}
CALL (t) {
  OPTIONAL MATCH (t)<-[:FOR_TUBE]-(k:Task)
  WHERE k.status = 'closed'
  WITH collect(k) AS tasks
  FOREACH (k IN tasks | DETACH DELETE k)
}
DETACH DELETE t
RETURN count(*) AS tubes

// name: retention_pending -> rows
// params: limit
// Persons and boxes whose tubes went and whose own fate is still to be looked at.
MATCH (n:RetentionPending)
RETURN n.person_id AS person_id, CASE WHEN n:Box THEN n.code END AS box_code
LIMIT $limit

// name: retention_person_facts -> rows
// params: person_ids
UNWIND $person_ids AS pid
MATCH (p:Person {person_id: pid})
RETURN pid AS person_id,
  EXISTS { (p)-[:IS_CASE]->(:Case) }
    OR EXISTS { (p)<-[:FOR_PERSON]-(k:Task) WHERE k.status <> 'closed' } AS protected,
  EXISTS { (p)<-[:DESCRIBES]-(:DirectoryEntry) } AS directory,
  [(p)<-[:OF_PERSON]-(r:Registration)-[:INTO_TUBE]->(t:Tube) | {day: r.day, tube: t.code}]
    AS registrations,
  [(p)<-[:FOR_PERSON]-(:Task)-[:FOR_TUBE]->(t:Tube) | t.code] AS task_tubes,
  [(p)-[:HAS_DAY]->(d:PersonDay) | {day: d.day}] AS days

// name: retention_box_facts -> rows
// params: box_codes
UNWIND $box_codes AS code
MATCH (b:Box {code: code})
RETURN code AS box_code,
  apoc.coll.toSet([(b)<-[:IN_BOX]-(:Registration)-[:INTO_TUBE]->(t:Tube) | t.code]) AS tubes

// name: retention_delete_persons -> row
// params: person_ids
// Checked again under the person's lock: nothing left (no registration, task, case or
// directory entry); the person's days go with it.
UNWIND $person_ids AS pid
MATCH (p:Person {person_id: pid})
SET p._lock = true
REMOVE p._lock
WITH p
WHERE NOT EXISTS { (p)<-[:OF_PERSON]-(:Registration) }
  AND NOT EXISTS { (p)<-[:FOR_PERSON]-(:Task) }
  AND NOT EXISTS { (p)-[:IS_CASE]->(:Case) }
  AND NOT EXISTS { (p)<-[:DESCRIBES]-(:DirectoryEntry) }
CALL (p) {
  OPTIONAL MATCH (p)-[:HAS_DAY]->(d:PersonDay)
  WITH collect(d) AS days
  FOREACH (d IN days | DETACH DELETE d)
  RETURN size(days) AS days
}
DETACH DELETE p
RETURN count(*) AS persons, sum(days) AS person_days

// name: retention_delete_person_days -> value
// params: person_ids, cutoff
// A staying person's days older than the window with no registration of that day left.
UNWIND $person_ids AS pid
MATCH (p:Person {person_id: pid})-[:HAS_DAY]->(d:PersonDay)
WHERE d.day < $cutoff AND NOT EXISTS { (p)<-[:OF_PERSON]-(r:Registration) WHERE r.day = d.day }
DETACH DELETE d
RETURN count(*) AS person_days

// name: retention_delete_boxes -> value
// params: box_codes, cutoff
// A box with no registration left goes; a box that stays loses the days it was filled on that
// are older than the window and have no registration of it left. Looked at under the box's
// lock, as a load links to it under that lock (cypher/ingest.cypher, merge_boxes): a load
// that found it commits first, and its registration is seen here.
UNWIND $box_codes AS code
MATCH (b:Box {code: code})
SET b._lock = true
REMOVE b._lock
WITH b
CALL (b) {
  OPTIONAL MATCH (b)-[f:FILLED_AT]->(:Compound)
  WHERE f.day < $cutoff AND NOT EXISTS { (b)<-[:IN_BOX]-(r:Registration) WHERE r.day = f.day }
  WITH collect(f) AS stale
  FOREACH (f IN stale | DELETE f)
}
WITH b
WHERE NOT EXISTS { (b)<-[:IN_BOX]-(:Registration) }
DETACH DELETE b
RETURN count(*) AS boxes

// name: retention_settle -> value
// params: person_ids, box_codes
// Looked at: no longer pending.
UNWIND $person_ids + $box_codes AS key
OPTIONAL MATCH (p:RetentionPending:Person {person_id: key})
OPTIONAL MATCH (b:RetentionPending:Box {code: key})
FOREACH (n IN [x IN [p, b] WHERE x IS NOT NULL] | REMOVE n:RetentionPending)
RETURN count(*) AS n

// name: retention_events_through -> value
// The event numbers the retention has deleted: every event up to this one is gone.
OPTIONAL MATCH (m:Meta {key: 'events_purged_through'})
RETURN toInteger(coalesce(m.value, '0')) AS through

// name: retention_old_events -> rows
// params: after, cutoff, window_start, limit
// The outbox from its oldest event on, each saying whether it is older than the window: a
// status change by the day it is about, a task event by its task's result day (a task that
// went with its tube is old), anything else by when it happened.
MATCH (e:Event)
WHERE e.seq > $after
WITH e
ORDER BY e.seq
LIMIT $limit
OPTIONAL MATCH (k:Task {task_id: e.task_id})
RETURN e.seq AS seq,
  coalesce(
    CASE
      WHEN coalesce(e.type, 'status.changed') = 'status.changed' THEN e.day < $cutoff
      WHEN e.task_id IS NOT NULL THEN k IS NULL OR k.result_day < $cutoff
    END,
    datetime(e.occurred_at) < $window_start) AS old
ORDER BY seq

// name: retention_count_deliveries -> value
// params: bound
// Deliveries are numbered by their event (`dl_<seq, 12 digits>_...`): those below the bound are
// the deliveries of the events up to it.
MATCH (d:Delivery)
WHERE d.delivery_id < $bound
RETURN count(d) AS n

// name: retention_delete_deliveries -> value
// params: bound, limit
MATCH (d:Delivery)
WHERE d.delivery_id < $bound
WITH d
LIMIT $limit
DETACH DELETE d
RETURN count(*) AS n

// name: retention_delete_events -> value
// params: through, limit
// The oldest events up to `through`, a batch at a time; the mark moves with them.
MATCH (e:Event)
WHERE e.seq <= $through
WITH e
ORDER BY e.seq
LIMIT $limit
WITH collect(e) AS events
FOREACH (e IN events | DELETE e)
MERGE (m:Meta {key: 'events_purged_through'})
  ON CREATE SET m.value = '0'
SET m.value = toString(CASE WHEN toInteger(m.value) > $through THEN toInteger(m.value)
                            ELSE $through END)
RETURN size(events) AS n

// name: retention_day_tube_stats -> rows
// params: day
// A sampling day's tubes per compound: pooled or single (as a person's status counts them),
// positive, and the outcomes of their tasks (`open` while open).
MATCH (r:Registration {day: $day})-[:INTO_TUBE]->(t:Tube)
OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
WITH c.code AS compound_code, t, count(r) AS registrations, max(r.pool_size) AS max_pool
CALL (t) {
  OPTIONAL MATCH (t)<-[:FOR_TUBE]-(k:Task)
  RETURN collect(CASE WHEN k IS NULL THEN null WHEN k.status = 'closed'
                      THEN coalesce(k.outcome, 'closed') ELSE 'open' END) AS tasks
}
WITH compound_code, registrations, tasks,
     COUNT { (t)<-[:INTO_TUBE]-() } > 1 OR coalesce(max_pool, 0) > 1 AS pooled,
     EXISTS { (t)<-[:FOR_TUBE]-(x:Result) WHERE x.result = 'positive' } AS positive
RETURN compound_code, sum(registrations) AS registrations, count(*) AS tubes,
       sum(CASE WHEN pooled THEN 1 ELSE 0 END) AS tubes_pooled,
       sum(CASE WHEN positive THEN 1 ELSE 0 END) AS positive_tubes,
       apoc.coll.frequenciesAsMap(apoc.coll.flatten(collect(tasks))) AS tasks

// name: retention_day_person_stats -> rows
// params: day
// A sampling day's persons per compound and their statuses of that day.
MATCH (r:Registration {day: $day})-[:OF_PERSON]->(p:Person)
OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
WITH DISTINCT c.code AS compound_code, p
OPTIONAL MATCH (p)-[:HAS_DAY]->(d:PersonDay {day: $day})
RETURN compound_code, count(p) AS persons,
       apoc.coll.frequenciesAsMap(collect(coalesce(d.status, 'none'))) AS statuses

// name: retention_store_day -> value
// params: day, aggregates, marker
// A day's aggregates and its marker in one transaction: a day is marked only with its
// aggregates written, and nothing of it is deleted before it is marked.
CALL () {
  UNWIND $aggregates AS a
  MERGE (x:DayAggregate {key: a.key})
  SET x += a
}
MERGE (m:RetentionDay {day: $day})
SET m += $marker
RETURN m.day AS day

// name: retention_mark_purged -> value
// params: days, now
UNWIND $days AS day
MATCH (m:RetentionDay {day: day})
SET m.state = 'purged', m.purged_at = $now
RETURN count(m) AS n

// name: retention_purged_tube_day -> row?
// params: code
// The purged day whose tube codes span this one (a few nodes: one a purged day).
MATCH (d:RetentionDay)
WHERE d.tube_min <= $code AND $code <= d.tube_max
RETURN d.day AS day, d.keep_days AS keep_days
ORDER BY day DESC
LIMIT 1

// name: retention_stored_report -> value?
// params: key
MATCH (a:DayAggregate {key: $key})
RETURN a.rows AS rows

// name: retention_claim_run -> value?
// params: today, now, stale
// The day's run of the serve job, claimed by one process: not yet run today, or a run that
// failed or stalled (begun before `stale`).
MERGE (m:Meta {key: 'retention_run'})
SET m._lock = true
REMOVE m._lock
WITH m
WHERE coalesce(m.value, '') < $today OR (m.state <> 'done' AND m.at < $stale)
SET m.value = $today, m.state = 'running', m.at = $now
RETURN m.value AS day

// name: retention_run_done -> value?
// params: today, state, now
MATCH (m:Meta {key: 'retention_run'})
WHERE m.value = $today
SET m.state = $state, m.at = $now
RETURN m.value AS day
