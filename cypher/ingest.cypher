// Writes of the loaders. Rows come in batches; a row whose key is already stored is left alone
// and reported back with the stored content hash, so the caller can tell duplicate from conflict.

// name: existing_registrations
// params: keys
UNWIND $keys AS key
MATCH (r:Registration {reg_key: key})
USING INDEX SEEK r:Registration(reg_key)
RETURN r.reg_key AS key, r.content_hash AS content_hash, r.raw AS raw

// name: merge_registrations
// params: rows, token
UNWIND $rows AS row
MERGE (r:Registration {reg_key: row.key})
  ON CREATE SET r += row.props, r.write_token = $token
RETURN row.key AS key, r.write_token = $token AS created, r.content_hash AS content_hash,
       r.raw AS raw

// name: link_registrations
// params: rows, token
UNWIND $rows AS row
MATCH (r:Registration {reg_key: row.key})
USING INDEX SEEK r:Registration(reg_key)
WHERE r.write_token = $token
MERGE (t:Tube {code: row.links.tube_code})
MERGE (p:Person {person_id: row.links.person.person_id})
  ON CREATE SET p += row.links.person
CREATE (r)-[:INTO_TUBE]->(t), (r)-[:OF_PERSON]->(p)
REMOVE r.write_token
WITH r, row
CALL (r, row) {
  WITH r, row WHERE row.links.box_code IS NOT NULL
  MERGE (b:Box {code: row.links.box_code})
  CREATE (r)-[:IN_BOX]->(b)
}
CALL (r, row) {
  WITH r, row WHERE row.links.compound_code IS NOT NULL
  MERGE (c:Compound {code: row.links.compound_code})
  CREATE (r)-[:AT_COMPOUND]->(c)
}
CALL (row) {
  WITH row WHERE row.links.box_code IS NOT NULL AND row.links.compound_code IS NOT NULL
    AND row.links.day IS NOT NULL
  MATCH (b:Box {code: row.links.box_code})
  MATCH (c:Compound {code: row.links.compound_code})
  MERGE (b)-[:FILLED_AT {day: row.links.day}]->(c)
}
RETURN count(*) AS linked

// name: registration_derived_flags
// params: keys
UNWIND $keys AS key
MATCH (r:Registration {reg_key: key})-[:OF_PERSON]->(p:Person)
USING INDEX SEEK r:Registration(reg_key)
OPTIONAL MATCH (r)-[:AT_COMPOUND]->(c:Compound)
// Filtered after the expansion: a `day` predicate inside the pattern lets the planner start
// from the day index (every registration of the day) instead of from the person.
WITH key, r, c, [other IN [(p)<-[:OF_PERSON]-(o:Registration) | o]
                 WHERE other <> r AND other.day = r.day AND other.pool_size > 1
                   AND other.tube_code <> r.tube_code] AS same_day
RETURN key,
       [flag IN [
         CASE WHEN c IS NOT NULL AND c.known IS NULL THEN 'unknown_compound' END,
         CASE WHEN r.pool_size > 1 AND size(same_day) > 0 THEN 'duplicate_registration' END
       ] WHERE flag IS NOT NULL] AS derived_flags

// name: merge_results
// params: rows, token
UNWIND $rows AS row
MERGE (x:Result {result_key: row.key})
  ON CREATE SET x += row.props, x.write_token = $token
WITH x, row, x.write_token = $token AS created
FOREACH (_ IN CASE WHEN created THEN [1] ELSE [] END |
  MERGE (t:Tube {code: row.links.tube_code})
  MERGE (x)-[:FOR_TUBE]->(t)
)
REMOVE x.write_token
RETURN row.key AS key, created, x.content_hash AS content_hash, x.raw AS raw

// name: merge_compounds
// params: rows
UNWIND $rows AS row
MERGE (c:Compound {code: row.key})
WITH c, row, c.content_hash AS before
SET c += row.props
RETURN row.key AS key, before IS NULL AS created, before AS content_hash, row.raw AS raw

// name: merge_quarantine
// params: rows
UNWIND $rows AS row
MERGE (q:Quarantine {qkey: row.qkey})
  ON CREATE SET q += row, q.at = datetime()
RETURN count(q) AS stored

// name: list_quarantine
// params: after, limit
MATCH (q:Quarantine)
WHERE q.qkey > $after
RETURN q {.qkey, .kind, .source, .line, .field, .reason, .raw, .existing, .at} AS item
ORDER BY q.qkey
LIMIT $limit
