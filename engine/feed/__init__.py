"""Each person's status per sampling day, the status-changes feed and the event outbox."""
