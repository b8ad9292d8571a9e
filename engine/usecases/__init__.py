"""The use cases every interface calls (reads and writes); each records its audit entry."""
