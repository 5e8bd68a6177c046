"""Alembic environment: runs on the connection `hub.store` hands over."""

from alembic import context

from hub.models import Base
from hub.partitions import include_object

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
    # Day partitions are made by `hub maintain`, not by the models: autogenerate must
    # not propose dropping them.
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
