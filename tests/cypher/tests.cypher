// Queries of the tests only (tests/helpers.py, TEST_BOOK, on top of cypher/ and bench/cypher/):
// counts, dumps and tampering that the product never runs. Not shipped.

// name: count_audit -> value
// params: action, key_id
MATCH (a:Audit)
WHERE ($action IS NULL OR a.action = $action) AND ($key_id IS NULL OR a.key_id = $key_id)
RETURN count(a) AS n

// name: dump_nodes -> rows
MATCH (n)
WHERE NOT n:ConsoleSession AND NOT n:Lease
RETURN labels(n) AS labels, properties(n) AS props

// name: dump_relationships -> rows
MATCH (a)-[r]->(b)
RETURN type(r) AS type, properties(r) AS props, labels(a) AS from_labels,
       properties(a) AS from_props, labels(b) AS to_labels, properties(b) AS to_props

// name: all_person_days -> rows
// params: after, limit
// Paged by person (`limit` persons): a person's day has no key of its own.
MATCH (p:Person)
WHERE p.person_id > $after
WITH p ORDER BY p.person_id LIMIT $limit
MATCH (p)-[:HAS_DAY]->(d:PersonDay)
RETURN p.person_id + '|' + d.day AS key, d.status AS status, d.district_code AS district_code

// name: tamper_delete_audit -> value
// params: seq
// Tests only: what a Neo4j Browser user could do to the audit log.
MATCH (a:Audit {seq: $seq})
DELETE a
RETURN count(*) AS deleted

// name: tamper_edit_audit -> value
// params: seq, target
MATCH (a:Audit {seq: $seq})
SET a.target = $target
RETURN count(*) AS edited

// name: tamper_forget_key_labs -> value
// params: key_id
// Tests only: a lab key as made before lab keys named their labs (issue 21).
MATCH (k:ApiKey {key_id: $key_id})
REMOVE k.labs
RETURN count(k) AS keys

// name: filler_nodes -> nothing
// params: n
// Nodes that only make a wipe take several transactions (tests).
UNWIND range(1, $n) AS i
CREATE (:Filler {i: i})

// name: tube_pool_days -> rows
// Each tube's `pool_day` (engine/model.py), by code.
MATCH (t:Tube)
RETURN t.code AS code, t.pool_day AS pool_day
ORDER BY code

// name: forget_tube_pool_days -> nothing
// Tests only: a store as it was before tubes carried `pool_day` (the schema's backfill then).
MATCH (t:Tube)
REMOVE t.pool_day
WITH count(*) AS tubes
OPTIONAL MATCH (done:Meta {key: 'tube_pool_day'})
DELETE done

// name: datetime_texts -> rows
// params: values
// Datetimes as the database writes them as text (tests of engine/domain.py, iso).
UNWIND $values AS value
RETURN value, toString(value) AS text

// name: fuzz_stored -> rows
// params: kind, keys
UNWIND $keys AS key
CALL (key) {
  OPTIONAL MATCH (c:Compound {code: key})
  WHERE $kind = 'compounds' AND c.known
  RETURN count(c) AS compounds
}
CALL (key) {
  OPTIONAL MATCH (r:Registration {record_id: key})
  WHERE $kind = 'registrations'
  RETURN count(r) AS registrations
}
CALL (key) {
  OPTIONAL MATCH (x:Result)-[:FOR_TUBE]->(:Tube {code: key})
  WHERE $kind = 'results'
  RETURN count(x) AS results
}
WITH key WHERE compounds + registrations + results > 0
RETURN DISTINCT key

// name: stored_record_shapes -> row
// params: reg_key, person_id
// What a registration, its person's days and the latest event keep (tests/integration/test_stored_shapes.py).
MATCH (r:Registration {reg_key: $reg_key})
OPTIONAL MATCH (p:Person {person_id: $person_id})-[:HAS_DAY]->(d:PersonDay)
WITH r, collect(properties(d)) AS days, collect(valueType(d.since)) AS since_types
OPTIONAL MATCH (e:Event)
WITH r, days, since_types, e ORDER BY e.seq DESC LIMIT 1
RETURN properties(r) AS registration, days, since_types, properties(e) AS event,
       valueType(e.occurred_at) AS occurred_at_type

// name: age_registration -> nothing
// params: reg_key, raw, content_hash
// Tests only: a registration as stored before lines were dropped and digests cut to 32 digits.
MATCH (r:Registration {reg_key: $reg_key})
SET r.raw = $raw, r.content_hash = $content_hash

// name: age_store_shapes -> nothing
// params: reg_key, props: map, since: datetime
// Tests only: a registration, its person's days and the status events as stored before the
// second footprint cut: the codes, id_type, source and line on the node, the method by name,
// a day's `since` with its zone (+08:00), every event with its `type`.
MATCH (r:Registration {reg_key: $reg_key})-[:OF_PERSON]->(p:Person)
SET r += $props
WITH p
MATCH (p)-[:HAS_DAY]->(d:PersonDay)
SET d.since = $since
WITH count(*) AS days
MATCH (e:Event)
WHERE e.type IS NULL
SET e.type = 'status.changed'

// name: call_missing_procedure -> rows
// A server without tubetrace's procedures, as the gateway sees it: a procedure it lacks.
CALL tubetrace.no_such_procedure() YIELD value
RETURN value

// name: exposure_rings_cypher -> rows
// params: subjects: list[map], days: int, depth: int, district, after_depth: int, after_person
// exposure_rings as it was before tubetrace.exposure (stop 28, commit 51f86c2): the four
// levels written out in Cypher. test_exposure_procedure.py checks the procedure answers
// exactly this on a generated city (the via's element-id ties and district filter too).
UNWIND $subjects AS subject
MATCH (p:Person {person_id: subject.person_id})
USING INDEX SEEK p:Person(person_id)
CALL (p) {
  OPTIONAL MATCH (p)<-[:OF_PERSON]-(r:Registration)
  RETURN max(r.day) AS latest
}
WITH p, coalesce(subject.until, latest) AS until
WITH p, until, toString(date(until) - duration({days: $days - 1})) AS since
WITH p, since, until, [] AS used, [] AS rings, [p] AS frontier, [p] AS seen
// Ring 1: the person's pooled tubes, the others in them.
CALL (frontier, used, seen, since, until) {
  UNWIND frontier AS f
  WITH f WHERE $depth >= 1
  MATCH (f)<-[:OF_PERSON]-(r)-[:INTO_TUBE]->(t)
  WHERE NOT t IN used
    AND CASE WHEN t.pool_day IS NULL
             THEN r.day >= since AND r.day <= until AND r.pool_size > 1
             ELSE t.pool_day >= since AND t.pool_day <= until END
  WITH collect(DISTINCT t) AS tubes
  CALL (tubes, seen, since, until) {
    UNWIND tubes AS t
    WITH t, t.pool_day AS day, t.code AS code
    MATCH (t)<-[:INTO_TUBE]-(r)-[:OF_PERSON]->(q)
    WHERE NOT q IN seen
      AND (day IS NOT NULL OR (r.day >= since AND r.day <= until AND r.pool_size > 1))
    WITH q, min([coalesce(day, r.day), code, elementId(r)]) AS via
    RETURN collect({q: q, depth: 1, via: via}) AS ring
  }
  RETURN tubes AS tubes1, ring AS ring1
}
WITH p, since, until, used + tubes1 AS used, rings + ring1 AS rings,
     [x IN ring1 | x.q] AS frontier, seen + [x IN ring1 | x.q] AS seen
// Ring 2: the same step from ring 1.
CALL (frontier, used, seen, since, until) {
  UNWIND frontier AS f
  WITH f WHERE $depth >= 2
  MATCH (f)<-[:OF_PERSON]-(r)-[:INTO_TUBE]->(t)
  WHERE NOT t IN used
    AND CASE WHEN t.pool_day IS NULL
             THEN r.day >= since AND r.day <= until AND r.pool_size > 1
             ELSE t.pool_day >= since AND t.pool_day <= until END
  WITH collect(DISTINCT t) AS tubes
  CALL (tubes, seen, since, until) {
    UNWIND tubes AS t
    WITH t, t.pool_day AS day, t.code AS code
    MATCH (t)<-[:INTO_TUBE]-(r)-[:OF_PERSON]->(q)
    WHERE NOT q IN seen
      AND (day IS NOT NULL OR (r.day >= since AND r.day <= until AND r.pool_size > 1))
    WITH q, min([coalesce(day, r.day), code, elementId(r)]) AS via
    RETURN collect({q: q, depth: 2, via: via}) AS ring
  }
  RETURN tubes AS tubes2, ring AS ring2
}
WITH p, since, until, used + tubes2 AS used, rings + ring2 AS rings,
     [x IN ring2 | x.q] AS frontier, seen + [x IN ring2 | x.q] AS seen
// Ring 3: the same step from ring 2.
CALL (frontier, used, seen, since, until) {
  UNWIND frontier AS f
  WITH f WHERE $depth >= 3
  MATCH (f)<-[:OF_PERSON]-(r)-[:INTO_TUBE]->(t)
  WHERE NOT t IN used
    AND CASE WHEN t.pool_day IS NULL
             THEN r.day >= since AND r.day <= until AND r.pool_size > 1
             ELSE t.pool_day >= since AND t.pool_day <= until END
  WITH collect(DISTINCT t) AS tubes
  CALL (tubes, seen, since, until) {
    UNWIND tubes AS t
    WITH t, t.pool_day AS day, t.code AS code
    MATCH (t)<-[:INTO_TUBE]-(r)-[:OF_PERSON]->(q)
    WHERE NOT q IN seen
      AND (day IS NOT NULL OR (r.day >= since AND r.day <= until AND r.pool_size > 1))
    WITH q, min([coalesce(day, r.day), code, elementId(r)]) AS via
    RETURN collect({q: q, depth: 3, via: via}) AS ring
  }
  RETURN tubes AS tubes3, ring AS ring3
}
WITH p, since, until, used + tubes3 AS used, rings + ring3 AS rings,
     [x IN ring3 | x.q] AS frontier, seen + [x IN ring3 | x.q] AS seen
// Ring 4: the same step from ring 3.
CALL (frontier, used, seen, since, until) {
  UNWIND frontier AS f
  WITH f WHERE $depth >= 4
  MATCH (f)<-[:OF_PERSON]-(r)-[:INTO_TUBE]->(t)
  WHERE NOT t IN used
    AND CASE WHEN t.pool_day IS NULL
             THEN r.day >= since AND r.day <= until AND r.pool_size > 1
             ELSE t.pool_day >= since AND t.pool_day <= until END
  WITH collect(DISTINCT t) AS tubes
  CALL (tubes, seen, since, until) {
    UNWIND tubes AS t
    WITH t, t.pool_day AS day, t.code AS code
    MATCH (t)<-[:INTO_TUBE]-(r)-[:OF_PERSON]->(q)
    WHERE NOT q IN seen
      AND (day IS NOT NULL OR (r.day >= since AND r.day <= until AND r.pool_size > 1))
    WITH q, min([coalesce(day, r.day), code, elementId(r)]) AS via
    RETURN collect({q: q, depth: 4, via: via}) AS ring
  }
  RETURN tubes AS tubes4, ring AS ring4
}
WITH p, since, until, used + tubes4 AS used, rings + ring4 AS rings,
     [x IN ring4 | x.q] AS frontier, seen + [x IN ring4 | x.q] AS seen
// The residence rule of cypher/directory.cypher: the own compound when known, else the
// fallback; `unassigned` when neither is.
CALL (p, since, until) {
  OPTIONAL MATCH (p)<-[:OF_PERSON]-(r:Registration)
  WHERE r.day >= since AND r.day <= until
  OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
  OPTIONAL MATCH (rc:Compound {code: r.residence_code})
  RETURN collect(DISTINCT coalesce(CASE WHEN c.known THEN c.district_code
                                        WHEN rc.known THEN rc.district_code END,
                                   'unassigned')) AS districts
}
CALL (rings) {
  UNWIND rings AS m
  WITH m, m.q.person_id AS person_id
  // The district check only when one is asked for (a SelectOrSemiApply: the subquery is not
  // run when $district is null).
  WHERE (m.depth > $after_depth OR (m.depth = $after_depth AND person_id > $after_person))
    AND ($district IS NULL OR EXISTS {
      MATCH (r:Registration)
      WHERE elementId(r) = m.via[2]
      OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
      OPTIONAL MATCH (rc:Compound {code: r.residence_code})
      WITH c, rc
      WHERE coalesce(CASE WHEN c.known THEN c.district_code
                          WHEN rc.known THEN rc.district_code END, 'unassigned') = $district
    })
  WITH m, person_id
  ORDER BY m.depth, person_id
  // Four lists of plain values, not a list of maps: the driver builds a map in Python at
  // ~30 us an item (a quarter of a 1,000-person ring 4's time at 100 k registrations).
  RETURN collect(m.depth) AS depths, collect(person_id) AS person_ids, collect(m.via[0]) AS days,
         collect(m.via[1]) AS tube_codes
}
RETURN p.person_id AS person_id, since, until, districts, depths, person_ids, days, tube_codes

// name: plant_big_pool -> value
// params: code, day, size: int
// A pooled tube of $size persons with a positive result (tests/system/test_memory.py): far
// larger than any real pool, as much as a whole city's rings or clusters would hold.
CREATE (t:Tube {code: $code, pool_day: $day})
WITH t
UNWIND range(1, $size) AS i
CREATE (p:Person {person_id: $code + '_p' + toString(i)})
CREATE (r:Registration {reg_key: $code + '/' + toString(i), day: $day, pool_size: $size})
CREATE (r)-[:INTO_TUBE]->(t), (r)-[:OF_PERSON]->(p)
WITH t, count(*) AS n
CREATE (:Result {result_key: $code + '/result', result: 'positive', day: $day})-[:FOR_TUBE]->(t)
RETURN n

// name: exposure_count -> value
// params: person_id, since, until, depth: int
// The procedure alone, its members counted: Cypher holds nothing of them, so a transaction's
// memory limit sees only what the procedure counts of its own (tests/system/test_memory.py).
MATCH (p:Person {person_id: $person_id})
CALL tubetrace.exposure(p, $since, $until, $depth) YIELD depths
RETURN size(depths) AS n

// name: clusters_count -> value
// params: since, until
// The clusters procedure alone over every positive tube, its clusters counted: Cypher holds
// only the tubes (tests/system/test_memory.py).
MATCH (x:Result {result: 'positive'})-[:FOR_TUBE]->(t)
WITH collect(DISTINCT t) AS tubes
CALL tubetrace.clusters(tubes, $since, $until, 3) YIELD members
RETURN count(*) AS n

// name: registration_marks -> rows
// The marks the loaders keep (cypher/ingest.cypher): duplicate registrations, unplaced persons.
CALL () {
  OPTIONAL MATCH (r:Registration)
  WHERE r.duplicate
  RETURN collect(r.reg_key) AS duplicates
}
CALL () {
  OPTIONAL MATCH (p:Person)
  WHERE p.unplaced
  RETURN collect(p.person_id) AS unplaced
}
RETURN duplicates, unplaced

// name: forget_registration_marks -> nothing
// Tests only: a store as it was before the marks (the schema's backfills then).
CALL () {
  MATCH (r:Registration)
  REMOVE r.duplicate
}
CALL () {
  MATCH (p:Person)
  REMOVE p.unplaced
}
CALL () {
  MATCH (done:Meta)
  WHERE done.key IN ['registration_duplicate', 'person_unplaced']
  DELETE done
}

// name: registration_marks_done -> nothing
// Tests only: the backfills' Meta nodes, as a store that had them done.
UNWIND ['registration_duplicate', 'person_unplaced'] AS key
MERGE (done:Meta {key: key})
  ON CREATE SET done.value = 'set'

// name: person_last_days -> rows
// Each person's `last_day` (cypher/ingest.cypher, mark_person_last_days), when set.
MATCH (p:Person)
WHERE p.last_day IS NOT NULL
RETURN p.person_id AS person_id, p.last_day AS last_day
ORDER BY person_id

// name: forget_last_days -> nothing
// Tests only: persons as a bulk import or an older store leaves them, without `last_day`.
MATCH (p:Person)
REMOVE p.last_day
