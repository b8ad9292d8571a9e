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
