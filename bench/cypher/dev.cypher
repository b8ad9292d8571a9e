// A development database, for the benchmark and the tests (bench/devdb.py): emptied between
// runs, counted. Not shipped: loaded by `bench.devdb.dev_book()` on top of cypher/.

// name: wipe_all -> nothing
// Everything but the installation's person-id key: a running API keeps it cached, and person
// ids must not change under it (tests and benchmarks wipe between runs).
MATCH (n)
WHERE NOT (n:Meta AND n.key = 'person_id_secret')
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS

// name: wipe_audit_chain -> nothing
// After wipe_all, in one transaction that holds the chain head's lock (see devdb.wipe).
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

// name: count_by_label -> rows
// The data's nodes: console sessions and job leases are the running service's state (ops).
MATCH (n)
WHERE NOT n:ConsoleSession AND NOT n:Lease
UNWIND labels(n) AS label
RETURN label, count(*) AS n
ORDER BY label
