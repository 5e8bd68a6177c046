"""record history: every change a feed batch makes to a shared record, for undo and lineage

A batch that inserts a record leaves an ``insert`` version (its source line); one that
changes a record leaves an ``update`` version holding the overwritten columns as they
were stored. `python -m hub feeds rollback BATCH` replays them backwards.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "record_versions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset", sa.String(length=40), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("op", sa.String(length=6), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=True),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.CheckConstraint("op IN ('insert', 'update')", name=op.f("ck_record_versions_op")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_versions")),
    )
    op.create_index("ix_record_versions_batch_id", "record_versions", ["batch_id"], unique=False)
    op.create_index(
        "ix_record_versions_dataset_city_code_source_id", "record_versions",
        ["dataset", "city_code", "source_id"], unique=False,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_record_versions_dataset_city_code_source_id", table_name="record_versions")
    op.drop_index("ix_record_versions_batch_id", table_name="record_versions")
    op.drop_table("record_versions")
