// Queries of the benchmark (bench/run.py, bench/pg.py), side by side with PostgreSQL.

// name: second_ring -> row?
// params: person_id, since, until
// The second exposure ring of a person over a window of days: everyone who shared a pooled
// tube with someone who shared a pooled tube with them (ring 1 and the person excluded).
MATCH (p:Person {person_id: $person_id})<-[:OF_PERSON]-(r:Registration)-[:INTO_TUBE]->(t:Tube)
USING INDEX SEEK p:Person(person_id)
WHERE r.pool_size > 1 AND r.day >= $since AND r.day <= $until
MATCH (t)<-[:INTO_TUBE]-(:Registration)-[:OF_PERSON]->(p1:Person)
WHERE p1 <> p
WITH p, collect(DISTINCT p1) AS ring1
UNWIND ring1 AS p1
OPTIONAL MATCH (p1)<-[:OF_PERSON]-(r1:Registration)-[:INTO_TUBE]->(t1:Tube)
WHERE r1.pool_size > 1 AND r1.day >= $since AND r1.day <= $until
OPTIONAL MATCH (t1)<-[:INTO_TUBE]-(:Registration)-[:OF_PERSON]->(p2:Person)
WHERE p2 <> p AND NOT p2 IN ring1
RETURN [x IN ring1 | x.person_id] AS ring1, collect(DISTINCT p2.person_id) AS ring2

// name: confirmed_cases -> rows
// params: limit
MATCH (c:Case)
RETURN c.person_id AS person_id, c.collected_at AS collected_at
ORDER BY person_id
LIMIT $limit

// name: heap_used -> value?
// The server's used JVM heap in bytes (bench/run.py reports it per size).
CALL dbms.queryJmx('java.lang:type=Memory') YIELD attributes
RETURN attributes.HeapMemoryUsage.value.properties.used AS used

// name: footprint_indexes -> rows
SHOW INDEXES YIELD id, name
RETURN id, name

// name: footprint_counts -> row
// Nodes, relationships and their properties (bench/footprint.py).
CALL () {
  MATCH (n)
  RETURN count(n) AS nodes, sum(size(keys(n))) AS node_properties
}
CALL () {
  MATCH ()-[r]->()
  RETURN count(r) AS relationships, sum(size(keys(r))) AS relationship_properties
}
RETURN nodes, node_properties, relationships, relationship_properties

// name: footprint_by_label -> rows
MATCH (n)
UNWIND labels(n) AS label
RETURN label, count(*) AS nodes, sum(size(keys(n))) AS properties
ORDER BY label

// name: footprint_probe_nodes -> nothing
// params: rows
// One kind of value at a time (bench/footprint.py, --footprint): a node each.
UNWIND $rows AS row
CREATE (n:Probe)
SET n = row

// name: footprint_probe_rels -> nothing
// params: rows
UNWIND $rows AS row
CREATE (:ProbeEnd)-[r:PROBE]->(:ProbeEnd)
SET r = row

// name: footprint_probe_indexed -> nothing
// params: rows
UNWIND $rows AS row
CREATE (:Indexed {v: row.v})

// name: footprint_probe_index -> nothing
CREATE INDEX probe_index IF NOT EXISTS FOR (n:Indexed) ON (n.v)

// name: footprint_await_index -> nothing
CALL db.awaitIndexes(600)

// name: footprint_drop_probe_index -> nothing
DROP INDEX probe_index IF EXISTS

// name: footprint_drop_indexed -> nothing
// The previous index probe's nodes (their records are reused: only the index is measured).
MATCH (n:Indexed)
DETACH DELETE n

// name: campaign_open_follow_ups -> rows
// The persons of open follow-up tasks (bench/campaign.py registers their single-tube retest),
// with what the pooled registration that made the task said of them.
MATCH (k:Task {kind: 'follow_up'})
WHERE k.status IN ['pending', 'acknowledged', 'contacted']
MATCH (k)-[:FOR_PERSON]->(p:Person)
MATCH (k)-[:FOR_TUBE]->(:Tube)<-[:INTO_TUBE]-(r:Registration)-[:OF_PERSON]->(p)
WITH k, p, min([r.day, [(r)-[:AT_COMPOUND]->(c) | c.code][0], r.name, r.phone]) AS what
RETURN k.task_id AS task_id, p.id_type AS id_type, p.id_number AS id_number,
       what[1] AS compound_code, what[2] AS name, what[3] AS phone
ORDER BY task_id

// name: campaign_tubes_of_day -> rows
// params: day
// The tubes swabbed on a sampling day (bench/campaign.py traces a sample of them).
MATCH (r:Registration)-[:INTO_TUBE]->(t:Tube)
WHERE r.day = $day
RETURN DISTINCT t.code AS code

// name: campaign_registrations -> value
MATCH (r:Registration)
RETURN count(r) AS n

// name: campaign_label_counts -> value
// Nodes per label, from the counts store (no scan).
CALL apoc.meta.stats() YIELD labels
RETURN labels
