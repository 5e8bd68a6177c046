"""exports: the registry of watermarked exports, append-only

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER exports_no_{op_} BEFORE {op_.upper()} ON exports
    BEGIN SELECT RAISE(ABORT, 'exports is append-only: {op_.upper()} refused'); END"""
    for op_ in ("update", "delete")
]
_PG_FUNCTION = """CREATE FUNCTION exports_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'exports is append-only: % refused', TG_OP;
END $$ LANGUAGE plpgsql"""
_PG_TRIGGER = """CREATE TRIGGER exports_append_only BEFORE UPDATE OR DELETE ON exports
FOR EACH ROW EXECUTE FUNCTION exports_append_only()"""


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=True),
        sa.Column("dataset", sa.String(length=40), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("case_no", sa.String(length=32), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=4), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("format IN ('csv', 'xlsx')", name=op.f("ck_exports_format")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_exports_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
    )
    op.create_index("ix_exports_user_id_ts", "exports", ["user_id", "ts"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS exports_append_only ON exports")
        op.execute("DROP FUNCTION IF EXISTS exports_append_only()")
    op.drop_index("ix_exports_user_id_ts", table_name="exports")
    op.drop_table("exports")
