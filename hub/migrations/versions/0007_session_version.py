"""session version and sign-in throttle: sessions end when access ends, and guessing is
slowed per source and per account instead of locking accounts

`users.session_version` is bumped by a lock, a role change and a password reset; every
hub call compares it with the one its session signed in under, so an open session ends
the moment its access does. `sign_in_throttle` holds, per key (a source address, an
account name, or the pair), the recent failures and the earliest moment the next attempt
is heard, and for a pair the last successful sign-in (a source the account is known
from). It lives in the database, not in one process, because several app processes
answer the same users.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("allowed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_throttle")),
    )


def downgrade() -> None:
    op.drop_table("sign_in_throttle")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
