"""access requests, grants, reviews, audit chain, alarms

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 14:05:56.415195
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


GENESIS = "0" * 64

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_log_no_{op_} BEFORE {op_.upper()} ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: {op_.upper()} refused'); END"""
    for op_ in ("update", "delete")
]
_PG_FUNCTION = """CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END $$ LANGUAGE plpgsql"""
_PG_TRIGGER = """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"""


def _append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for ddl in _SQLITE_TRIGGERS:
            op.execute(ddl)
    else:
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)


def _drop_append_only() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("city_code", sa.String(length=6), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("dataset", sa.String(length=32), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("subject", sa.String(length=120), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("case_no", sa.String(length=32), nullable=True),
        sa.Column("result_count", sa.Integer(), nullable=True),
        sa.Column("record_ids", sa.Text(), nullable=True),
        sa.Column("owner_cities", sa.String(length=120), nullable=True),
        sa.Column("decision", sa.String(length=32), nullable=True),
        sa.Column("grant_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_log_seq")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_action_ts", ["action", "ts"], unique=False)
        batch_op.create_index("ix_audit_log_city_code_ts", ["city_code", "ts"], unique=False)
        batch_op.create_index("ix_audit_log_user_id_ts", ["user_id", "ts"], unique=False)
        batch_op.create_index("ix_audit_log_subject_ts", ["subject", "ts"], unique=False)

    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("requester_city", sa.String(length=6), nullable=True),
        sa.Column("owner_city", sa.String(length=6), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_value", sa.String(length=400), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("case_no", sa.String(length=32), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "route IN ('city_approver', 'province_approver')", name=op.f("ck_access_requests_route")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'denied', 'withdrawn')",
            name=op.f("ck_access_requests_status"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_access_requests_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["owner_city"], ["cities.adcode"], name=op.f("fk_access_requests_owner_city_cities")
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"], ["users.id"], name=op.f("fk_access_requests_requester_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_requests")),
    )
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_access_requests_owner_city_status", ["owner_city", "status"], unique=False
        )
        batch_op.create_index("ix_access_requests_requester_id", ["requester_id"], unique=False)

    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("city_code", sa.String(length=6), nullable=True),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_note", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_alarms_status")),
        sa.ForeignKeyConstraint(
            ["closed_by"], ["users.id"], name=op.f("fk_alarms_closed_by_users")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_alarms_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index("ix_alarms_city_code_status", ["city_code", "status"], unique=False)
        batch_op.create_index("ix_alarms_dedupe_key_ts", ["dedupe_key", "ts"], unique=False)

    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("owner_city", sa.String(length=6), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope_value", sa.String(length=400), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("case_no", sa.String(length=32), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('approval', 'break_glass')", name=op.f("ck_grants_kind")),
        sa.ForeignKeyConstraint(
            ["owner_city"], ["cities.adcode"], name=op.f("fk_grants_owner_city_cities")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["access_requests.id"],
            name=op.f("fk_grants_request_id_access_requests"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_grants_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_grants_user_id_expires_at", ["user_id", "expires_at"], unique=False
        )

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=True),
        sa.Column("audit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_reviews_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["closed_by"], ["users.id"], name=op.f("fk_reviews_closed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_reviews_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_reviews_grant_id_grants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index("ix_reviews_city_code_status", ["city_code", "status"], unique=False)
    _append_only()
    op.execute(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS}')")


def downgrade() -> None:
    _drop_append_only()
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_reviews_city_code_status")

    op.drop_table("reviews")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index("ix_grants_user_id_expires_at")

    op.drop_table("grants")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("ix_alarms_dedupe_key_ts")
        batch_op.drop_index("ix_alarms_city_code_status")

    op.drop_table("alarms")
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_access_requests_requester_id")
        batch_op.drop_index("ix_access_requests_owner_city_status")

    op.drop_table("access_requests")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_subject_ts")
        batch_op.drop_index("ix_audit_log_user_id_ts")
        batch_op.drop_index("ix_audit_log_city_code_ts")
        batch_op.drop_index("ix_audit_log_action_ts")

    op.drop_table("audit_log")
    op.drop_table("audit_head")
