// Maintenance queries used by tests, benchmarks and the bulk import.

// name: wipe_all
// Everything but the installation's person-id key: a running API keeps it cached, and person
// ids must not change under it (tests and benchmarks wipe between runs).
MATCH (n)
WHERE NOT (n:Meta AND n.key = 'person_id_secret')
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS

// name: wipe_audit_chain
// After wipe_all, in one transaction that holds the chain head's lock (see Gateway.wipe).
// MERGE: wipe_all has usually deleted the head; a new one is locked (a flush that creates
// it meanwhile waits on the key's constraint) and deleted with the chain.
MERGE (h:Meta {key: 'audit_head'})
SET h.locked = true
WITH h
CALL () {
  MATCH (a:Audit)
  DETACH DELETE a
}
DELETE h

// name: filler_nodes
// params: n
// Nodes that only make a wipe take several transactions (tests).
UNWIND range(1, $n) AS i
CREATE (:Filler {i: i})

// name: datetime_texts
// params: values
// Datetimes as the database writes them as text (tests of engine/domain.py, iso).
UNWIND $values AS value
RETURN value, toString(value) AS text

// name: count_by_label
// The data's nodes: console sessions and job leases are the running service's state (ops).
MATCH (n)
WHERE NOT n:ConsoleSession AND NOT n:Lease
UNWIND labels(n) AS label
RETURN label, count(*) AS n
ORDER BY label

// name: dump_nodes
MATCH (n)
WHERE NOT n:ConsoleSession AND NOT n:Lease
RETURN labels(n) AS labels, properties(n) AS props

// name: dump_relationships
MATCH (a)-[r]->(b)
RETURN type(r) AS type, properties(r) AS props, labels(a) AS from_labels,
       properties(a) AS from_props, labels(b) AS to_labels, properties(b) AS to_props

// name: count_nodes_except_meta
MATCH (n)
WHERE NOT n:Meta AND NOT n:ConsoleSession AND NOT n:Lease
RETURN count(n) AS n

// name: results_to_dispatch
// After a bulk import: the results that make tasks (their retests' results follow them).
MATCH (x:Result)
WHERE x.result IN ['positive', 'invalid']
RETURN x.result_key AS key
ORDER BY x.reported_at, x.result_key

// name: registrations_without_known_compound
MATCH (r:Registration)
WHERE NOT EXISTS { (r)-[:AT_COMPOUND]->(c:Compound) WHERE c.known }
RETURN r.reg_key AS reg_key
ORDER BY reg_key

// name: fuzz_stored
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

// name: tamper_delete_audit
// params: seq
// Tests only: what a Neo4j Browser user could do to the audit log.
MATCH (a:Audit {seq: $seq})
DELETE a
RETURN count(*) AS deleted

// name: tamper_edit_audit
// params: seq, target
MATCH (a:Audit {seq: $seq})
SET a.target = $target
RETURN count(*) AS edited

// name: tamper_forget_key_labs
// params: key_id
// Tests only: a lab key as made before lab keys named their labs (issue 21).
MATCH (k:ApiKey {key_id: $key_id})
REMOVE k.labs
RETURN count(k) AS keys

// name: count_audit
// params: action, key_id
MATCH (a:Audit)
WHERE ($action IS NULL OR a.action = $action) AND ($key_id IS NULL OR a.key_id = $key_id)
RETURN count(a) AS n
