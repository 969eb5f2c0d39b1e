"""Model registry: SQLAlchemy models, engine set-up and repository functions.

Owned by the service side; training imports it to write fits. The schema is created by
Alembic migrations in `migrations/` only (never `create_all` at run time).
"""
