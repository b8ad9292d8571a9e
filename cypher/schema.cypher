// Every constraint and index, by concept, applied in this order on first use
// (Gateway.apply_schema). Every statement is idempotent (IF NOT EXISTS, IF EXISTS).

// ---------------------------------------------------------------- records
// Registrations (a key per sender), persons, tubes, boxes, compounds, results, the quarantine.
// The first three run in this order: the old global key goes, old registrations get their
// per-sender key, then that key is unique.

// name: schema_registration_global_id_dropped -> nothing
// A registration is (source, record_id): two senders may use the same record_id.
DROP CONSTRAINT registration_record_id IF EXISTS

// name: schema_registration_key_backfill -> nothing
// Registrations stored before keys were per sender count as sent by files (source file);
// the sender is the key's first part, not kept apart (docs/footprint.md).
MATCH (r:Registration)
WHERE r.reg_key IS NULL
SET r.reg_key = 'file/' + r.record_id

// name: schema_registration_key -> nothing
CREATE CONSTRAINT registration_key IF NOT EXISTS
FOR (r:Registration) REQUIRE r.reg_key IS UNIQUE

// name: schema_registration_record_id_dropped -> nothing
// No query finds a registration by its record_id alone (a key is per sender): the index cost
// 25 bytes a registration at 1 M (docs/footprint.md).
DROP INDEX registration_record_id_lookup IF EXISTS

// name: schema_registration_day -> nothing
CREATE INDEX registration_day IF NOT EXISTS FOR (r:Registration) ON (r.day)

// name: schema_person_key -> nothing
CREATE CONSTRAINT person_id IF NOT EXISTS
FOR (p:Person) REQUIRE p.person_id IS UNIQUE

// name: schema_tube_key -> nothing
CREATE CONSTRAINT tube_code IF NOT EXISTS
FOR (t:Tube) REQUIRE t.code IS UNIQUE

// name: schema_tube_pool_day_backfill -> nothing
// Tubes stored before they carried `pool_day` (engine/model.py; cypher/ingest.cypher,
// set_tube_pool_days): set once, then marked done by the Meta node `tube_pool_day` (a bulk
// import writes the mark, its tubes have the day).
OPTIONAL MATCH (done:Meta {key: 'tube_pool_day'})
WITH done
WHERE done IS NULL
MATCH (t:Tube)
CALL (t) {
  WITH t, [(t)<-[:INTO_TUBE]-(r:Registration) | CASE WHEN r.pool_size > 1 THEN r.day END] AS days
  SET t.pool_day = CASE WHEN days <> [] AND all(d IN days WHERE d = days[0]) THEN days[0] END
} IN TRANSACTIONS OF 10000 ROWS

// name: schema_tube_pool_day_done -> nothing
MERGE (done:Meta {key: 'tube_pool_day'})
  ON CREATE SET done.value = 'set'

// name: schema_registration_duplicate_backfill -> nothing
// Registrations stored before the duplicate mark (cypher/ingest.cypher,
// mark_duplicate_registrations): marked once, then marked done by the Meta node
// `registration_duplicate` (a bulk import marks its own and writes the mark,
// loaders/bulk_files.py).
OPTIONAL MATCH (done:Meta {key: 'registration_duplicate'})
WITH done
WHERE done IS NULL
MATCH (r:Registration)
WHERE r.pool_size > 1 AND r.day IS NOT NULL
CALL (r) {
  MATCH (t:Tube)<-[:INTO_TUBE]-(r)-[:OF_PERSON]->(:Person)<-[:OF_PERSON]-(o:Registration)
  WHERE o <> r AND o.day = r.day AND o.pool_size > 1 AND NOT (o)-[:INTO_TUBE]->(t)
  WITH r LIMIT 1
  SET r.duplicate = true
} IN TRANSACTIONS OF 10000 ROWS

// name: schema_registration_duplicate_done -> nothing
MERGE (done:Meta {key: 'registration_duplicate'})
  ON CREATE SET done.value = 'set'

// name: schema_person_unplaced_backfill -> nothing
// Persons stored before the `unplaced` mark (cypher/ingest.cypher, mark_unplaced_persons): the
// persons of registrations at no known compound, once, then marked done by the Meta node
// `person_unplaced` (a bulk import marks its own and writes the mark, loaders/bulk_files.py).
OPTIONAL MATCH (done:Meta {key: 'person_unplaced'})
WITH done
WHERE done IS NULL
MATCH (r:Registration)
WHERE NOT EXISTS { (r)-[:AT_COMPOUND]->(c:Compound) WHERE c.known }
CALL (r) {
  MATCH (r)-[:OF_PERSON]->(p:Person)
  SET p.unplaced = true
} IN TRANSACTIONS OF 10000 ROWS

// name: schema_person_unplaced_done -> nothing
MERGE (done:Meta {key: 'person_unplaced'})
  ON CREATE SET done.value = 'set'

// name: schema_box_key -> nothing
CREATE CONSTRAINT box_code IF NOT EXISTS
FOR (b:Box) REQUIRE b.code IS UNIQUE

// name: schema_compound_key -> nothing
CREATE CONSTRAINT compound_code IF NOT EXISTS
FOR (c:Compound) REQUIRE c.code IS UNIQUE

// name: schema_compound_district -> nothing
CREATE INDEX compound_district IF NOT EXISTS FOR (c:Compound) ON (c.district_code)

// name: schema_result_key -> nothing
CREATE CONSTRAINT result_key IF NOT EXISTS
FOR (x:Result) REQUIRE x.result_key IS UNIQUE

// name: schema_result_day -> nothing
CREATE INDEX result_day IF NOT EXISTS FOR (x:Result) ON (x.day)

// name: schema_result_outcome_day -> nothing
// The positive results of some days without reading the others (the clusters, signals and
// attack rates of a window, a day's positives): a seek on (result, day), where result_day
// read every result of the window and then its `result`. (The console's latest positive day
// keeps result_day: read in day order from the end, it stops at the first positive.)
CREATE INDEX result_outcome_day IF NOT EXISTS FOR (x:Result) ON (x.result, x.day)

// name: schema_quarantine_key -> nothing
CREATE CONSTRAINT quarantine_key IF NOT EXISTS
FOR (q:Quarantine) REQUIRE q.qkey IS UNIQUE

// ---------------------------------------------------------------- the directory
// The population directory (cypher/directory.cypher).

// name: schema_directory_key -> nothing
CREATE CONSTRAINT directory_entry_key IF NOT EXISTS
FOR (e:DirectoryEntry) REQUIRE e.entry_key IS UNIQUE

// name: schema_directory_residence -> nothing
CREATE INDEX directory_residence IF NOT EXISTS
FOR (e:DirectoryEntry) ON (e.residence_compound_code)

// ---------------------------------------------------------------- tasks and cases
// cypher/tasks.cypher: the district queue; open tasks for the metrics; the reports' result day.

// name: schema_task_key -> nothing
CREATE CONSTRAINT task_id IF NOT EXISTS FOR (k:Task) REQUIRE k.task_id IS UNIQUE

// name: schema_task_queue -> nothing
CREATE INDEX task_queue IF NOT EXISTS FOR (k:Task) ON (k.district_code, k.sort_key)

// name: schema_task_open -> nothing
// Open tasks by status and district, with their age: the metrics' counts read the index alone.
CREATE INDEX task_open IF NOT EXISTS FOR (k:Task) ON (k.status, k.district_code, k.created_at)

// name: schema_task_result_day -> nothing
CREATE INDEX task_result_day IF NOT EXISTS FOR (k:Task) ON (k.result_day)

// name: schema_case_key -> nothing
CREATE CONSTRAINT case_person IF NOT EXISTS FOR (c:Case) REQUIRE c.person_id IS UNIQUE

// name: schema_case_collected -> nothing
CREATE INDEX case_collected IF NOT EXISTS FOR (c:Case) ON (c.collected_at)

// ---------------------------------------------------------------- statuses and the outbox
// Person statuses per day, events and their sequence (cypher/status.cypher).

// name: schema_person_day_key_dropped -> nothing
// A person's day is reached from its person, under the person's lock (cypher/status.cypher):
// no key, no index (docs/footprint.md). Days stored before keep their `key` until retention.
DROP CONSTRAINT person_day_key IF EXISTS

// name: schema_event_seq -> nothing
CREATE CONSTRAINT event_seq IF NOT EXISTS FOR (e:Event) REQUIRE e.seq IS UNIQUE

// name: schema_sequence_name -> nothing
CREATE CONSTRAINT sequence_name IF NOT EXISTS FOR (s:Sequence) REQUIRE s.name IS UNIQUE

// ---------------------------------------------------------------- webhooks
// Subscriptions and their deliveries (cypher/webhooks.cypher).

// name: schema_webhook_key -> nothing
CREATE CONSTRAINT webhook_id IF NOT EXISTS FOR (w:Webhook) REQUIRE w.webhook_id IS UNIQUE

// name: schema_delivery_key -> nothing
CREATE CONSTRAINT delivery_id IF NOT EXISTS FOR (d:Delivery) REQUIRE d.delivery_id IS UNIQUE

// name: schema_delivery_due -> nothing
CREATE INDEX delivery_due IF NOT EXISTS FOR (d:Delivery) ON (d.status, d.next_at)

// name: schema_delivery_hook_due -> nothing
CREATE INDEX delivery_hook_due IF NOT EXISTS FOR (d:Delivery) ON (d.webhook_id, d.status, d.next_at)

// name: schema_delivery_status -> nothing
// Deliveries by status (failed ones have no next_at, so delivery_due does not hold them).
CREATE INDEX delivery_status IF NOT EXISTS FOR (d:Delivery) ON (d.status)

// ---------------------------------------------------------------- access
// API keys, the audit log (cypher/security.cypher), the installation's settings (Meta).

// name: schema_key_id -> nothing
CREATE CONSTRAINT api_key_id IF NOT EXISTS FOR (k:ApiKey) REQUIRE k.key_id IS UNIQUE

// name: schema_audit_id -> nothing
CREATE CONSTRAINT audit_id IF NOT EXISTS FOR (a:Audit) REQUIRE a.audit_id IS UNIQUE

// name: schema_audit_at -> nothing
CREATE INDEX audit_at IF NOT EXISTS FOR (a:Audit) ON (a.at)

// name: schema_audit_seq -> nothing
CREATE INDEX audit_seq IF NOT EXISTS FOR (a:Audit) ON (a.seq)

// name: schema_meta_key -> nothing
CREATE CONSTRAINT meta_key IF NOT EXISTS
FOR (m:Meta) REQUIRE m.key IS UNIQUE

// ---------------------------------------------------------------- running it
// Console sessions and job leases (cypher/ops.cypher).

// name: schema_console_session -> nothing
CREATE CONSTRAINT console_session_id IF NOT EXISTS
FOR (s:ConsoleSession) REQUIRE s.sid_hash IS UNIQUE

// name: schema_lease_name -> nothing
CREATE CONSTRAINT lease_name IF NOT EXISTS FOR (l:Lease) REQUIRE l.name IS UNIQUE

// ---------------------------------------------------------------- retention
// The purged days and the aggregates kept of them (cypher/retention.cypher).

// name: schema_retention_day_key -> nothing
CREATE CONSTRAINT retention_day IF NOT EXISTS FOR (d:RetentionDay) REQUIRE d.day IS UNIQUE

// name: schema_day_aggregate_key -> nothing
CREATE CONSTRAINT day_aggregate_key IF NOT EXISTS FOR (a:DayAggregate) REQUIRE a.key IS UNIQUE

// ---------------------------------------------------------------- last
// Wait for the indexes to be online.

// name: schema_await -> nothing
// After a bulk import of a full round (26 M registrations) the indexes take minutes to fill.
CALL db.awaitIndexes(7200)
