// API keys (stored hashed) and the append-only audit log.

// name: create_key -> value
// params: key_id, hash, role, district, label, labs
// `labs`: the lab codes a lab key may send results for (null for other roles).
CREATE (k:ApiKey {key_id: $key_id, hash: $hash, role: $role, district: $district,
                  label: $label, labs: $labs, created_at: datetime(), revoked_at: null})
RETURN k.key_id AS key_id

// name: find_key -> row?
// params: key_id
MATCH (k:ApiKey {key_id: $key_id})
USING INDEX SEEK k:ApiKey(key_id)
RETURN k.key_id AS key_id, k.hash AS hash, k.role AS role, k.district AS district,
       k.labs AS labs, k.revoked_at IS NOT NULL AS revoked

// name: list_keys -> rows
MATCH (k:ApiKey)
RETURN k {.key_id, .role, .district, .labs, .label, .created_at, .revoked_at} AS key
ORDER BY k.created_at

// name: revoke_key -> value?
// params: key_id
MATCH (k:ApiKey {key_id: $key_id})
USING INDEX SEEK k:ApiKey(key_id)
SET k.revoked_at = coalesce(k.revoked_at, datetime())
RETURN k.key_id AS key_id

// name: list_audit -> rows
// params: since, key_id, after, limit
MATCH (a:Audit)
// A key's entries are those it proved, and the refused attempts that claimed its id.
WHERE a.at >= $since AND ($key_id IS NULL OR a.key_id = $key_id OR a.claimed_key_id = $key_id)
  AND a.audit_id > $after
RETURN a {.audit_id, .at, .key_id, .claimed_key_id, .role, .action, .target, .person_ids,
          .reason, .status, .detail, .request_id} AS entry
ORDER BY a.audit_id
LIMIT $limit

// name: prune_audit -> value
// params: before
// Entries past retention go, oldest seq first and only up to the first entry still kept
// (a journal replayed late carries an old time and a high seq: it waits for its
// neighbours); the head remembers the highest pruned seq, so that `audit verify` tells
// pruning from deletion.
OPTIONAL MATCH (kept:Audit)
WHERE kept.at >= $before
WITH min(kept.seq) AS keep_from
MATCH (a:Audit)
WHERE a.at < $before AND (keep_from IS NULL OR a.seq < keep_from)
WITH a ORDER BY a.seq LIMIT 100000
WITH collect(a) AS old
WITH old, reduce(top = 0, x IN old | CASE WHEN coalesce(x.seq, 0) > top THEN x.seq ELSE top END)
     AS top
MERGE (h:Meta {key: 'audit_head'})
  ON CREATE SET h.seq = 0, h.hash = ''
SET h.pruned_through = CASE WHEN top > coalesce(h.pruned_through, 0) THEN top
                            ELSE coalesce(h.pruned_through, 0) END
FOREACH (x IN old | DELETE x)
RETURN size(old) AS pruned

// name: lock_audit_head -> row
// The chain's head: its write lock serialises appends from every process (API, CLI).
MERGE (h:Meta {key: 'audit_head'})
  ON CREATE SET h.seq = 0, h.hash = ''
SET h.locked = true
RETURN h.seq AS seq, h.hash AS hash

// name: existing_audit_ids -> rows
// params: ids
UNWIND $ids AS id
MATCH (a:Audit {audit_id: id})
RETURN a.audit_id AS audit_id

// name: append_audit_batch -> value?
// params: entries, seq, hash
UNWIND $entries AS entry
CREATE (a:Audit)
SET a = entry, a.at = datetime(entry.at)
WITH count(a) AS n
MATCH (h:Meta {key: 'audit_head'})
SET h.seq = $seq, h.hash = $hash
RETURN n

// name: audit_head -> row
OPTIONAL MATCH (h:Meta {key: 'audit_head'})
RETURN coalesce(h.seq, 0) AS seq, coalesce(h.hash, '') AS hash,
       coalesce(h.pruned_through, 0) AS pruned_through

// name: audit_chain_page -> rows
// params: after, limit
MATCH (a:Audit)
WHERE a.seq > $after
RETURN a {.audit_id, .at, .key_id, .claimed_key_id, .role, .action, .target, .person_ids,
          .reason, .status, .detail, .request_id, .seq, .prev_hash, .hash} AS entry
ORDER BY a.seq
LIMIT $limit
