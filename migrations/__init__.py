"""Alembic migrations of the event store: the only way its schema changes."""
