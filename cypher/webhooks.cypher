// Webhook subscriptions and their deliveries. Each subscription keeps a cursor into the event
// outbox; the worker turns new events into deliveries, then posts them.

// name: create_webhook -> value
// params: webhook_id, url, district_code, events, secret, now
OPTIONAL MATCH (s:Sequence {name: 'events'})
CREATE (w:Webhook {webhook_id: $webhook_id, url: $url, district_code: $district_code,
                   events: $events, secret: $secret, created_at: $now,
                   cursor: coalesce(s.value, 0)})
RETURN w.webhook_id AS webhook_id

// name: list_webhooks -> rows
// Each subscription, with the number of the last event written (`head`; 0 before any).
OPTIONAL MATCH (s:Sequence {name: 'events'})
WITH coalesce(s.value, 0) AS head
MATCH (w:Webhook)
RETURN w {.webhook_id, .url, .district_code, .events, .created_at, .cursor, .secret,
          failures: coalesce(w.failures, 0), .parked_until, parks: coalesce(w.parks, 0),
          .last_error} AS webhook, head
ORDER BY w.created_at, w.webhook_id

// name: remove_webhook -> value?
// params: webhook_id
MATCH (w:Webhook {webhook_id: $webhook_id})
WITH w, w.webhook_id AS id
DELETE w
RETURN id

// name: events_after -> rows
// params: after, limit
MATCH (e:Event)
WHERE e.seq > $after
RETURN e {.*, event_id: 'evt_' + toString(e.seq), occurred_at: toString(e.occurred_at),
          type: coalesce(e.type, 'status.changed')} AS event
ORDER BY e.seq
LIMIT $limit

// name: events_by_seq -> rows
// params: seqs
UNWIND $seqs AS seq
MATCH (e:Event {seq: seq})
OPTIONAL MATCH (p:Person {person_id: e.person_id})
CALL (p, e) {
  OPTIONAL MATCH (p)<-[:OF_PERSON]-(r:Registration {day: e.day})
  WITH r ORDER BY r.collected_at, r.record_id LIMIT 1
  RETURN r.name AS name
}
RETURN e {.*, event_id: 'evt_' + toString(e.seq), occurred_at: toString(e.occurred_at),
          type: coalesce(e.type, 'status.changed'),
          id_type: p.id_type, id_number: p.id_number, name: name} AS event

// name: create_deliveries -> value?
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

// name: claim_deliveries -> rows
// params: hooks, most, now, lease_until, claim
// Each subscription's own due deliveries, oldest first, at most `room` of each (`hooks`:
// [{webhook_id, room}], room <= $most): one subscription's backlog is never read for another.
// Locked, then checked again: of two workers (two API processes) only one claims a delivery;
// the claim token lets only that attempt record its outcome.
UNWIND $hooks AS h
CALL (h) {
  MATCH (d:Delivery)
  USING INDEX SEEK d:Delivery(webhook_id, status, next_at)
  WHERE d.webhook_id = h.webhook_id AND d.status = 'pending' AND d.next_at <= $now
  // The whole index key: the seek reads in order and stops at the limit.
  WITH d ORDER BY d.webhook_id, d.status, d.next_at LIMIT $most
  WITH h, collect(d) AS due
  UNWIND due[0..h.room] AS d
  SET d._lock = true
  REMOVE d._lock
  WITH d
  WHERE d.status = 'pending' AND d.next_at <= $now
  SET d.next_at = $lease_until, d.claim = $claim
  RETURN d
}
RETURN d {.*} AS delivery

// name: webhook_outcomes -> rows
// params: rows, now, threshold, park_s, park_max_s
// The breaker, from a batch of attempts (rows: {webhook_id, reset, failed, error}: a success
// among them resets the count, `failed` came after it). `threshold` failed attempts in a row
// park the endpoint for park_s, 2 park_s, 4 park_s ... (at most park_max_s); once the park is
// over one attempt probes it; a success closes the breaker.
UNWIND $rows AS r
MATCH (w:Webhook {webhook_id: r.webhook_id})
WITH w, r, CASE WHEN r.reset THEN r.failed ELSE coalesce(w.failures, 0) + r.failed END AS failures,
     CASE WHEN r.reset THEN 0 ELSE coalesce(w.parks, 0) END AS parks
WITH w, r, failures, parks, r.failed > 0 AND failures >= $threshold AS park,
     $park_s * 2.0 ^ parks AS wait
SET w.failures = failures,
    w.last_error = CASE WHEN r.failed > 0 THEN r.error ELSE w.last_error END,
    w.parks = CASE WHEN park THEN parks + 1 ELSE parks END,
    w.parked_until = CASE
      WHEN park THEN $now + duration({milliseconds:
                                      toInteger(1000 * CASE WHEN wait > $park_max_s
                                                            THEN $park_max_s ELSE wait END)})
      WHEN r.reset THEN null
      ELSE w.parked_until END
RETURN w.webhook_id AS webhook_id, CASE WHEN park THEN w.parked_until END AS parked

// name: release_deliveries -> value
// params: deliveries, next_at
// Claimed deliveries handed back without an attempt (their endpoint was parked meanwhile):
// due again when the park ends. Only under the claim they were taken with.
UNWIND $deliveries AS r
MATCH (d:Delivery {delivery_id: r.delivery_id})
WHERE d.claim = r.claim
REMOVE d.claim
SET d.next_at = $next_at
RETURN count(d) AS released

// name: record_attempts -> rows
// params: rows
// Only the claimed attempt records: a redelivery asked for meanwhile is not overwritten.
UNWIND $rows AS r
MATCH (d:Delivery {delivery_id: r.delivery_id})
WHERE d.claim = r.claim
REMOVE d.claim
SET d.status = r.status, d.next_at = r.next_at, d.attempts = d.attempts + 1,
    d.log = d.log + [r.entry], d.last_error = r.error, d.last_status_code = r.status_code,
    d.last_attempt_at = r.now,
    d.delivered_at = CASE WHEN r.status = 'delivered' THEN r.now ELSE d.delivered_at END
RETURN d.delivery_id AS delivery_id

// name: list_deliveries -> rows
// params: failed_only, after, limit
MATCH (d:Delivery)
WHERE d.delivery_id > $after AND (NOT $failed_only OR d.status = 'failed')
RETURN d {.*} AS delivery
ORDER BY d.delivery_id
LIMIT $limit

// name: redeliver -> value?
// params: delivery_id, now
MATCH (d:Delivery {delivery_id: $delivery_id})
SET d.status = 'pending', d.next_at = $now, d.window_start = $now
REMOVE d.claim
RETURN d.delivery_id AS delivery_id
