"""Running it: backups, retention, daily jobs under a lease, metrics gauges."""
