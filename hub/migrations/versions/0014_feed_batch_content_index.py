"""feed batch content index: the "same file as batch N" lookup of every arrival

Each ingest looks its file up among the city's earlier batches of the dataset by content
hash. A stream commits several micro-batches a second, so `feed_batches` grows by
hundreds of thousands of rows a week, and without an index every arrival read them all.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 10:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ["city_code", "dataset", "content_sha256"]


def upgrade() -> None:
    op.create_index("ix_feed_batches_city_code_dataset_content_sha256", "feed_batches", COLUMNS,
                    unique=False)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_feed_batches_city_code_dataset_content_sha256", table_name="feed_batches")
