// Operations: readiness, console sessions, leases of background jobs, metrics and backups.
// ConsoleSession and Lease nodes are the running service's state, not data: the admin dumps
// (count_by_label, dump_nodes) leave them out.

// name: tubetrace_procedures -> value
// params:
// The procedures of tubetrace's own this server has (engine/server/procedures; /readyz).
SHOW PROCEDURES YIELD name
WHERE name STARTS WITH 'tubetrace.'
RETURN collect(name) AS names

// name: indexes_not_online -> rows
// params:
SHOW INDEXES YIELD name, state
WHERE state <> 'ONLINE'
RETURN name, state

// ---------------------------------------------------------------- console sessions

// name: create_console_session -> value
// params: sid_hash, key_id, csrf, now, idle_until, expires_at
CREATE (s:ConsoleSession {sid_hash: $sid_hash, key_id: $key_id, csrf: $csrf, created_at: $now,
                          last_seen: $now, idle_until: $idle_until, expires_at: $expires_at})
RETURN s.sid_hash AS sid_hash

// name: find_console_session -> row?
// params: sid_hash
// The session with its key as it is now: a revoked key ends its sessions at the next request.
MATCH (s:ConsoleSession {sid_hash: $sid_hash})
OPTIONAL MATCH (k:ApiKey {key_id: s.key_id})
RETURN s {.*} AS session, k.role AS role, k.district AS district,
       k IS NULL OR k.revoked_at IS NOT NULL AS revoked

// name: touch_console_session -> value?
// params: sid_hash, now, idle_until
MATCH (s:ConsoleSession {sid_hash: $sid_hash})
SET s.last_seen = $now, s.idle_until = $idle_until
RETURN s.sid_hash AS sid_hash

// name: end_console_session -> value
// params: sid_hash
MATCH (s:ConsoleSession {sid_hash: $sid_hash})
DELETE s
RETURN count(*) AS ended

// name: expire_console_sessions -> value
// params: now
MATCH (s:ConsoleSession)
WHERE s.idle_until < $now OR s.expires_at < $now
DELETE s
RETURN count(*) AS expired

// ---------------------------------------------------------------- leases

// name: acquire_lease -> row?
// params: lease, holder, now, until
// Held by one process at a time: taken when free or expired, renewed by its holder. Locked,
// then checked: of two processes asking at once, the second sees the first's lease.
MERGE (l:Lease {name: $lease})
  ON CREATE SET l.holder = $holder, l.until = $until, l.since = $now
SET l._lock = true
REMOVE l._lock
WITH l
WHERE l.holder = $holder OR l.until < $now
SET l.since = CASE WHEN l.holder = $holder THEN l.since ELSE $now END
SET l.holder = $holder, l.until = $until
RETURN l.holder AS holder, l.until AS until

// name: claim_lease -> value?
// params: lease, holder, now, until
// Taken only when free or expired, never renewed: a daily job's lease runs it once a period.
MERGE (l:Lease {name: $lease})
  ON CREATE SET l.holder = $holder, l.until = $now, l.since = $now
SET l._lock = true
REMOVE l._lock
WITH l
WHERE l.until <= $now
SET l.holder = $holder, l.since = $now, l.until = $until
RETURN l.holder AS holder

// name: release_lease -> value?
// params: lease, holder, now
MATCH (l:Lease {name: $lease})
WHERE l.holder = $holder
SET l.until = $now
RETURN l.name AS name

// ---------------------------------------------------------------- metrics

// name: metrics_tasks_open -> rows
// params: open, overdue_before
// From the task_open index alone: no task node is read.
MATCH (k:Task)
USING INDEX k:Task(status, district_code, created_at)
WHERE k.status IN $open AND k.district_code IS NOT NULL AND k.created_at IS NOT NULL
RETURN k.district_code AS district_code, k.status AS status, count(*) AS n,
       count(CASE WHEN k.created_at < $overdue_before THEN 1 END) AS overdue

// name: metrics_records -> row
// params:
// Label counts come from the count store: constant time whatever the size.
CALL () { MATCH (n:Registration) RETURN count(n) AS registrations }
CALL () { MATCH (n:Result) RETURN count(n) AS results }
CALL () { MATCH (n:Compound) RETURN count(n) AS compounds }
CALL () { MATCH (n:DirectoryEntry) RETURN count(n) AS directory }
CALL () { MATCH (n:Person) RETURN count(n) AS persons }
CALL () { MATCH (n:Tube) RETURN count(n) AS tubes }
RETURN registrations, results, compounds, directory, persons, tubes

// name: metrics_quarantine -> rows
// params:
MATCH (q:Quarantine)
RETURN coalesce(q.kind, 'unknown') AS kind, count(*) AS n

// name: metrics_outbox -> row
// params:
// How far the slowest subscription's fan-out is behind the newest event, and when the oldest
// event it has not fanned out yet happened.
OPTIONAL MATCH (s:Sequence {name: 'events'})
WITH coalesce(s.value, 0) AS head
OPTIONAL MATCH (w:Webhook)
WITH head, min(w.cursor) AS slowest, count(w) AS subscriptions
OPTIONAL MATCH (e:Event {seq: slowest + 1})
RETURN head, subscriptions,
       CASE WHEN slowest IS NULL THEN 0 ELSE head - slowest END AS lag,
       toString(e.occurred_at) AS oldest_unfanned_at

// name: metrics_deliveries -> rows
// params:
// From the delivery_status index; a pending delivery's age is read from its node.
MATCH (d:Delivery)
USING INDEX d:Delivery(status)
WHERE d.status IN ['pending', 'failed']
RETURN d.status AS status, count(*) AS n,
       min(CASE WHEN d.status = 'pending' THEN d.created_at END) AS oldest,
       count(CASE WHEN d.status = 'pending' AND d.attempts > 0 THEN 1 END) AS retrying

// name: metrics_webhooks -> rows
// params:
MATCH (w:Webhook)
RETURN w.webhook_id AS webhook_id, coalesce(w.failures, 0) AS failures,
       w.parked_until IS NOT NULL AND w.parked_until > datetime() AS parked

// ---------------------------------------------------------------- backups

// name: backup_stats -> row
// params:
// Counts from the count store (APOC's meta statistics: the managed server ships APOC).
CALL apoc.meta.stats() YIELD labels, relTypesCount, nodeCount, relCount
RETURN nodeCount AS nodes, relCount AS relationships, labels, relTypesCount AS types

// name: backup_has_data -> value
// params:
// Anything but the service's own state (sessions, leases, the person-id key, the chain head).
MATCH (n)
WHERE NOT n:ConsoleSession AND NOT n:Lease AND NOT n:Meta
WITH n LIMIT 1
RETURN count(n) > 0 AS has_data

// name: clear_service_state -> value
// params:
// After a restore: the backup's console sessions and job leases belong to processes gone.
MATCH (n)
WHERE n:ConsoleSession OR n:Lease
DETACH DELETE n
RETURN count(*) AS cleared
