// The population directory (who else can reach a person, where they live) and the residence
// fallback it feeds: a registration whose own compound is unknown takes its residence from the
// person's newest directory entry naming a known compound, else from the person's latest other
// registration at a known compound. The fallback is kept on the registration
// (`residence_code`, `residence_source`) and refreshed whenever a compound, a registration or
// a directory entry arrives; open tasks then move to the district it implies.
//
// The residence rule, wherever a district is needed (trace, dispatch, positives, re-routing):
//   own compound when known, else the compound named by `r.residence_code` when known.

// name: merge_directory -> rows
// params: rows, token
// For the same (person, source, phone) the latest `updated_at` wins; an older or equal one
// changes nothing. A date from the future (later than now plus 10 minutes: flagged
// `future_updated_at` by the loader, or stored before that flag existed) ranks as no date: it
// never replaces a stored entry, and any dated entry replaces it.
UNWIND $rows AS row
MERGE (e:DirectoryEntry {entry_key: row.key})
  ON CREATE SET e.write_token = $token
WITH e, row, e.write_token = $token AS created, e.content_hash AS before_hash,
     CASE WHEN 'future_updated_at' IN coalesce(e.flags, [])
            OR e.updated_at > datetime() + duration('PT10M') THEN NULL
          ELSE e.updated_at END AS before_at,
     CASE WHEN 'future_updated_at' IN coalesce(row.props.flags, []) THEN NULL
          ELSE row.props.updated_at END AS row_at
WITH e, row, created, before_hash,
     created OR (left(before_hash, 32) <> left(row.props.content_hash, 32)
                 AND row_at IS NOT NULL
                 AND (before_at IS NULL OR row_at > before_at)) AS newer
CALL (e, row, newer) {
  WITH e, row WHERE newer
  SET e += row.props
  MERGE (p:Person {person_id: row.links.person.person_id})
    ON CREATE SET p += row.links.person
  MERGE (e)-[:DESCRIBES]->(p)
}
REMOVE e.write_token
RETURN row.key AS key, created, newer, coalesce(before_hash, row.props.content_hash) AS content_hash,
       e.raw AS raw, row.links.person.person_id AS person_id

// name: registrations_of_persons -> rows
// params: person_ids
// Registrations by their (source, record_id) key (`reg_key`) here and below: a record_id alone
// may name the registrations of two senders, two persons (issue 21).
UNWIND $person_ids AS pid
MATCH (p:Person {person_id: pid})<-[:OF_PERSON]-(r:Registration)
USING INDEX SEEK p:Person(person_id)
RETURN DISTINCT r.reg_key AS reg_key

// name: registrations_near_registrations -> rows
// params: reg_keys
// The registrations of the same persons whose own compound is unknown: a new registration at a
// known compound may give them a residence. Only an `unplaced` person has any, or the person
// of a new registration at an unknown compound (marked later in the same transaction:
// cypher/ingest.cypher, mark_unplaced_persons): the others' windows are not read.
UNWIND $reg_keys AS key
MATCH (r:Registration {reg_key: key})-[:OF_PERSON]->(p:Person)
USING INDEX SEEK r:Registration(reg_key)
WHERE p.unplaced OR NOT EXISTS { (r)-[:AT_COMPOUND]->(c:Compound) WHERE c.known }
MATCH (p)<-[:OF_PERSON]-(o:Registration)
WHERE NOT EXISTS { (o)-[:AT_COMPOUND]->(oc:Compound) WHERE oc.known }
RETURN DISTINCT o.reg_key AS reg_key

// name: registrations_near_compounds -> rows
// params: codes
// Registrations a compound (new, or with a changed district) may re-route: those swabbed there,
// the other registrations of their persons, and those of persons the directory places there.
UNWIND $codes AS code
MATCH (c:Compound {code: code})
USING INDEX SEEK c:Compound(code)
CALL (c) {
  MATCH (c)<-[:AT_COMPOUND]-(:Registration)-[:OF_PERSON]->(p:Person)
  MATCH (p)<-[:OF_PERSON]-(o:Registration)
  RETURN o
  UNION
  MATCH (e:DirectoryEntry {residence_compound_code: c.code})-[:DESCRIBES]->(p:Person)
  MATCH (p)<-[:OF_PERSON]-(o:Registration)
  RETURN o
}
RETURN DISTINCT o.reg_key AS reg_key

// name: refresh_residences -> value
// params: reg_keys
UNWIND $reg_keys AS key
MATCH (r:Registration {reg_key: key})-[:OF_PERSON]->(p:Person)
USING INDEX SEEK r:Registration(reg_key)
WHERE NOT EXISTS { (r)-[:AT_COMPOUND]->(c:Compound) WHERE c.known }
CALL (p) {
  OPTIONAL MATCH (p)<-[:DESCRIBES]-(e:DirectoryEntry)
  WHERE e.residence_compound_code IS NOT NULL
  OPTIONAL MATCH (dc:Compound {code: e.residence_compound_code})
  WITH e, dc WHERE dc.known
  // The newest dated entry; one from the future (merge_directory) or undated only after.
  WITH e, dc, CASE WHEN 'future_updated_at' IN coalesce(e.flags, [])
                     OR e.updated_at > datetime() + duration('PT10M') THEN NULL
                   ELSE e.updated_at END AS ranked
  ORDER BY ranked IS NOT NULL DESC, ranked DESC, e.updated_at IS NOT NULL DESC,
           e.updated_at DESC, dc.code
  RETURN collect(dc.code)[0] AS directory_code
}
CALL (p, r) {
  OPTIONAL MATCH (p)<-[:OF_PERSON]-(o:Registration)-[:AT_COMPOUND]->(oc:Compound)
  WHERE o <> r AND oc.known
  WITH o, oc ORDER BY o.collected_at DESC, o.reg_key DESC
  RETURN collect(oc.code)[0] AS registration_code
}
WITH r, coalesce(directory_code, registration_code) AS code,
     CASE WHEN directory_code IS NOT NULL THEN 'directory'
          WHEN registration_code IS NOT NULL THEN 'registration' END AS source
WHERE coalesce(r.residence_code, '') <> coalesce(code, '')
   OR coalesce(r.residence_source, '') <> coalesce(source, '')
SET r.residence_code = code, r.residence_source = source
RETURN count(r) AS changed

// name: reroute_tasks -> rows
// params: reg_keys, now, reason
// Tasks of these registrations move to the district their residence now gives. A task's
// registration is its person's in its tube with the record_id it was made from: never a
// record_id alone, which another sender may use for another person (when two senders
// registered the same person with the same record_id in the tube, the first key decides).
// Open tasks record the move in their history. A closed task moves only out of the
// `unassigned` queue, once late master data names its district (for that district's reports
// and counts), its status and history unchanged; a district that handled it keeps it.
UNWIND $reg_keys AS key
MATCH (r:Registration {reg_key: key})-[:OF_PERSON]->(p:Person)
USING INDEX SEEK r:Registration(reg_key)
MATCH (r)-[:INTO_TUBE]->(t:Tube)
MATCH (p)<-[:FOR_PERSON]-(k:Task)-[:FOR_TUBE]->(t)
WHERE (k.status <> 'closed' OR k.district_code = 'unassigned') AND k.record_id = r.record_id
OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
OPTIONAL MATCH (rc:Compound {code: r.residence_code})
WITH k, r, coalesce(CASE WHEN c.known THEN c.district_code
                         WHEN rc.known THEN rc.district_code END, 'unassigned') AS district
ORDER BY k.task_id, r.reg_key
WITH k, collect(district)[0] AS district
WITH k, district, k.district_code AS before
WHERE before <> district
SET k.history = CASE WHEN k.status = 'closed' THEN k.history
                ELSE k.history + [apoc.convert.toJson({status: k.status, at: toString($now),
                  actor: 'system',
                  note: 'moved from ' + before + ' to ' + district + ': ' + $reason})] END,
    k.district_code = district, k.updated_at = $now
RETURN k.task_id AS task_id, before AS from_district, district AS to_district

// name: directory_entries_of_person -> rows
// params: person_id
// What an operator needs to find an entry to remove (tubetrace directory list).
MATCH (p:Person {person_id: $person_id})
USING INDEX SEEK p:Person(person_id)
MATCH (p)<-[:DESCRIBES]-(e:DirectoryEntry)
RETURN e {.entry_key, .person_id, .name, .phone, .phone_owner, .residence_compound_code,
          .source, .updated_at, .flags, .file, .line} AS entry
ORDER BY e.source, e.entry_key

// name: remove_directory_entry -> row?
// params: entry_key
// The person's lock first: a load of the person's data in another transaction waits.
MATCH (e:DirectoryEntry {entry_key: $entry_key})
OPTIONAL MATCH (e)-[:DESCRIBES]->(p:Person)
SET p._lock = true
REMOVE p._lock
WITH e, e.person_id AS person_id
DETACH DELETE e
RETURN person_id
