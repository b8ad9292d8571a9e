// The traceback: tube -> registrations -> person, box, compound (the residence), and results.
// One row per tube; flags that depend on other data (boxes filled at several compounds,
// unknown compounds) are computed here, from the data as it is now; a duplicate registration
// is marked on both registrations when the second is linked (cypher/ingest.cypher), and the
// mark stays when retention deletes one twin's tube and keeps the other's (docs/retention.md).

// name: trace_tubes -> rows
// params: tube_codes
MATCH (t:Tube)
USING INDEX SEEK t:Tube(code)
WHERE t.code IN $tube_codes
CALL (t) {
  // How many compounds each box of the tube was filled at on the day of its registrations:
  // once per box and day, not once per registration (a box gains a day a day, docs/campaign.md).
  WITH t, COLLECT {
    MATCH (t)<-[:INTO_TUBE]-(r:Registration)-[:IN_BOX]->(b:Box)
    WITH DISTINCT b, r.day AS day
    WHERE day IS NOT NULL
    RETURN {box: b, day: day,
            compounds: COUNT { (b)-[f:FILLED_AT]->(:Compound) WHERE f.day = day }}
  } AS box_days
  OPTIONAL MATCH (t)<-[:INTO_TUBE]-(r:Registration)
  OPTIONAL MATCH (r)-[:OF_PERSON]->(p:Person)
  OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
  OPTIONAL MATCH (r)-[:IN_BOX]->(b:Box)
  // The residence fallback (cypher/directory.cypher) when the own compound is unknown.
  OPTIONAL MATCH (rc:Compound {code: r.residence_code})
  WITH r, p, c, b, rc, box_days
  ORDER BY r.collected_at, r.record_id
  // Times as text (engine/domain.py, iso): the driver builds each datetime in Python.
  WITH collect(CASE WHEN r IS NULL THEN NULL ELSE {
      record_id: r.record_id, collected_at: toString(r.collected_at), day: r.day,
      pool_size: r.pool_size, method: r.method, name: r.name, phone: r.phone,
      flags: r.flags, box_code: b.code, compound_code: c.code,
      person_id: p.person_id, id_type: p.id_type, id_number: p.id_number,
      registered_district_code: p.registered_district_code,
      compound: CASE WHEN c IS NULL OR c.known IS NULL THEN NULL
                ELSE c {.code, .name, .address, .district_code, .subdistrict, .contact_phone} END,
      fallback: CASE WHEN rc IS NULL OR rc.known IS NULL THEN NULL
                ELSE rc {.code, .address, .district_code, .contact_phone} END,
      fallback_source: r.residence_source,
      // `future`: an updated_at later than now plus 10 minutes (cypher/directory.cypher) is
      // never the newest contact.
      directory: [(p)<-[:DESCRIBES]-(e:DirectoryEntry) WHERE e.usable |
                  e {.phone, .phone_owner, .source, .updated_at,
                     future: 'future_updated_at' IN coalesce(e.flags, [])
                             OR e.updated_at > datetime() + duration('PT10M')}],
      // Kept on both registrations when the second is linked (mark_duplicate_registrations,
      // cypher/ingest.cypher): reading the person's other registrations here cost a trace
      // more with every day the store keeps.
      duplicate: coalesce(r.duplicate, false),
      box_compounds_that_day: CASE WHEN b IS NULL OR r.day IS NULL THEN 0 ELSE
        [x IN box_days WHERE x.box = b AND x.day = r.day | x.compounds][0] END
  } END) AS registrations
  RETURN registrations
}
CALL (t) {
  OPTIONAL MATCH (t)<-[:FOR_TUBE]-(x:Result)
  // A time later than now (plus 10 minutes of skew) is from the future: flagged when loaded
  // (`future_reported_at`; one stored before that flag existed is judged here) and ranked
  // as if it had no time.
  WITH x, coalesce(x.flags, []) + CASE
         WHEN x.reported_at > datetime() + duration('PT10M')
              AND NOT 'future_reported_at' IN coalesce(x.flags, [])
         THEN ['future_reported_at'] ELSE [] END AS flags
  WITH x, flags, CASE WHEN 'future_reported_at' IN flags THEN NULL ELSE x.reported_at END
                 AS ranked
  // The last is the latest; a result without a readable time (or from the future) never is
  // (cypher/status.cypher).
  ORDER BY ranked IS NOT NULL, ranked, x.reported_at, x.lab_code
  RETURN collect(CASE WHEN x IS NULL THEN NULL ELSE
                 x {.result, reported_at: toString(x.reported_at), .lab_code, .ct_value,
                    flags: flags} END) AS results
}
RETURN t.code AS code, registrations, results

// name: tube_codes_after -> rows
// params: after, limit
MATCH (t:Tube)
WHERE t.code > $after
RETURN t.code AS code
ORDER BY t.code
LIMIT $limit
