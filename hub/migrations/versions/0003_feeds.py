"""feeds: spec name, in-file duplicates, error code, timings and quality per batch

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feed_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spec_name", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column("rows_duplicate", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("error_code", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("timings", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("stats", sa.Text(), nullable=True))
        batch_op.create_index(
            "ix_feed_batches_dataset_started_at", ["dataset", "started_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("feed_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_batches_dataset_started_at")
        for name in ("stats", "timings", "error_code", "rows_duplicate", "spec_name"):
            batch_op.drop_column(name)
