"""incident series and cells: incidents per UTC hour, data class and one of city, type or
district, and per UTC day and H3 r6 cell, kept by triggers (hub/rollup.py)

The overview's charts and KPIs are totals over one dimension at a time (per city and
day, per type, per district, per local hour of the week). `incident_hourly` keys every
filter together and so has about one row per incident; these series have at most
hours x 16 cities x 4 classes rows each, so a first visit after a restart reads thousands
of rows, not a million. `incident_cells` counts per UTC day, H3 r6 cell, city, district,
data class and severity: the province's map over days (a week of the situation map, a
month of Explore) with the viewer's hidden count, a third of `incident_hourly`'s rows.
Both are filled from the incidents, then kept current on both backends
like `incident_hourly` (PostgreSQL: statement triggers over transition tables; SQLite:
row triggers; a dropped day partition is subtracted by `hub.retention`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub import rollup

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "incident_series",
        sa.Column("series", sa.String(length=8), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*rollup.SERIES_KEY, name=op.f("pk_incident_series")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "incident_cells",
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("h3_r6", sa.String(length=15), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("severity", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(*rollup.CELLS_KEY, name=op.f("pk_incident_cells")),
        sqlite_with_rowid=False,
    )
    rollup.rebuild_series(bind)
    rollup.install_series(bind)


def downgrade() -> None:
    rollup.uninstall_series(op.get_bind())
    op.drop_table("incident_cells")
    op.drop_table("incident_series")
