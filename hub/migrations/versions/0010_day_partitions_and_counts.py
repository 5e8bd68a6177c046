"""day partitions and counts: plate reads and incidents partitioned by UTC day on
PostgreSQL; hourly incident counts and per-city record counts kept by triggers

PostgreSQL: `incidents` and `sightings` become range-partitioned on `ts` in place
(hub/partitions.py: same name, columns, sequence, checks, foreign keys and indexes, every
row copied; a partition per day the records span plus the next week, and a DEFAULT
partition). A unique key of a partitioned table must hold the partition key, so the
primary key becomes (id, ts) and the natural key (city_code, source_id, ts); SQLite
takes the same natural key so both schemas stay one. The pipeline still finds a record
by (city_code, source_id), the index's leading columns, and updates it in place.

`operations.incident_id` loses its foreign key (on both backends): a key referencing a
partitioned table must name all of its primary key, (id, ts), and would forbid dropping
a day that an operation points into. The operation keeps the incident's id as a pointer,
checked by hub/response.py when it is given.

Both backends: `incident_hourly` and `record_counts` (hub/rollup.py), filled from the
records and kept current by triggers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 12:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from hub import partitions, rollup

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AHEAD_DAYS = 7
UTC_TS = sa.DateTime(timezone=True)


def _natural_key(table: str, *, with_ts: bool) -> None:
    """SQLite: swap the natural key index (PostgreSQL does it in `partitions.convert`)."""
    old = ["city_code", "source_id"] + ([] if with_ts else ["ts"])
    new = ["city_code", "source_id"] + (["ts"] if with_ts else [])
    op.drop_index(f"uq_{table}_{'_'.join(old)}", table_name=table)
    op.create_index(f"uq_{table}_{'_'.join(new)}", table, new, unique=True)


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    with op.batch_alter_table("operations") as batch:
        batch.drop_constraint("fk_operations_incident_id_incidents", type_="foreignkey")
    for table in partitions.PARTITIONED:
        if pg:
            partitions.convert(bind, table, today=datetime.now(UTC).date(), ahead=AHEAD_DAYS)
        else:
            _natural_key(table, with_ts=True)
    op.create_table(
        "incident_hourly",
        sa.Column("hour", UTC_TS, nullable=False),
        sa.Column("h3_r7", sa.String(length=15), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("type_code", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*rollup.HOURLY_KEY, name=op.f("pk_incident_hourly")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "record_counts",
        sa.Column("dataset", sa.String(length=32), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "dataset", "city_code", "classification", name=op.f("pk_record_counts")
        ),
        sqlite_with_rowid=False,
    )
    rollup.rebuild(bind)
    rollup.install(bind)


def downgrade() -> None:
    bind = op.get_bind()
    rollup.uninstall(bind)
    op.drop_table("record_counts")
    op.drop_table("incident_hourly")
    for table in partitions.PARTITIONED:
        if bind.dialect.name == "postgresql":
            partitions.unconvert(bind, table)
        else:
            _natural_key(table, with_ts=False)
    with op.batch_alter_table("operations") as batch:
        batch.create_foreign_key(
            "fk_operations_incident_id_incidents", "incidents", ["incident_id"], ["id"],
            ondelete="SET NULL",
        )  # fmt: skip
