// Person status per sampling day, the event outbox (status changes and task events) and the
// status-changes feed. Events are numbered by one counter node whose write lock is held until
// commit, so event numbers grow in commit order and a reader paging by number misses nothing.

// name: status_lock_persons -> rows
// params: tube_codes
// The persons swabbed into these tubes, write-locked in a fixed order: two transactions that
// touch the same person derive its status one after the other, each from committed data.
UNWIND $tube_codes AS code
MATCH (:Tube {code: code})<-[:INTO_TUBE]-(:Registration)-[:OF_PERSON]->(p:Person)
WITH DISTINCT p
ORDER BY p.person_id
WITH collect(p) AS persons
CALL apoc.lock.nodes(persons)
UNWIND persons AS p
RETURN p.person_id AS person_id

// name: status_inputs -> rows
// params: person_ids, tube_codes
// With $tube_codes (what changed: engine/feed/status.py, refresh), only what the statuses of
// the days those tubes can change are made of, and `from`, the first of those days: the
// earliest day of a registration in one of the tubes or in a tube whose status is told from
// later samples (status.tube_status: invalid, or pooled and ever positive). A day before it
// has only tubes whose status reads nothing later, so it keeps its status. Read: every
// registration of the days from `from` on, and every one swabbed after the earliest tube that
// reads later samples (a day and the swab's time agree unless the time zone changed between
// loads; the caller stores the days from `from` on only). Reading the whole history made a
// day's results cost more with every day the store keeps. $tube_codes null: every day.
UNWIND $person_ids AS pid
MATCH (p:Person {person_id: pid})
USING INDEX SEEK p:Person(person_id)
CALL (p) {
  OPTIONAL MATCH (p)<-[:OF_PERSON]-(r:Registration)-[:INTO_TUBE]->(t:Tube)
  WHERE $tube_codes IS NOT NULL
  WITH r, t, (r.pool_size IS NULL OR r.pool_size = 1) AND COUNT { (t)<-[:INTO_TUBE]-() } <= 1
             AS single
  WITH r, t.code IN $tube_codes AS touched,
       EXISTS { (t)<-[:FOR_TUBE]-(x:Result)
                WHERE x.result = 'invalid' OR (x.result = 'positive' AND NOT single) } AS later
  WHERE touched OR later
  RETURN min(r.day) AS from, min(CASE WHEN later THEN r.collected_at END) AS from_at
}
CALL (p, from, from_at) {
  MATCH (p)<-[:OF_PERSON]-(r:Registration)-[:INTO_TUBE]->(t:Tube)
  WHERE $tube_codes IS NULL OR r.day >= from OR r.collected_at >= from_at
  CALL (t) {
    OPTIONAL MATCH (t)<-[:FOR_TUBE]-(x:Result)
    WHERE x.result IN ['positive', 'negative', 'invalid']
    // The last is the latest; a result without a readable time, or from the future (later
    // than now plus 10 minutes: cypher/trace.cypher), never is (it comes first).
    WITH x, CASE WHEN 'future_reported_at' IN coalesce(x.flags, [])
                   OR x.reported_at > datetime() + duration('PT10M') THEN NULL
                 ELSE x.reported_at END AS ranked
    ORDER BY ranked IS NOT NULL, ranked, x.reported_at, x.lab_code
    RETURN collect(x {.result, .reported_at}) AS results
  }
  // Only registrations point INTO_TUBE: a degree read, not an expansion.
  WITH p, r, t, results, COUNT { (t)<-[:INTO_TUBE]-() } AS members
  OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
  // The residence rule of cypher/directory.cypher: own compound, else the fallback.
  OPTIONAL MATCH (rc:Compound {code: r.residence_code})
  RETURN collect({record_id: r.record_id, tube_code: t.code, day: r.day,
                  collected_at: r.collected_at, pool_size: r.pool_size, name: r.name,
                  members: members, max_pool: coalesce(r.pool_size, 0),
                  result: CASE WHEN size(results) > 0 THEN results[-1].result END,
                  // A positive pool stays positive until the single-tube retests: a later
                  // negative of the same tube (result_conflict) releases nobody.
                  was_positive: any(x IN results WHERE x.result = 'positive'),
                  reported_at: CASE WHEN size(results) > 0 THEN results[-1].reported_at END,
                  district_code: CASE WHEN c.known THEN c.district_code
                                      WHEN rc.known THEN rc.district_code END}) AS regs
}
CALL (p) {
  OPTIONAL MATCH (p)-[:HAS_DAY]->(d:PersonDay)
  RETURN collect(d {.day, .status}) AS stored
}
RETURN p.person_id AS person_id, p.id_type AS id_type, p.id_number AS id_number, regs, stored,
       from

// name: upsert_person_days -> value
// params: days, now
UNWIND $days AS d
MATCH (p:Person {person_id: d.person_id})
USING INDEX SEEK p:Person(person_id)
// Under the person's lock (status_lock_persons): one day per person and day without a key.
MERGE (p)-[:HAS_DAY]->(pd:PersonDay {day: d.day})
// `since` a local time in UTC: one property block less than a datetime with its zone, and a
// person's day fits two property records instead of three (docs/footprint.md).
SET pd.status = d.status,
    pd.since = localdatetime({datetime: datetime({datetime: $now, timezone: 'UTC'})}),
    pd.district_code = d.district_code
RETURN count(pd) AS n

// name: create_person_days -> nothing
// params: days, now
// Days that do not exist yet, as new_registration_facts found them with their persons locked.
UNWIND $days AS d
MATCH (p:Person {person_id: d.person_id})
USING INDEX SEEK p:Person(person_id)
CREATE (p)-[:HAS_DAY]->(:PersonDay {day: d.day, status: d.status,
                                    since: localdatetime({datetime: datetime({datetime: $now,
                                                                              timezone: 'UTC'})}),
                                    district_code: d.district_code})

// name: append_events -> nothing
// params: events
// Taken last in every transaction that writes events: the lock on the counter orders commits.
// The Eager barriers left hold the one row of the counter, not the events created after it.
MERGE (s:Sequence {name: 'events'})
  ON CREATE SET s.value = 0
SET s.value = s.value + size($events)
WITH s.value - size($events) AS base
UNWIND range(0, size($events) - 1) AS i
// `occurred_at` kept as a datetime (an ISO text went to the string store), no `event_id`
// (it is 'evt_' + seq) and no `type` on a status change (the most of them; a task event keeps
// its type): the readers' projections give all three back (docs/footprint.md).
CREATE (n:Event)
SET n = CASE WHEN $events[i].type = 'status.changed' THEN apoc.map.removeKey($events[i], 'type')
             ELSE $events[i] END,
    n.occurred_at = datetime($events[i].occurred_at), n.seq = base + i + 1

// name: person_day_status -> row?
// params: person_id, day
MATCH (p:Person {person_id: $person_id})
USING INDEX SEEK p:Person(person_id)
MATCH (p)-[:HAS_DAY]->(d:PersonDay {day: $day})
// The residence rule of cypher/directory.cypher, as for tasks: own compound, else the fallback,
// else the unassigned queue (whose key reads the status of the persons it has to reach).
OPTIONAL MATCH (p)<-[:OF_PERSON]-(r:Registration {day: $day})
OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
OPTIONAL MATCH (rc:Compound {code: r.residence_code})
RETURN d {person_id: p.person_id, .day, .status,
          since: datetime({datetime: d.since, timezone: 'UTC'})} AS status,
       collect(DISTINCT CASE WHEN r IS NULL THEN NULL
                             WHEN c.known THEN c.district_code
                             WHEN rc.known THEN rc.district_code
                             ELSE 'unassigned' END) AS districts

// name: status_changes_page -> rows
// params: after, limit
// Identity is read from the person when the feed is read: the outbox stays small.
MATCH (e:Event)
WHERE e.seq > $after AND coalesce(e.type, 'status.changed') = 'status.changed'
WITH e ORDER BY e.seq LIMIT $limit
OPTIONAL MATCH (p:Person {person_id: e.person_id})
CALL (p, e) {
  OPTIONAL MATCH (p)<-[:OF_PERSON]-(r:Registration {day: e.day})
  WITH r ORDER BY r.collected_at, r.record_id LIMIT 1
  RETURN r.name AS name
}
RETURN e {.*, event_id: 'evt_' + toString(e.seq), occurred_at: toString(e.occurred_at),
          type: coalesce(e.type, 'status.changed'),
          id_type: p.id_type, id_number: p.id_number, name: name} AS event
ORDER BY e.seq

// name: task_event_rows -> rows
// params: task_ids
UNWIND $task_ids AS tid
MATCH (k:Task {task_id: tid})
USING INDEX SEEK k:Task(task_id)
// The registration of the person of the task in the tube of the task: the same record_id of
// another sender is another person, who must not ride along (nor make a second event).
CALL (k) {
  OPTIONAL MATCH (k)-[:FOR_PERSON]->(p:Person)<-[:OF_PERSON]-(r:Registration)-[:INTO_TUBE]->
                 (:Tube)<-[:FOR_TUBE]-(k)
  WITH k, p, r ORDER BY r.record_id = k.record_id DESC, r.collected_at
  RETURN p, r LIMIT 1
}
RETURN k {.*} AS task,
       CASE WHEN p IS NULL THEN NULL ELSE {person_id: p.person_id, id_type: p.id_type,
         id_number: p.id_number, name: r.name, phone: r.phone} END AS person
