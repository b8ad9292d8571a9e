// API keys (stored hashed) and the append-only audit log.

// name: schema_key_id
CREATE CONSTRAINT api_key_id IF NOT EXISTS FOR (k:ApiKey) REQUIRE k.key_id IS UNIQUE

// name: schema_audit_id
CREATE CONSTRAINT audit_id IF NOT EXISTS FOR (a:Audit) REQUIRE a.audit_id IS UNIQUE

// name: schema_audit_at
CREATE INDEX audit_at IF NOT EXISTS FOR (a:Audit) ON (a.at)

// name: create_key
// params: key_id, hash, role, district, label
CREATE (k:ApiKey {key_id: $key_id, hash: $hash, role: $role, district: $district,
                  label: $label, created_at: datetime(), revoked_at: null})
RETURN k.key_id AS key_id

// name: find_key
// params: key_id
MATCH (k:ApiKey {key_id: $key_id})
USING INDEX SEEK k:ApiKey(key_id)
RETURN k.key_id AS key_id, k.hash AS hash, k.role AS role, k.district AS district,
       k.revoked_at IS NOT NULL AS revoked

// name: list_keys
MATCH (k:ApiKey)
RETURN k {.key_id, .role, .district, .label, .created_at, .revoked_at} AS key
ORDER BY k.created_at

// name: revoke_key
// params: key_id
MATCH (k:ApiKey {key_id: $key_id})
USING INDEX SEEK k:ApiKey(key_id)
SET k.revoked_at = coalesce(k.revoked_at, datetime())
RETURN k.key_id AS key_id

// name: list_audit
// params: since, key_id, after, limit
MATCH (a:Audit)
WHERE a.at >= $since AND ($key_id IS NULL OR a.key_id = $key_id)
  AND a.audit_id > $after
RETURN a {.audit_id, .at, .key_id, .role, .action, .target, .person_ids, .reason, .status,
          .detail} AS entry
ORDER BY a.audit_id
LIMIT $limit

// name: prune_audit
// params: before
MATCH (a:Audit)
WHERE a.at < $before
WITH a LIMIT 100000
DELETE a
RETURN count(*) AS pruned

// name: append_audit_batch
// params: entries
UNWIND $entries AS entry
CREATE (a:Audit)
SET a = entry, a.at = datetime(entry.at)
RETURN count(a) AS n
