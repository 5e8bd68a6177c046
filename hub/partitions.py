"""Day partitions of plate reads and incidents on PostgreSQL (declarative range
partitioning on `ts`, one partition per UTC day, plus a DEFAULT partition).

Why each piece is there:

- The primary key is (id, ts) and the natural key unique index (city_code, source_id,
  ts): PostgreSQL has no global indexes, so every unique index of a partitioned table
  must carry the partition key. Idempotency does not rest on that index: a feed batch
  (file or stream) looks its keys up by (city_code, source_id) — the leading columns of
  the same index — and updates the row it finds, so a redelivered row is "unchanged" and
  a re-ingested row whose time moved to another day is an UPDATE, which PostgreSQL
  carries out as a move between partitions. A second row with the same key and time is
  refused by the index itself.
- The DEFAULT partition takes what no day holds: records outside the created range (an
  old file, a wrong clock) and records kept past retention because an open case needs
  them. Creating a day whose rows already sit there moves them into it (`_attach_day`).
- Partitions are made ahead of time by `python -m hub maintain` and on demand by every
  bulk write (`ensure_for_frame`), so a load of history lands in its days, not in the
  DEFAULT partition.
- `plate_days` (migration 0012): the UTC days on which each plate was read, kept by a
  statement trigger on `sightings`. PostgreSQL has no global index, so a lookup by plate
  alone probes (and, worse, plans) every day partition: 25-45 ms of planning at 180
  days. A plate lookup first reads the plate's days here (one index range) and bounds
  the query by them (`plate_day_bounds`), so the planner prunes to those days. Retention
  deletes the expired days' rows with the reads (`purge_plate_days`); a row whose read
  was deleted or moved stays until then, which costs one empty probe, never a miss.

SQLite has no partitions; every function here is for PostgreSQL connections only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    Date,
    MetaData,
    String,
    Table,
    and_,
    false,
    or_,
    select,
    text,
)

PARTITIONED = ("incidents", "sightings")
# Partitions made when a store is converted in place: the days its records span, but no
# further back than this (older records, if any, go to the DEFAULT partition).
CONVERT_MAX_DAYS = 800

# Not in the models' metadata: it exists on PostgreSQL only (migration 0012).
plate_days = Table(
    "plate_days", MetaData(), Column("plate", String(12), primary_key=True),
    Column("day", Date, primary_key=True),
)  # fmt: skip


@dataclass(frozen=True)
class DayPartition:
    table: str  # the partition's own table name, e.g. sightings_p20261101
    parent: str
    day: date  # the UTC day it holds: [day 00:00Z, day+1 00:00Z)

    @property
    def start(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)


def day_name(parent: str, day: date) -> str:
    return f"{parent}_p{day:%Y%m%d}"


def default_name(parent: str) -> str:
    return f"{parent}_default"


def is_partitioned(conn: Connection, table: str) -> bool:
    """Whether `table` is a partitioned table on this connection (always False on SQLite)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(
        conn.execute(
            text(
                "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                "WHERE c.relname = :t AND c.relnamespace = current_schema()::regnamespace"
            ),
            {"t": table},
        ).first()
    )


def day_partitions(conn: Connection, parent: str) -> list[DayPartition]:
    """The day partitions attached to `parent`, oldest first (the DEFAULT one excluded)."""
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t "
            "AND p.relnamespace = current_schema()::regnamespace"
        ),
        {"t": parent},
    ).scalars()
    prefix = f"{parent}_p"
    out = [
        DayPartition(name, parent, datetime.strptime(name[len(prefix) :], "%Y%m%d").date())
        for name in rows
        if name.startswith(prefix)
    ]
    return sorted(out, key=lambda p: p.day)


def _attach_day(conn: Connection, parent: str, day: date) -> None:
    """Create the partition of `day`, taking over any of its rows the DEFAULT partition
    holds (a plain `PARTITION OF` would fail on them)."""
    part = DayPartition(day_name(parent, day), parent, day)
    lo, hi = part.start.isoformat(), part.end.isoformat()
    conn.exec_driver_sql(
        f'CREATE TABLE "{part.table}" (LIKE "{parent}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
    )
    conn.exec_driver_sql(
        f'WITH moved AS (DELETE FROM ONLY "{default_name(parent)}" '
        f"WHERE ts >= '{lo}' AND ts < '{hi}' RETURNING *) "
        f'INSERT INTO "{part.table}" SELECT * FROM moved'
    )
    conn.exec_driver_sql(
        f'ALTER TABLE "{parent}" ATTACH PARTITION "{part.table}" '
        f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
    )
    name_indexes(conn, parent, part.table)


def name_indexes(conn: Connection, parent: str, partition: str | None = None) -> None:
    """Name each partition's piece of an index after it: `ix_sightings_plate_ts_p20261101`
    instead of PostgreSQL's `sightings_p20261101_plate_ts_idx`, so that a plan says which
    of the table's indexes it uses (as on SQLite and on the unpartitioned table)."""
    rows = conn.execute(
        text(
            "SELECT pi.relname, ci.relname, c.relname FROM pg_inherits i "
            "JOIN pg_class ci ON ci.oid = i.inhrelid JOIN pg_class pi ON pi.oid = i.inhparent "
            "JOIN pg_index x ON x.indexrelid = ci.oid JOIN pg_class c ON c.oid = x.indrelid "
            "JOIN pg_index px ON px.indexrelid = pi.oid JOIN pg_class p ON p.oid = px.indrelid "
            "WHERE p.relname = :t AND p.relnamespace = current_schema()::regnamespace "
            "AND (CAST(:part AS text) IS NULL OR c.relname = :part)"
        ),
        {"t": parent, "part": partition},
    ).all()
    for index, piece, table in rows:
        name = f"{index}_{table.removeprefix(parent + '_')}"
        if piece != name and len(name) <= 63:
            conn.exec_driver_sql(f'ALTER INDEX "{piece}" RENAME TO "{name}"')


def ensure_days(conn: Connection, parent: str, days: Iterable[date]) -> list[date]:
    """Create the partitions of `days` that do not exist yet; returns the days created.

    Idempotent. Takes the parent's lock only when something is missing.
    """
    have = {p.day for p in day_partitions(conn, parent)}
    made = []
    for day in sorted(set(days) - have):
        _attach_day(conn, parent, day)
        made.append(day)
    return made


def ensure_ahead(conn: Connection, parent: str, *, today: date, ahead: int) -> list[date]:
    """Partitions for `today` and the `ahead` days after it."""
    return ensure_days(conn, parent, (today + timedelta(days=k) for k in range(ahead + 1)))


def ensure_for_frame(conn: Connection, parent: str, ts: pd.Series) -> None:
    """Before a bulk write: the partitions of every day the rows fall on.

    Days more than `CONVERT_MAX_DAYS` from today are left to the DEFAULT partition.
    """
    if ts.empty or not is_partitioned(conn, parent):
        return
    stamps = pd.to_datetime(ts, utc=True).dropna()
    today = datetime.now(UTC).date()
    days = {d for d in stamps.dt.floor("D").dt.date.unique()
            if abs((d - today).days) <= CONVERT_MAX_DAYS}  # fmt: skip
    ensure_days(conn, parent, days)


def _set_aside(conn: Connection, table: str, old: str) -> tuple[list, list, str | None]:
    """Rename `table` to `old` (its indexes dropped, its sequence detached) so that a new
    `table` can be made beside it; its index and foreign-key definitions and sequence,
    to rebuild them on the new table."""
    indexes = conn.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t "
            "AND schemaname = current_schema() AND indexname <> :pk"
        ),
        {"t": table, "pk": f"pk_{table}"},
    ).all()
    fks = conn.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'"
        ),
        {"t": table},
    ).all()
    seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar()
    for name, _ in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    conn.exec_driver_sql(f'ALTER TABLE "{table}" RENAME CONSTRAINT "pk_{table}" TO "pk_{old}"')
    conn.exec_driver_sql(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    if seq:
        conn.exec_driver_sql(f"ALTER SEQUENCE {seq} OWNED BY NONE")
    return indexes, fks, seq


def convert(conn: Connection, table: str, *, today: date, ahead: int) -> None:
    """Turn the plain table `table` into a day-partitioned one, in place and in the
    caller's transaction: same name, columns, defaults, checks, sequence, foreign keys
    and indexes (the natural key gains `ts`), every row kept.
    """
    old = f"{table}_unpartitioned"
    indexes, fks, seq = _set_aside(conn, table, old)
    conn.exec_driver_sql(
        f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
        f'CONSTRAINT "pk_{table}" PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts)'
    )
    conn.exec_driver_sql(f'CREATE TABLE "{default_name(table)}" PARTITION OF "{table}" DEFAULT')
    first = today - timedelta(days=CONVERT_MAX_DAYS)
    present = conn.execute(
        text(
            f"SELECT DISTINCT CAST(ts AT TIME ZONE 'UTC' AS date) FROM \"{old}\" WHERE ts >= :first"
        ),
        {"first": datetime(first.year, first.month, first.day, tzinfo=UTC)},
    ).scalars()
    ensure_days(conn, table, {*present, *(today + timedelta(days=k) for k in range(ahead + 1))})
    conn.exec_driver_sql(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
    for name, definition in indexes:
        if name == f"uq_{table}_city_code_source_id":
            definition = (
                f'CREATE UNIQUE INDEX "uq_{table}_city_code_source_id_ts" '
                f'ON "{table}" (city_code, source_id, ts)'
            )
        conn.exec_driver_sql(definition)
    for name, definition in fks:
        conn.exec_driver_sql(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    conn.exec_driver_sql(f'DROP TABLE "{old}"')
    if seq:
        conn.exec_driver_sql(f'ALTER SEQUENCE {seq} OWNED BY "{table}".id')


def unconvert(conn: Connection, table: str) -> None:
    """The reverse of `convert` (for a downgrade): one plain table with every row."""
    old = f"{table}_partitioned"
    indexes, fks, seq = _set_aside(conn, table, old)
    conn.exec_driver_sql(
        f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
        f'CONSTRAINT "pk_{table}" PRIMARY KEY (id))'
    )
    conn.exec_driver_sql(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    for name, definition in indexes:
        if name == f"uq_{table}_city_code_source_id_ts":
            definition = (
                f'CREATE UNIQUE INDEX "uq_{table}_city_code_source_id" '
                f'ON "{table}" (city_code, source_id)'
            )
        # A partitioned table's index reads back as `ON ONLY` (the parent alone).
        conn.exec_driver_sql(definition.replace(" ON ONLY ", " ON "))
    for name, definition in fks:
        conn.exec_driver_sql(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    conn.exec_driver_sql(f'DROP TABLE "{old}" CASCADE')
    if seq:
        conn.exec_driver_sql(f'ALTER SEQUENCE {seq} OWNED BY "{table}".id')


# --- plate_days: which days to probe for a plate -----------------------------------------

PLATE_DAYS = "plate_days"
_UTC_DAY = "CAST(ts AT TIME ZONE 'UTC' AS date)"
# Sorted, so that two writers adding overlapping pairs take them in the same order (no
# deadlock between their ON CONFLICT waits).
_PLATE_DAYS_FN = f"""
CREATE OR REPLACE FUNCTION hub_plate_days() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {PLATE_DAYS} (plate, day)
    SELECT DISTINCT plate, {_UTC_DAY} FROM new_rows ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$"""


def install_plate_days(conn: Connection) -> None:
    """Create `plate_days`, fill it from the reads there are, and keep it current with
    statement triggers on `sightings` (inserts and updates: a corrected plate or time
    adds its new day). PostgreSQL only; idempotent."""
    conn.exec_driver_sql(
        f"CREATE TABLE IF NOT EXISTS {PLATE_DAYS} (plate varchar(12) NOT NULL, "
        "day date NOT NULL, CONSTRAINT pk_plate_days PRIMARY KEY (plate, day))"
    )
    conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
    conn.exec_driver_sql(
        f"INSERT INTO {PLATE_DAYS} (plate, day) SELECT DISTINCT plate, {_UTC_DAY} "
        "FROM sightings ON CONFLICT DO NOTHING"
    )
    conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS ix_plate_days_day ON {PLATE_DAYS} (day)")
    for table in PARTITIONED:
        name_indexes(conn, table)
    conn.exec_driver_sql(_PLATE_DAYS_FN)
    for op in ("INSERT", "UPDATE"):
        conn.exec_driver_sql(
            f"DROP TRIGGER IF EXISTS sightings_plate_days_{op.lower()} ON sightings"
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER sightings_plate_days_{op.lower()} AFTER {op} ON sightings "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            "EXECUTE FUNCTION hub_plate_days()"
        )
    conn.exec_driver_sql(f"ANALYZE {PLATE_DAYS}")
    _generation[0] += 1


def uninstall_plate_days(conn: Connection) -> None:
    for op in ("insert", "update"):
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS sightings_plate_days_{op} ON sightings")
    conn.exec_driver_sql("DROP FUNCTION IF EXISTS hub_plate_days()")
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {PLATE_DAYS}")
    _generation[0] += 1


# Bumped when this process adds or removes `plate_days`, so that no pooled connection
# keeps an answer from before (another process changing the schema needs a restart, as
# for any migration; until then a lookup is only unbounded, never wrong).
_generation = [0]


def has_plate_days(conn: Connection) -> bool:
    """Whether the store has `plate_days`; remembered per pooled connection."""
    if conn.dialect.name != "postgresql":
        return False
    known = conn.info.get("hub_plate_days")
    if known is not None and known[0] == _generation[0]:
        return known[1]
    found = bool(conn.execute(text(f"SELECT to_regclass('{PLATE_DAYS}') IS NOT NULL")).scalar())
    conn.info["hub_plate_days"] = (_generation[0], found)
    return found


def day_ranges(days: Iterable[date]) -> list[tuple[datetime, datetime]]:
    """Consecutive UTC days merged into [start, end) ranges, oldest first."""
    out: list[list[datetime]] = []
    for day in sorted(set(days)):
        lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if out and out[-1][1] == lo:
            out[-1][1] = lo + timedelta(days=1)
        else:
            out.append([lo, lo + timedelta(days=1)])
    return [(a, b) for a, b in out]


def plate_day_bounds(
    conn: Connection,
    plate_condition,
    ts_column,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
):
    """A condition on `ts_column` holding only the days on which plates matching
    `plate_condition` (a condition on `plate_days.c.plate`) were read, between `start` and
    `end` when given; None where there is nothing to bound (SQLite, or a store without
    `plate_days`). Bounded so, the planner prunes every other day partition,
    which a condition on the plate alone cannot do (PostgreSQL has no global index).

    A read kept past its day's retention sits in the DEFAULT partition: its day stays in
    `plate_days` (`purge_plate_days`), and a range over a day without a partition is
    what the planner sends to the DEFAULT partition, so it is still found.
    """
    if not has_plate_days(conn):
        return None
    q = select(plate_days.c.day).where(plate_condition).distinct()
    if start is not None:
        q = q.where(plate_days.c.day >= start.astimezone(UTC).date())
    if end is not None:
        q = q.where(plate_days.c.day <= end.astimezone(UTC).date())
    ranges = day_ranges(conn.execute(q).scalars())
    if not ranges:
        return false()
    # Bound values: each execution is planned with them (a custom plan: the generic one,
    # costed over every partition, loses), so the planner prunes to these days, and
    # SQLAlchemy compiles the statement once per number of ranges.
    return or_(*(and_(ts_column >= a, ts_column < b) for a, b in ranges))


def purge_plate_days(conn: Connection, cutoff: datetime) -> int:
    """After retention: forget the plate-days before `cutoff` that no read left in the
    store still has (the reads kept for open cases keep theirs). Once the expired days
    are dropped, `ts < cutoff` is only the DEFAULT partition, so the check is small."""
    if not has_plate_days(conn):
        return 0
    return conn.execute(
        text(
            f"DELETE FROM {PLATE_DAYS} p WHERE p.day < :day AND NOT EXISTS ("
            f"SELECT 1 FROM (SELECT DISTINCT plate, {_UTC_DAY} AS day FROM sightings "
            "WHERE ts < :cutoff) k WHERE k.plate = p.plate AND k.day = p.day)"
        ),
        {"day": cutoff.astimezone(UTC).date(), "cutoff": cutoff},
    ).rowcount


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's `include_object` hook: the day and DEFAULT partitions are storage of
    their parent table, not tables of the schema (autogenerate would drop them); so is
    `plate_days`, the PostgreSQL-only side index of `sightings`."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = getattr(table, "name", name) if type_ != "table" else name
    hidden = _is_partition(table_name or "") or table_name == PLATE_DAYS
    return not (reflected and compare_to is None and hidden)


def _is_partition(name: str) -> bool:
    for parent in PARTITIONED:
        rest = name.removeprefix(f"{parent}_")
        if rest != name and (rest == "default" or (rest[:1] == "p" and rest[1:].isdigit())):
            return True
    return False
