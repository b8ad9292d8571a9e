"""Pushing events out: webhook subscriptions, deliveries and the guarded egress."""
