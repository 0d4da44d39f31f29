"""Embedded PostgreSQL used when no database is configured."""
