// Outbreak analysis (engine/analysis/outbreak.py): exposure to any depth, clusters of cases, signals of
// sampling and lab trouble, attack rates by ring. Days are sampling days (`r.day`, text
// YYYY-MM-DD, so that text order is day order); a result's `day` is its reporting day.

// name: exposure_rings -> rows
// params: subjects: list[map], days: int, depth: int, district, after_depth: int, after_person
// For each subject {person_id, until} (until null: the person's latest sampling day), the
// persons at co-pool distance 1..$depth inside the window [until - $days + 1, until], found
// breadth-first by the procedure tubetrace.exposure (engine/server/procedures/tubetrace/
// Exposure.java, built and installed by the managed server): each level takes the pooled
// tubes of the ring before that no earlier level used (each tube expanded once), then the
// persons in them that no earlier level holds. Two registrations are co-pooled when both have
// pool_size > 1 and a day inside the window. Each person carries the (day, tube, registration
// element id) of the earliest registration that put them in their ring. A tube is judged by
// its `pool_day` (engine/model.py: set when all its registrations are pooled and of one day),
// its members then taken without reading their registrations; a tube without one (single, or
// its registrations disagree) by each registration, as the rule says.
// Answers one row per known subject: the window, the districts the subject lives in inside it
// (a district key's check: read only when $district is given, else empty) and the ring
// members ordered by (depth, person_id) after ($after_depth, $after_person), only residents
// of $district when given, as parallel lists.
// The caller cuts the page: a LIMIT here would be planned as a Top that reserves room for
// as many rows as the limit says (no limit runs out of memory).
UNWIND $subjects AS subject
MATCH (p:Person {person_id: subject.person_id})
USING INDEX SEEK p:Person(person_id)
// The person's registrations are read for what the call needs only: its latest day when no
// `until` is given, its districts when a district asks (0.15 ms of a 1.2 ms call otherwise).
CALL (p, subject) {
  OPTIONAL MATCH (p)<-[:OF_PERSON]-(r:Registration)
  WHERE subject.until IS NULL
  RETURN max(r.day) AS latest
}
WITH p, coalesce(subject.until, latest) AS until
WITH p, until, toString(date(until) - duration({days: $days - 1})) AS since
// The residence rule of cypher/directory.cypher: the own compound when known, else the
// fallback; `unassigned` when neither is.
CALL (p, since, until) {
  OPTIONAL MATCH (p)<-[:OF_PERSON]-(r:Registration)
  WHERE $district IS NOT NULL AND r.day >= since AND r.day <= until
  OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
  OPTIONAL MATCH (rc:Compound {code: r.residence_code})
  RETURN collect(DISTINCT CASE WHEN r IS NOT NULL THEN
                   coalesce(CASE WHEN c.known THEN c.district_code
                                 WHEN rc.known THEN rc.district_code END, 'unassigned')
                 END) AS districts
}
// The rings, breadth-first in the server (engine/server/procedures/tubetrace/Exposure.java),
// in page order from after ($after_depth, $after_person) on, as one row of parallel lists:
// a Cypher row per member cost a sort, a filter and a collect per member of the slotted runtime.
CALL (p, since, until) {
  CALL tubetrace.exposure(p, since, until, $depth, $after_depth, $after_person)
    YIELD depths, person_ids, days, tube_codes, registrations
  // Only when a district is asked for: the positions of the members living in it, by the
  // registration that put them in their ring (the residence rule, as above).
  WITH depths, person_ids, days, tube_codes,
       CASE WHEN $district IS NOT NULL THEN
         [i IN range(0, size(depths) - 1) WHERE EXISTS {
            MATCH (r:Registration)
            WHERE elementId(r) = registrations[i]
            OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
            OPTIONAL MATCH (rc:Compound {code: r.residence_code})
            WITH c, rc
            WHERE coalesce(CASE WHEN c.known THEN c.district_code
                                WHEN rc.known THEN rc.district_code END, 'unassigned') = $district
         }] END AS kept
  // Four lists of plain values, not a list of maps: the driver builds a map in Python at
  // ~30 us an item (a quarter of a 1,000-person ring 4's time at 100 k registrations).
  RETURN CASE WHEN kept IS NULL THEN depths ELSE [i IN kept | depths[i]] END AS depths,
         CASE WHEN kept IS NULL THEN person_ids ELSE [i IN kept | person_ids[i]] END AS person_ids,
         CASE WHEN kept IS NULL THEN days ELSE [i IN kept | days[i]] END AS days,
         CASE WHEN kept IS NULL THEN tube_codes ELSE [i IN kept | tube_codes[i]] END AS tube_codes
}
RETURN p.person_id AS person_id, since, until, districts, depths, person_ids, days, tube_codes

// name: clusters_of_window -> value
// params: since, until, reported_until, link_days: int
// The clusters of the window (engine/analysis/outbreak.py, find_clusters): the tubes with a
// positive result reported from $since up to $reported_until, grouped in the server by
// tubetrace.clusters (engine/server/procedures: the rule of outbreak.group_clusters, which
// the tests run on positive_registrations' rows to compare). One list per cluster, the
// procedure's fields in its order, in one row.
MATCH (x:Result)
USING INDEX x:Result(result, day)
WHERE x.result = 'positive' AND x.day >= $since AND x.day <= $reported_until
MATCH (x)-[:FOR_TUBE]->(t)
WITH collect(DISTINCT t) AS tubes
CALL tubetrace.clusters(tubes, $since, $until, $link_days)
  YIELD members, member_days, member_tubes, member_districts, compounds, districts, days,
        pool_links, compound_links
RETURN collect([members, member_days, member_tubes, member_districts, compounds, districts,
                days, pool_links, compound_links]) AS clusters

// name: window_registrations -> value
// params: person_ids, since, until
// The registrations inside [$since, $until] of some persons (a cluster's members, for its
// graph), each a list in the order of outbreak.WINDOW_FIELDS (as positive_registrations').
UNWIND $person_ids AS person_id
MATCH (p:Person {person_id: person_id})<-[:OF_PERSON]-(r)-[:INTO_TUBE]->(t)
WHERE r.day >= $since AND r.day <= $until
OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c)
RETURN collect([p.person_id, t.code, r.day, r.pool_size > 1, c.code,
                CASE WHEN c.known THEN c.district_code END]) AS window

// name: positive_registrations -> row
// params: since, until, reported_until, members: bool
// Every registration inside [$since, $until] of a tube with a positive result reported from
// $since up to $reported_until (a result comes after its swab): the day's cases and what the
// signals, clusters and attack rates are made of. `district` is the residence (as above).
// With $members (the clusters), also every registration inside the window of their persons:
// what links the members of a cluster (a shared pooled tube, the same compound within days of
// each other), read from the persons found, not looked up again by id in a second query.
// One list per registration (in the order of engine/analysis/outbreak.py's POSITIVE_FIELDS
// and WINDOW_FIELDS), in one row: the driver built a record per row at ~50 us each (a third
// of the clusters' time at 20 k registrations). No label where the relationship type implies it
// (engine/model.py): a label check was a read per row.
MATCH (x:Result)
USING INDEX x:Result(result, day)
WHERE x.result = 'positive' AND x.day >= $since AND x.day <= $reported_until
MATCH (x)-[:FOR_TUBE]->(t)
WITH DISTINCT t
MATCH (t)<-[:INTO_TUBE]-(r)-[:OF_PERSON]->(p)
WHERE r.day >= $since AND r.day <= $until
OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c)
OPTIONAL MATCH (r)-[:IN_BOX]->(b)
OPTIONAL MATCH (rc:Compound {code: r.residence_code})
WITH p, t.code AS tube_code, r.day AS day, r.pool_size AS pool_size,
     p.person_id AS person_id, c.code AS compound_code,
     CASE WHEN c.known THEN c.district_code END AS compound_district, b.code AS box_code,
     r.collector_id AS collector_id,
     coalesce(CASE WHEN c.known THEN c.district_code WHEN rc.known THEN rc.district_code END,
              'unassigned') AS district
ORDER BY day, tube_code, person_id
WITH collect([tube_code, day, pool_size, person_id, compound_code, compound_district, box_code,
              collector_id, district]) AS positive,
     collect(DISTINCT p) AS persons
CALL (persons) {
  UNWIND CASE WHEN $members THEN persons ELSE [] END AS p
  MATCH (p)<-[:OF_PERSON]-(r)-[:INTO_TUBE]->(t)
  WHERE r.day >= $since AND r.day <= $until
  OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c)
  RETURN collect([p.person_id, t.code, r.day, r.pool_size > 1, c.code,
                  CASE WHEN c.known THEN c.district_code END]) AS window
}
RETURN positive, window

// name: lab_pools_of_day -> rows
// params: day
// Per lab, the pooled tubes it reported on $day and which of them it reported positive.
MATCH (x:Result {day: $day})
USING INDEX SEEK x:Result(day)
MATCH (x)-[:FOR_TUBE]->(t:Tube)
WHERE x.lab_code IS NOT NULL
  AND EXISTS { MATCH (t)<-[:INTO_TUBE]-(r:Registration) WHERE r.pool_size > 1 }
WITH x.lab_code AS lab_code, t, max(CASE WHEN x.result = 'positive' THEN 1 ELSE 0 END) AS pos
RETURN lab_code, count(t) AS pools,
       collect(CASE WHEN pos = 1 THEN t.code END) AS positive_tubes
ORDER BY lab_code

// name: city_attack_rate -> row
// params: since, until
// Every person swabbed inside [$since, $until], and how many of them have a positive tube
// (single or pooled) sampled within 7 days after their first day inside it.
MATCH (r:Registration)
USING INDEX r:Registration(day)
WHERE r.day >= $since AND r.day <= $until
MATCH (r)-[:OF_PERSON]->(p:Person)
WITH p, min(r.day) AS first
WITH p, first, toString(date(first) + duration({days: 7})) AS last
RETURN count(p) AS persons,
       count(CASE WHEN EXISTS {
         MATCH (p)<-[:OF_PERSON]-(o:Registration)-[:INTO_TUBE]->(:Tube)<-[:FOR_TUBE]-(x:Result)
         WHERE o.day > first AND o.day <= last AND x.result = 'positive'
       } THEN 1 END) AS positives
