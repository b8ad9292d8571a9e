// Webhook subscriptions and their deliveries. Each subscription keeps a cursor into the event
// outbox; the worker turns new events into deliveries, then posts them.

// name: schema_webhook_key
CREATE CONSTRAINT webhook_id IF NOT EXISTS FOR (w:Webhook) REQUIRE w.webhook_id IS UNIQUE

// name: schema_delivery_key
CREATE CONSTRAINT delivery_id IF NOT EXISTS FOR (d:Delivery) REQUIRE d.delivery_id IS UNIQUE

// name: schema_delivery_due
CREATE INDEX delivery_due IF NOT EXISTS FOR (d:Delivery) ON (d.status, d.next_at)

// name: create_webhook
// params: webhook_id, url, district_code, events, secret, now
OPTIONAL MATCH (s:Sequence {name: 'events'})
CREATE (w:Webhook {webhook_id: $webhook_id, url: $url, district_code: $district_code,
                   events: $events, secret: $secret, created_at: $now,
                   cursor: coalesce(s.value, 0)})
RETURN w.webhook_id AS webhook_id

// name: list_webhooks
MATCH (w:Webhook)
RETURN w {.webhook_id, .url, .district_code, .events, .created_at, .cursor, .secret} AS webhook
ORDER BY w.created_at, w.webhook_id

// name: remove_webhook
// params: webhook_id
MATCH (w:Webhook {webhook_id: $webhook_id})
WITH w, w.webhook_id AS id
DELETE w
RETURN id

// name: events_after
// params: after, limit
MATCH (e:Event)
WHERE e.seq > $after
RETURN e {.*} AS event
ORDER BY e.seq
LIMIT $limit

// name: events_by_seq
// params: seqs
UNWIND $seqs AS seq
MATCH (e:Event {seq: seq})
OPTIONAL MATCH (p:Person {person_id: e.person_id})
CALL (p, e) {
  OPTIONAL MATCH (p)<-[:OF_PERSON]-(r:Registration {day: e.day})
  WITH r ORDER BY r.collected_at, r.record_id LIMIT 1
  RETURN r.name AS name
}
RETURN e {.*, id_type: p.id_type, id_number: p.id_number, name: name} AS event

// name: create_deliveries
// params: webhook_id, expected, cursor, deliveries, now
// No row when the subscription is gone or its cursor moved meanwhile. Locked, then checked:
// a check before the lock let two workers (two API processes) both pass it, and the deliveries
// of the second then broke the delivery_id constraint.
MATCH (w:Webhook {webhook_id: $webhook_id})
SET w._lock = true
REMOVE w._lock
WITH w
WHERE w.cursor = $expected
SET w.cursor = $cursor
WITH w
CALL (w) {
  UNWIND $deliveries AS d
  CREATE (x:Delivery {delivery_id: d.delivery_id, webhook_id: w.webhook_id,
                      event_seq: d.event_seq, event_id: d.event_id, event_type: d.event_type,
                      status: 'pending', attempts: 0, log: [], created_at: $now,
                      window_start: $now, next_at: $now})
  RETURN count(x) AS n
}
RETURN n

// name: claim_deliveries
// params: now, lease_until, limit, claim
// Locked, then checked again: of two workers (two API processes) only one claims a delivery;
// the claim token lets only that attempt record its outcome.
MATCH (d:Delivery)
USING INDEX SEEK d:Delivery(status, next_at)
WHERE d.status = 'pending' AND d.next_at <= $now
// The whole index key: the seek reads in order and stops at the limit (no sort of every due).
WITH d ORDER BY d.status, d.next_at LIMIT $limit
SET d._lock = true
REMOVE d._lock
WITH d
WHERE d.status = 'pending' AND d.next_at <= $now
SET d.next_at = $lease_until, d.claim = $claim
RETURN d {.*} AS delivery

// name: record_attempt
// params: delivery_id, claim, status, next_at, entry, error, status_code, now
// Only the claimed attempt records: a redelivery asked for meanwhile is not overwritten.
MATCH (d:Delivery {delivery_id: $delivery_id})
WHERE d.claim = $claim
REMOVE d.claim
SET d.status = $status, d.next_at = $next_at, d.attempts = d.attempts + 1,
    d.log = d.log + [$entry], d.last_error = $error, d.last_status_code = $status_code,
    d.last_attempt_at = $now,
    d.delivered_at = CASE WHEN $status = 'delivered' THEN $now ELSE d.delivered_at END
RETURN d.delivery_id AS delivery_id

// name: list_deliveries
// params: failed_only, after, limit
MATCH (d:Delivery)
WHERE d.delivery_id > $after AND (NOT $failed_only OR d.status = 'failed')
RETURN d {.*} AS delivery
ORDER BY d.delivery_id
LIMIT $limit

// name: redeliver
// params: delivery_id, now
MATCH (d:Delivery {delivery_id: $delivery_id})
SET d.status = 'pending', d.next_at = $now, d.window_start = $now
REMOVE d.claim
RETURN d.delivery_id AS delivery_id
