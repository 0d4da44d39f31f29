"""Database wiring shared by every domain: the tenant model base and where migrations live."""
