"""tubetrace engine: domain logic and the Neo4j gateway."""
