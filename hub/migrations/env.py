"""Alembic environment: runs on the connection `hub.store` hands over."""

from alembic import context

from hub.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through hub.store.upgrade / python -m hub init")

# Batch mode lets ALTER TABLE work on SQLite, which rewrites the table instead.
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
