"""The Neo4j gateway and the query book: named queries only, retries, the outage breaker."""
