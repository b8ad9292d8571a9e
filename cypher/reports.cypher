// The day's positives, exposure rings and the data behind the investigator reports.

// name: positive_tubes_of_day -> rows
// params: day, district_code
// Every (residence district, positive tube) pair of the day, in sort_key order (pages of it:
// engine/analysis/reports.py, positives_page).
MATCH (x:Result {result: 'positive', day: $day})
USING INDEX SEEK x:Result(result, day)
MATCH (x)-[:FOR_TUBE]->(t:Tube)
WITH DISTINCT t
CALL (t) {
  // The residence rule of cypher/directory.cypher: own compound, else the fallback.
  OPTIONAL MATCH (t)<-[:INTO_TUBE]-(r:Registration)
  OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
  OPTIONAL MATCH (rc:Compound {code: r.residence_code})
  WITH collect(DISTINCT CASE WHEN c.known THEN coalesce(c.district_code, 'unassigned')
                             WHEN rc.known THEN coalesce(rc.district_code, 'unassigned')
                             ELSE 'unassigned' END) AS ds
  UNWIND CASE WHEN size(ds) = 0 THEN ['unassigned'] ELSE ds END AS district_code
  RETURN district_code
}
WITH district_code, t.code AS tube_code, district_code + '|' + t.code AS sort_key
WHERE $district_code IS NULL OR district_code = $district_code
RETURN district_code, tube_code, sort_key
ORDER BY sort_key

// name: case_of_person -> row?
// params: person_id
MATCH (c:Case {person_id: $person_id})
USING INDEX SEEK c:Case(person_id)
OPTIONAL MATCH (c)-[:FROM_POOL]->(pool:Tube)
RETURN c {.person_id, .confirmed_at, .collected_at, .compound_code} AS case,
       collect(pool.code) AS pools

// name: ring_same_compound_day -> rows
// params: person_id, pools, after, limit
MATCH (p:Person {person_id: $person_id})<-[:OF_PERSON]-(r:Registration)-[:INTO_TUBE]->(t:Tube)
USING INDEX SEEK p:Person(person_id)
WHERE t.code IN $pools
MATCH (r)-[:AT_COMPOUND]->(c:Compound)
// Expand from the compound and filter by day after: never from the day index.
UNWIND [(c)<-[:AT_COMPOUND]-(o:Registration) | o] AS other
WITH p, r, t, other
// Paged by the (source, record_id) key: two senders may use one record_id.
WHERE other.day = r.day AND other.reg_key > $after AND NOT (other)-[:INTO_TUBE]->(t)
MATCH (other)-[:OF_PERSON]->(q:Person)
WHERE q <> p
MATCH (other)-[:INTO_TUBE]->(ot:Tube)
RETURN DISTINCT other.reg_key AS reg_key, other.record_id AS record_id,
       ot.code AS tube_code, q.person_id AS person_id
ORDER BY reg_key
LIMIT $limit

// name: cases_until -> rows
// params: until
MATCH (c:Case)
WHERE c.collected_at <= $until AND c.compound_code IS NOT NULL
RETURN c.compound_code AS compound_code, max(c.collected_at) AS last_case

// name: known_compounds -> rows
MATCH (c:Compound)
WHERE c.known
RETURN c.code AS code, c.name AS name, c.district_code AS district_code
ORDER BY code

// name: tasks_of_day -> rows
// params: day, district_code
// Times as epoch milliseconds: the driver builds a datetime in Python for each value (four a
// task; 444,168 tasks on a 26 M day), an integer costs nothing.
MATCH (k:Task {result_day: $day})
USING INDEX SEEK k:Task(result_day)
WHERE $district_code IS NULL OR k.district_code = $district_code
RETURN k.district_code AS district_code, k.status AS status,
       k.result_at.epochMillis AS result_ms, k.acknowledged_at.epochMillis AS acknowledged_ms,
       k.closed_at.epochMillis AS closed_ms, k.created_at.epochMillis AS created_ms
