// The bulk import (loaders/bulk.py, loaders/bulk_files.py): an empty database first, then the
// dispatch and the residences of what it imported.

// name: count_nodes_except_meta -> value
MATCH (n)
WHERE NOT n:Meta AND NOT n:ConsoleSession AND NOT n:Lease
RETURN count(n) AS n

// name: results_to_dispatch -> rows
// After a bulk import: the results that make tasks (their retests' results follow them).
MATCH (x:Result)
WHERE x.result IN ['positive', 'invalid']
RETURN x.result_key AS key
ORDER BY x.reported_at, x.result_key

// name: registrations_without_known_compound -> rows
MATCH (r:Registration)
WHERE NOT EXISTS { (r)-[:AT_COMPOUND]->(c:Compound) WHERE c.known }
RETURN r.reg_key AS reg_key
ORDER BY reg_key

// name: mark_duplicate_registrations -> nothing
// params: keys
// After a bulk import: its duplicate registrations (loaders/bulk_files.py, mark_duplicates).
UNWIND $keys AS key
MATCH (r:Registration {reg_key: key})
SET r.duplicate = true

// name: mark_unplaced_persons -> nothing
// params: reg_keys
// After a bulk import: the persons of its registrations at no known compound
// (registrations_without_known_compound), as link_registrations marks them online.
UNWIND $reg_keys AS key
MATCH (r:Registration {reg_key: key})-[:OF_PERSON]->(p:Person)
SET p.unplaced = true
