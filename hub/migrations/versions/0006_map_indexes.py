"""map indexes: the incident time index covers the situation map's aggregate; a partial
index finds the unresolved help requests

The situation map counts incidents per H3 cell over a time window and, in the same pass,
how many of them the viewer may not open (classification and owner city). Carrying those
columns in the time index lets the database answer from the index alone instead of
looking up every row of the window in the table (province, 7 days: ~255k lookups).
It replaces the (ts, lon, lat) index, whose leading columns it keeps, so bounding-box
window queries use it as before and an ingest still builds one time index, not two.

Unresolved help requests are a few hundred among tens of thousands of closed ones; every
map rerun asks for them, which without an index reads the whole table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNRESOLVED = sa.text("status <> 'closed'")
COVERING = ["ts", "lon", "lat", "h3_r7", "severity", "classification", "city_code"]


def upgrade() -> None:
    op.drop_index("ix_incidents_ts_lon_lat", table_name="incidents")
    op.create_index("ix_incidents_ts_covering", "incidents", COVERING, unique=False)
    op.create_index("ix_help_requests_unresolved_ts", "help_requests", ["ts"], unique=False,
                    sqlite_where=UNRESOLVED, postgresql_where=UNRESOLVED)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_help_requests_unresolved_ts", table_name="help_requests")
    op.drop_index("ix_incidents_ts_covering", table_name="incidents")
    op.create_index("ix_incidents_ts_lon_lat", "incidents", ["ts", "lon", "lat"], unique=False)
