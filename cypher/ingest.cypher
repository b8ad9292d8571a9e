// Writes of the loaders. Rows come in batches; a row whose key is already stored is left alone
// and reported back with the stored content hash, so the caller can tell duplicate from conflict.

// The stored version a conflict shows (`stored`, in this query and in merge_registrations):
// the node's fields and what its relationships and person say; loaders/transform.py's
// first_version makes the same of a row still in hand.

// name: existing_registrations -> rows
// params: keys
UNWIND $keys AS key
MATCH (r:Registration {reg_key: key})
USING INDEX SEEK r:Registration(reg_key)
RETURN r.reg_key AS key, r.content_hash AS content_hash, r.raw AS raw,
       CASE WHEN r.raw IS NULL THEN
         r {.record_id, .collected_at, .pool_size, .method, .name, .phone, .registered_address,
           .collector_id,
           tube_code: [(r)-[:INTO_TUBE]->(t) | t.code][0],
           box_code: [(r)-[:IN_BOX]->(b) | b.code][0],
           compound_code: [(r)-[:AT_COMPOUND]->(c) | c.code][0],
           id_type: [(r)-[:OF_PERSON]->(p) | p.id_type][0],
           id_number: [(r)-[:OF_PERSON]->(p) | p.id_number][0]} END AS stored

// name: merge_registrations -> rows
// params: rows, token
// `at`: collected_at as an ISO string (loaders/write.py, WIRE_TIME).
UNWIND $rows AS row
MERGE (r:Registration {reg_key: row.key})
  ON CREATE SET r += row.props, r.collected_at = datetime(row.at), r.write_token = $token
// The stored record is sent back only when it was there before: the loader judges it, and a
// conflict shows it (`raw` of a registration stored before lines were no longer kept, else the
// stored fields: loaders/transform.py, stored_version).
WITH row, r, r.write_token = $token AS created
RETURN row.key AS key, created, r.content_hash AS content_hash,
       CASE WHEN created THEN null ELSE r.raw END AS raw,
       CASE WHEN created OR r.raw IS NOT NULL
                 OR left(r.content_hash, 32) = left(row.props.content_hash, 32) THEN null
            ELSE r {.record_id, .collected_at, .pool_size, .method, .name, .phone,
                    .registered_address, .collector_id,
                    tube_code: [(r)-[:INTO_TUBE]->(t) | t.code][0],
                    box_code: [(r)-[:IN_BOX]->(b) | b.code][0],
                    compound_code: [(r)-[:AT_COMPOUND]->(c) | c.code][0],
                    id_type: [(r)-[:OF_PERSON]->(p) | p.id_type][0],
                    id_number: [(r)-[:OF_PERSON]->(p) | p.id_number][0]} END AS stored

// The nodes a batch of new registrations links to, one label per statement and each key
// once (lists made distinct by the loader): MERGE never reads what the same statement wrote
// for another row, so the planner needs no Eager barrier.

// name: merge_tubes -> nothing
// params: codes
UNWIND $codes AS code
MERGE (:Tube {code: code})

// name: merge_persons -> nothing
// params: persons
UNWIND $persons AS person
MERGE (p:Person {person_id: person.person_id})
  ON CREATE SET p += person

// name: merge_boxes -> nothing
// params: codes
UNWIND $codes AS code
MERGE (:Box {code: code})

// name: merge_compound_refs -> nothing
// params: codes
// A compound named before its master data arrives: a node with only its code (`known` unset).
UNWIND $codes AS code
MERGE (:Compound {code: code})

// name: merge_filled_at -> nothing
// params: links
// Which compound a box was filled at, per day: one relationship per (box, compound, day).
UNWIND $links AS link
MATCH (b:Box {code: link.box_code})
MATCH (c:Compound {code: link.compound_code})
MERGE (b)-[:FILLED_AT {day: link.day}]->(c)

// name: link_registrations -> value
// params: rows
// After merge_tubes/persons/boxes/compound_refs: only MATCH and CREATE, no Eager. The rows
// are the ones merge_registrations created (its answer, by this transaction's token).
UNWIND $rows AS row
MATCH (r:Registration {reg_key: row.key})
USING INDEX SEEK r:Registration(reg_key)
MATCH (t:Tube {code: row.tube_code})
MATCH (p:Person {person_id: row.person_id})
OPTIONAL MATCH (b:Box {code: row.box_code})
OPTIONAL MATCH (c:Compound {code: row.compound_code})
CREATE (r)-[:INTO_TUBE]->(t), (r)-[:OF_PERSON]->(p)
FOREACH (box IN CASE WHEN b IS NULL THEN [] ELSE [b] END | CREATE (r)-[:IN_BOX]->(box))
FOREACH (cpd IN CASE WHEN c IS NULL THEN [] ELSE [c] END | CREATE (r)-[:AT_COMPOUND]->(cpd))
REMOVE r.write_token
RETURN count(*) AS linked

// name: set_tube_pool_days -> nothing
// params: codes
// After link_registrations: each tube's `pool_day` (engine/model.py) made again from all its
// registrations, the tubes write-locked in code order first (as by new_registration_facts,
// which comes later in the same transaction), so that two transactions adding to one tube
// each see the other's registrations or come first. The day when every registration of the
// tube is pooled and on that day; unset otherwise (loaders/bulk_files.py does the same).
UNWIND $codes AS code
MATCH (t:Tube {code: code})
WITH t
ORDER BY t.code
WITH collect(t) AS tubes
CALL apoc.lock.nodes(tubes)
UNWIND tubes AS t
WITH t, [(t)<-[:INTO_TUBE]-(r:Registration) | CASE WHEN r.pool_size > 1 THEN r.day END] AS days
SET t.pool_day = CASE WHEN days <> [] AND all(d IN days WHERE d = days[0]) THEN days[0] END

// name: new_registration_facts -> rows
// params: keys
// What the loader needs of the registrations this transaction created, once they are linked
// and their residence fallback is set: the derived flags, and what the status of a person on
// that day can be told from without the history of the person (engine/feed/status.py,
// after_new_registrations). Their tubes, then their persons, are write-locked first, each in
// a fixed order: a result for the same tube (locked by lock_tubes before the members of the
// tube are read) is either seen here or sees these registrations, and two transactions that
// touch one person derive it one after the other (as by status_lock_persons).
UNWIND $keys AS key
MATCH (t:Tube)<-[:INTO_TUBE]-(r:Registration {reg_key: key})
USING INDEX SEEK r:Registration(reg_key)
WITH DISTINCT t
ORDER BY t.code
WITH collect(t) AS tubes
CALL apoc.lock.nodes(tubes)
UNWIND $keys AS key
MATCH (r:Registration {reg_key: key})-[:OF_PERSON]->(p:Person)
USING INDEX SEEK r:Registration(reg_key)
WITH p, collect(r) AS news
ORDER BY p.person_id
WITH collect({person: p, news: news}) AS groups
CALL apoc.lock.nodes([g IN groups | g.person])
UNWIND groups AS g
WITH g.person AS p, g.news AS news
UNWIND news AS r
MATCH (r)-[:INTO_TUBE]->(t:Tube)
OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
OPTIONAL MATCH (rc:Compound {code: r.residence_code})
// The person's registrations and days of that day. `last_day` (mark_person_last_days), read
// under the person's lock, is at least the day of every registration and day the person has
// (the days of a campaign come in order): a registration of a later day has no others that
// day but this batch's, and the person's window is not read. Otherwise one walk over the
// person's relationships (its window: a day a day until retention, docs/campaign.md) gives
// them, and the latest day of all for `last_day` (a person stored without it, or by a bulk
// import, gets it so).
WITH r, p, t, c, rc, news, p.last_day AS last_day
WITH r, p, t, c, rc, news, last_day,
     CASE WHEN r.day > last_day THEN null
          ELSE [(p)-[:OF_PERSON|HAS_DAY]-(x) WHERE x <> r | x] END AS window
WITH r, p, t, c, rc, last_day,
     CASE WHEN window IS NULL THEN [x IN news WHERE x <> r AND x.day = r.day]
          ELSE [x IN window WHERE x.day = r.day] END AS that_day,
     // '' before every day: a registration without a day moves nothing.
     reduce(m = coalesce(last_day, ''), d IN [x IN coalesce(window, news) | x.day] + r.day |
            CASE WHEN d > m THEN d ELSE m END) AS latest
WITH r.reg_key AS key, r, p, t, c, rc, last_day, CASE WHEN latest <> '' THEN latest END AS latest,
     [x IN that_day WHERE x:Registration] AS same_day,
     [x IN that_day WHERE x:PersonDay | x.status] AS stored
// A duplicate registration (one person swabbed into two pooled tubes on one day): the loader
// marks it and its twins (mark_duplicate_registrations, under the person's lock taken above),
// so that the trace reads the mark (cypher/trace.cypher) instead of the person's other
// registrations. Registrations stored before get it from the schema's backfill.
WITH key, r, p, t, c, rc, same_day, stored, last_day, latest,
     [o IN same_day WHERE r.pool_size > 1 AND o.pool_size > 1 AND NOT (o)-[:INTO_TUBE]->(t)]
       AS twins
RETURN key, p.person_id AS person_id, r.day AS day, t.code AS tube_code,
       [flag IN [
         CASE WHEN c IS NOT NULL AND c.known IS NULL THEN 'unknown_compound' END,
         CASE WHEN twins <> [] THEN 'duplicate_registration' END
       ] WHERE flag IS NOT NULL] AS derived_flags,
       // The registrations to mark duplicate (mark_duplicate_registrations), and whether the
       // person is to be marked `unplaced` (mark_unplaced_persons).
       [x IN CASE WHEN twins = [] THEN [] ELSE twins + r END WHERE x.duplicate IS NULL
        | x.reg_key] AS duplicates,
       (c IS NULL OR c.known IS NULL) AND p.unplaced IS NULL AS unplaced,
       // The person's new `last_day` when it moves (mark_person_last_days).
       CASE WHEN latest IS NOT NULL AND (last_day IS NULL OR latest > last_day) THEN latest END
         AS last_day,
       size(same_day) AS others_that_day,
       stored,
       [(t)<-[:FOR_TUBE]-(x:Result) WHERE x.result IN ['positive', 'negative', 'invalid']
        | x.result] AS results,
       // The residence rule of cypher/directory.cypher: own compound, else the fallback.
       CASE WHEN c.known THEN c.district_code WHEN rc.known THEN rc.district_code END
         AS district_code

// name: mark_duplicate_registrations -> nothing
// params: keys
// Duplicate registrations (one person swabbed into two pooled tubes on one day): the pairs
// new_registration_facts found, or the bulk import's (loaders/bulk_files.py, mark_duplicates).
UNWIND $keys AS key
MATCH (r:Registration {reg_key: key})
SET r.duplicate = true

// name: mark_unplaced_persons -> nothing
// params: reg_keys
// A person with a registration at no compound, or at one without master data yet, is
// `unplaced` for good: only such a person's registrations can need a residence fallback
// (cypher/directory.cypher, registrations_near_registrations, which looks at a new
// registration itself before this mark is set). The persons new_registration_facts found,
// or the bulk import's (registrations_without_known_compound).
UNWIND $reg_keys AS key
MATCH (r:Registration {reg_key: key})-[:OF_PERSON]->(p:Person)
SET p.unplaced = true

// name: mark_person_last_days -> nothing
// params: days
// Each person's `last_day` (new_registration_facts), under the person's lock: never earlier
// than the day of any of the person's registrations and days, so never set but from a walk
// over them all or above a value that was such a bound. Retention deletes below it only.
UNWIND $days AS d
MATCH (p:Person {person_id: d.person_id})
USING INDEX SEEK p:Person(person_id)
SET p.last_day = CASE WHEN p.last_day IS NULL OR d.day > p.last_day THEN d.day
                      ELSE p.last_day END

// name: lock_tubes -> value
// params: codes
// The tubes of new results, write-locked in code order before their members are read
// (dispatch_context, status_lock_persons): see new_registration_facts. Relationship creation
// alone does not lock a tube once it is a dense node.
UNWIND $codes AS code
MATCH (t:Tube {code: code})
WITH t
ORDER BY t.code
WITH collect(t) AS tubes
CALL apoc.lock.nodes(tubes)
RETURN size(tubes) AS locked

// name: merge_results -> rows
// params: rows, token
// `at`: reported_at as an ISO string (loaders/write.py, WIRE_TIME).
UNWIND $rows AS row
MERGE (x:Result {result_key: row.key})
  ON CREATE SET x += row.props, x.reported_at = datetime(row.at), x.write_token = $token
WITH x, row, x.write_token = $token AS created
FOREACH (_ IN CASE WHEN created THEN [1] ELSE [] END |
  MERGE (t:Tube {code: row.links.tube_code})
  MERGE (x)-[:FOR_TUBE]->(t)
)
REMOVE x.write_token
// As merge_registrations: a result keeps no raw line either; a conflict shows its fields.
RETURN row.key AS key, created, x.content_hash AS content_hash,
       CASE WHEN created THEN null ELSE x.raw END AS raw,
       CASE WHEN created OR x.raw IS NOT NULL
                 OR left(x.content_hash, 32) = left(row.props.content_hash, 32) THEN null
            ELSE x {.tube_code, .result, .reported_at, .lab_code, .ct_value} END AS stored

// name: merge_compounds -> rows
// params: rows
UNWIND $rows AS row
MERGE (c:Compound {code: row.key})
WITH c, row, c.content_hash AS before
SET c += row.props
RETURN row.key AS key, before IS NULL AS created, before AS content_hash, row.raw AS raw

// name: merge_quarantine -> value
// params: rows
UNWIND $rows AS row
MERGE (q:Quarantine {qkey: row.qkey})
  ON CREATE SET q += row, q.at = datetime()
RETURN count(q) AS stored

// name: list_quarantine -> rows
// params: after, limit
MATCH (q:Quarantine)
WHERE q.qkey > $after
RETURN q {.qkey, .kind, .source, .line, .field, .reason, .raw, .existing, .at} AS item
ORDER BY q.qkey
LIMIT $limit
