"""Model registry: tables, engine set-up, reads, writes, files, the model cache and the
live routing table.

Owned by the service side; training imports it to write fits. The schema is created by
Alembic migrations in `migrations/` only (never `create_all` at run time).
"""
