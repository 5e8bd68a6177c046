"""plate days: the UTC days on which each plate was read, so that a lookup by plate opens
those day partitions only (PostgreSQL)

PostgreSQL has no global index: on the day-partitioned `sightings` (0010) a lookup by
plate with no time bound plans and probes every day partition (about 180 at a
province's retention; 25-45 ms of planning alone). `plate_days` (plate, day) holds the
days each plate was read; `records.search_plate` and `trajectory.plate_trajectory` read
them first and bound the query by them, so the planner prunes the other days
(hub/partitions.py `plate_day_bounds`). Filled here from the reads there are (the store
is converted in place), then kept by statement triggers on `sightings` over their
transition tables (inserts and updates, every writer); retention deletes the expired
days with the reads (`partitions.purge_plate_days`). Each partition's piece of an index
is renamed after its index (`ix_sightings_plate_ts_p20261101`, as new days are named by
`partitions._attach_day`), so that plans name the index they use.

SQLite: nothing (no partitions; its (plate, ts) index serves the lookup directly).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

from alembic import op

from hub import partitions

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        partitions.install_plate_days(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        partitions.uninstall_plate_days(bind)
