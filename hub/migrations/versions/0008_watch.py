"""plate watch (布控): watches, their hits, the notification read state, and the index the
matcher reads a feed batch's sightings by

A watch is matched against every committed micro-batch of plate reads: the batch's
sightings are found by `source_batch_id` (indexed here; before, a scan of the largest
table), and each read's plate finds the active watches on it through a partial index
that holds only watches not ended. A hit is unique per (watch, sighting), so matching a
batch twice (a redelivery, a file re-ingested) raises nothing twice.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE = sa.text("ended_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plate", sa.String(length=12), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("owner_city", sa.String(length=6), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("case_no", sa.String(length=32), nullable=False),
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.Integer(), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.CheckConstraint("expires_at > created_at", name=op.f("ck_watches_expiry")),
        sa.ForeignKeyConstraint(["ended_by"], ["users.id"], name=op.f("fk_watches_ended_by_users")),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_watches_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watches")),
    )
    op.create_index("ix_watches_plate_active", "watches", ["plate", "expires_at"], unique=False,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)  # fmt: skip
    op.create_index(
        "ix_watches_owner_city_expires_at", "watches", ["owner_city", "expires_at"], unique=False
    )
    op.create_index(
        "ix_watches_owner_id_expires_at", "watches", ["owner_id", "expires_at"], unique=False
    )
    op.create_table(
        "watch_hits",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("watch_id", sa.Integer(), nullable=False),
        sa.Column("sighting_id", BIG_ID, nullable=False),
        sa.Column("plate", sa.String(length=12), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("camera_id", BIG_ID, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["watch_id"], ["watches.id"], name=op.f("fk_watch_hits_watch_id_watches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_hits")),
    )
    op.create_index(
        "uq_watch_hits_watch_id_sighting_id", "watch_hits", ["watch_id", "sighting_id"],
        unique=True,
    )  # fmt: skip
    op.create_index(
        "ix_watch_hits_watch_id_created_at", "watch_hits", ["watch_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_watch_hits_city_code_created_at", "watch_hits", ["city_code", "created_at"],
        unique=False,
    )  # fmt: skip
    op.create_table(
        "notice_marks",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notice_marks_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notice_marks")),
    )
    op.create_index("ix_sightings_source_batch_id", "sightings", ["source_batch_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sightings_source_batch_id", table_name="sightings")
    op.drop_table("notice_marks")
    op.drop_index("ix_watch_hits_city_code_created_at", table_name="watch_hits")
    op.drop_index("ix_watch_hits_watch_id_created_at", table_name="watch_hits")
    op.drop_index("uq_watch_hits_watch_id_sighting_id", table_name="watch_hits")
    op.drop_table("watch_hits")
    op.drop_index("ix_watches_owner_id_expires_at", table_name="watches")
    op.drop_index("ix_watches_owner_city_expires_at", table_name="watches")
    op.drop_index("ix_watches_plate_active", table_name="watches")
    op.drop_table("watches")
