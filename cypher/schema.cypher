// Constraints and indexes, applied in order on first use. Every statement is idempotent.

// name: schema_registration_global_id_dropped -> nothing
// A registration is (source, record_id): two senders may use the same record_id.
DROP CONSTRAINT registration_record_id IF EXISTS

// name: schema_registration_key_backfill -> nothing
// Registrations stored before keys were per sender count as sent by files (source file).
MATCH (r:Registration)
WHERE r.reg_key IS NULL
SET r.reg_key = 'file/' + r.record_id, r.sender = 'file'

// name: schema_registration_key -> nothing
CREATE CONSTRAINT registration_key IF NOT EXISTS
FOR (r:Registration) REQUIRE r.reg_key IS UNIQUE

// name: schema_registration_record_id -> nothing
CREATE INDEX registration_record_id_lookup IF NOT EXISTS
FOR (r:Registration) ON (r.record_id)

// name: schema_person_key -> nothing
CREATE CONSTRAINT person_id IF NOT EXISTS
FOR (p:Person) REQUIRE p.person_id IS UNIQUE

// name: schema_tube_key -> nothing
CREATE CONSTRAINT tube_code IF NOT EXISTS
FOR (t:Tube) REQUIRE t.code IS UNIQUE

// name: schema_box_key -> nothing
CREATE CONSTRAINT box_code IF NOT EXISTS
FOR (b:Box) REQUIRE b.code IS UNIQUE

// name: schema_compound_key -> nothing
CREATE CONSTRAINT compound_code IF NOT EXISTS
FOR (c:Compound) REQUIRE c.code IS UNIQUE

// name: schema_result_key -> nothing
CREATE CONSTRAINT result_key IF NOT EXISTS
FOR (x:Result) REQUIRE x.result_key IS UNIQUE

// name: schema_quarantine_key -> nothing
CREATE CONSTRAINT quarantine_key IF NOT EXISTS
FOR (q:Quarantine) REQUIRE q.qkey IS UNIQUE

// name: schema_meta_key -> nothing
CREATE CONSTRAINT meta_key IF NOT EXISTS
FOR (m:Meta) REQUIRE m.key IS UNIQUE

// name: schema_registration_day -> nothing
CREATE INDEX registration_day IF NOT EXISTS FOR (r:Registration) ON (r.day)

// name: schema_result_day -> nothing
CREATE INDEX result_day IF NOT EXISTS FOR (x:Result) ON (x.day)

// name: schema_compound_district -> nothing
CREATE INDEX compound_district IF NOT EXISTS FOR (c:Compound) ON (c.district_code)

// name: schema_await -> nothing
// After a bulk import of a full round (26 M registrations) the indexes take minutes to fill.
CALL db.awaitIndexes(7200)
