"""Counts the database keeps current as records arrive, so the map and the overviews
never aggregate raw rows on a rerun or a first visit.

- `incident_hourly`: incidents per UTC hour, H3 cell (r7), city, district, data class,
  type and severity. Every filter of the situation map, the overview and Explore is a
  column of it, and so is everything the viewer's row filter looks at (data class, city,
  district: hub/security/policy.py `_base_clause`), so hidden counts come from it too.
  A missing district is stored as '' (a key column cannot be NULL in a primary key);
  the row filter's predicates treat '' exactly as NULL (`district = X` false, and
  `district IS NULL OR district <> X` true).
- `record_counts`: records per dataset, city and data class for the two big tables
  (sightings, incidents): the province overview's counts without a scan.
- `incident_series` (migration 0013): incidents per UTC hour, data class and ONE of city,
  type or district (`series` names which). The overview's charts are totals over a
  single dimension; the full key of `incident_hourly` has about as many rows as there
  are incidents (961k for 1M), a series at most hours x 16 cities x 4 classes (46k for
  30 days; 39k rows for the province store's city series), so a first visit reads
  thousands of rows instead of a million.
- `incident_cells` (migration 0013): incidents per UTC day, H3 r6 cell, city, district,
  data class and severity: the province's map over whole days (the situation map's week
  with the viewer's hidden count, the Explore map's month) reads ~72k rows for a week of
  the province store, where `incident_hourly` has ~246k, with the r6 cell stored.

Triggers keep all of them current for every writer (file feed, stream consumer, demo seed,
EIDO import, exercise, retention): on PostgreSQL one statement-level trigger per table
and operation over its transition tables (a batch of 100k rows costs one grouped
upsert, not 100k), on SQLite row triggers. A partition dropped by retention fires no
trigger; `hub.retention` subtracts what it drops with `subtract_relation`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    case,
    func,
    literal_column,
)

from hub.models import Base, UTCDateTime

HOURLY_KEY = ("hour", "h3_r7", "city_code", "district_code", "classification", "type_code",
              "severity")  # fmt: skip
COUNTED = ("incidents", "sightings")
# series -> the incident column it counts by ('' for a missing district, as above).
SERIES = {"city": "city_code", "type": "type_code", "district": "district_code"}
CELLS_KEY = ("day", "h3_r6", "city_code", "district_code", "classification", "severity")
_PG_DAY = "date_trunc('day', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
_SQLITE_DAY = "substr({r}.ts, 1, 10) || ' 00:00:00.000000'"
SERIES_KEY = ("series", "hour", "key", "classification")

# Declared beside its triggers; migration 0013 creates it (hub/models.py holds the others).
incident_series = Table(
    "incident_series",
    Base.metadata,
    Column("series", String(8), nullable=False),
    Column("hour", UTCDateTime, nullable=False),
    Column("key", String(32), nullable=False),
    Column("classification", String(10), nullable=False),
    Column("n", BigInteger, nullable=False),
    PrimaryKeyConstraint(*SERIES_KEY, name="pk_incident_series"),
    sqlite_with_rowid=False,
)
incident_cells = Table(
    "incident_cells",
    Base.metadata,
    Column("day", UTCDateTime, nullable=False),
    Column("h3_r6", String(15), nullable=False),
    Column("city_code", String(6), nullable=False),
    Column("district_code", String(6), nullable=False),
    Column("classification", String(10), nullable=False),
    Column("severity", SmallInteger, nullable=False, autoincrement=False),
    Column("n", BigInteger, nullable=False),
    PrimaryKeyConstraint(*CELLS_KEY, name="pk_incident_cells"),
    sqlite_with_rowid=False,
)

_PG_HOUR = "date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
_PG_HOURLY_EXPR = (f"{_PG_HOUR}, h3_r7, city_code, coalesce(district_code, ''), classification, "
                   "type_code, severity")  # fmt: skip
_SQLITE_HOUR = "substr({r}.ts, 1, 13) || ':00:00.000000'"
_KEYS = ", ".join(HOURLY_KEY)
_GROUP7 = "1, 2, 3, 4, 5, 6, 7"


def _pg_hourly_delta(new: str | None, old: str | None) -> str:
    """SQL adding the incidents of relation `new` and subtracting those of `old`."""
    parts = []
    if new:
        parts.append(f"SELECT {_PG_HOURLY_EXPR}, 1 FROM {new}")
    if old:
        parts.append(f"SELECT {_PG_HOURLY_EXPR}, -1 FROM {old}")
    body = " UNION ALL ".join(parts)
    sql = (
        f"INSERT INTO incident_hourly AS h ({_KEYS}, n) "
        f"SELECT {_KEYS}, sum(k) FROM ({body}) d({_KEYS}, k) GROUP BY {_GROUP7} "
        f"HAVING sum(k) <> 0 ORDER BY {_GROUP7} "
        "ON CONFLICT ON CONSTRAINT pk_incident_hourly DO UPDATE SET n = h.n + excluded.n;"
    )
    if old:
        sql += (
            f" DELETE FROM incident_hourly WHERE n <= 0 AND hour IN "
            f"(SELECT DISTINCT {_PG_HOUR} FROM {old});"
        )
    return sql


def _pg_counts_delta(dataset: str, new: str | None, old: str | None) -> str:
    parts = []
    if new:
        parts.append(f"SELECT city_code, classification, 1 FROM {new}")
    if old:
        parts.append(f"SELECT city_code, classification, -1 FROM {old}")
    body = " UNION ALL ".join(parts)
    return (
        "INSERT INTO record_counts AS c (dataset, city_code, classification, n) "
        f"SELECT '{dataset}', city_code, classification, sum(k) FROM ({body}) d(city_code, "
        "classification, k) GROUP BY 2, 3 HAVING sum(k) <> 0 ORDER BY 2, 3 "
        "ON CONFLICT ON CONSTRAINT pk_record_counts DO UPDATE SET n = c.n + excluded.n;"
    )


def r6_sql(cell: str) -> str:
    """SQL text: the H3 r6 parent of the r7 hex text `cell` (see hub/situation.py
    `parent_r6`, the same expression built with SQLAlchemy)."""
    low = f"CASE WHEN substr({cell}, 9, 1) IN ('0', '1', '2', '3', '4', '5', '6', '7') THEN '7' ELSE 'f' END"
    return f"substr({cell}, 1, 1) || '6' || substr({cell}, 3, 6) || {low} || substr({cell}, 10, 6)"


def parent_r6(cell) -> ColumnElement[str]:
    """SQL: the resolution-6 parent of an r7 cell's hex text, on either backend.

    An H3 index is 15 hex digits here: the second holds the resolution, the ninth the low
    bit of the r6 digit and the three bits of the r7 digit; a parent sets its resolution
    and fills the child's digit with ones (h3 `cell_to_parent`; the tests compare). `r6_sql` is the same as SQL text."""

    # Constants are written into the SQL: PostgreSQL groups by an expression only when
    # the one in GROUP BY is the one selected, and bound parameters would differ.
    def part(start: int, length: int):
        return func.substr(cell, literal_column(str(start)), literal_column(str(length)),
                           type_=String)  # fmt: skip

    low = case((part(9, 1).in_([literal_column(f"'{d}'") for d in "01234567"]),
                literal_column("'7'")), else_=literal_column("'f'"))  # fmt: skip
    return part(1, 1) + literal_column("'6'", String) + part(3, 6) + low + part(10, 6)


def _series_value(series: str, r: str = "") -> str:
    column = f"{r}{SERIES[series]}"
    return f"coalesce({column}, '')" if series == "district" else column


def _series_bucket(series: str, pg: bool, r: str = "") -> str:
    return _PG_HOUR if pg else _SQLITE_HOUR.format(r=r)


def _cells_values(pg: bool, r: str = "") -> list[str]:
    """The six key values of `incident_cells` for the incident row `r`."""
    day = _PG_DAY if pg else _SQLITE_DAY.format(r=r.rstrip("."))
    return [day, r6_sql(f"{r}h3_r7"), f"{r}city_code", f"coalesce({r}district_code, '')",
            f"{r}classification", f"{r}severity"]  # fmt: skip


def _pg_cells_delta(new: str | None, old: str | None) -> str:
    parts = [f"SELECT {', '.join(_cells_values(True))}, {k} FROM {rel}"
             for rel, k in ((new, 1), (old, -1)) if rel]  # fmt: skip
    keys = ", ".join(CELLS_KEY)
    sql = (
        f"INSERT INTO incident_cells AS c ({keys}, n) "
        f"SELECT {keys}, sum(k) FROM ({' UNION ALL '.join(parts)}) d({keys}, k) "
        "GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(k) <> 0 ORDER BY 1, 2, 3, 4, 5, 6 "
        "ON CONFLICT ON CONSTRAINT pk_incident_cells DO UPDATE SET n = c.n + excluded.n;"
    )
    if old:
        sql += (" DELETE FROM incident_cells WHERE n <= 0 AND day IN "
                f"(SELECT DISTINCT {_PG_DAY} FROM {old});")  # fmt: skip
    return sql


def _pg_series_delta(new: str | None, old: str | None) -> str:
    """SQL adding the incidents of `new` to `incident_series` and taking `old` out."""
    parts = [
        f"SELECT '{series}', {_series_bucket(series, True)}, {_series_value(series)}, "
        f"classification, {k} FROM {rel}"
        for rel, k in ((new, 1), (old, -1)) if rel
        for series in SERIES
    ]  # fmt: skip
    keys = ", ".join(SERIES_KEY)
    sql = (
        f"INSERT INTO incident_series AS s ({keys}, n) "
        f"SELECT {keys}, sum(k) FROM ({' UNION ALL '.join(parts)}) d({keys}, k) "
        "GROUP BY 1, 2, 3, 4 HAVING sum(k) <> 0 ORDER BY 1, 2, 3, 4 "
        "ON CONFLICT ON CONSTRAINT pk_incident_series DO UPDATE SET n = s.n + excluded.n;"
    )
    if old:
        sql += (
            " DELETE FROM incident_series WHERE n <= 0 AND hour IN "
            f"(SELECT DISTINCT {_PG_HOUR} FROM {old});"
        )
    return sql + _pg_cells_delta(new, old)


def series_installed(conn: Connection) -> bool:
    """Whether migration 0013's table is there (retention may run on an older store)."""
    from sqlalchemy import inspect

    return inspect(conn).has_table("incident_series")


def subtract_relation(conn: Connection, dataset: str, relation: str) -> None:
    """Take the rows of `relation` (a partition about to be dropped) out of the counts."""
    if dataset == "incidents":
        conn.exec_driver_sql(_pg_hourly_delta(None, relation))
        if series_installed(conn):
            conn.exec_driver_sql(_pg_series_delta(None, relation))
    conn.exec_driver_sql(_pg_counts_delta(dataset, None, relation))


def _pg_function(dataset: str) -> str:
    def body(new, old):
        sql = _pg_counts_delta(dataset, new, old)
        return sql + (_pg_hourly_delta(new, old) if dataset == "incidents" else "")

    return f"""
CREATE OR REPLACE FUNCTION hub_{dataset}_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN {body("new_rows", None)}
  ELSIF TG_OP = 'UPDATE' THEN {body("new_rows", "old_rows")}
  ELSE {body(None, "old_rows")}
  END IF;
  RETURN NULL;
END $$"""


def _pg_install(conn: Connection) -> None:
    for ds in COUNTED:
        conn.exec_driver_sql(_pg_function(ds))
        for op, refs in (("INSERT", "NEW TABLE AS new_rows"),
                         ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                         ("DELETE", "OLD TABLE AS old_rows")):  # fmt: skip
            conn.exec_driver_sql(
                f"CREATE TRIGGER {ds}_counts_{op.lower()} AFTER {op} ON {ds} "
                f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION hub_{ds}_counts()"
            )


def _sqlite_values(r: str) -> list[str]:
    """The seven key values of the incident row `r` (NEW or OLD)."""
    return [_SQLITE_HOUR.format(r=r), f"{r}.h3_r7", f"{r}.city_code",
            f"coalesce({r}.district_code, '')", f"{r}.classification", f"{r}.type_code",
            f"{r}.severity"]  # fmt: skip


def _sqlite_hourly(r: str, k: int) -> str:
    values = _sqlite_values(r)
    if k > 0:
        return (f"INSERT INTO incident_hourly ({_KEYS}, n) VALUES ({', '.join(values)}, 1) "
                f"ON CONFLICT ({_KEYS}) DO UPDATE SET n = n + 1;")  # fmt: skip
    match = " AND ".join(f"{c} = {v}" for c, v in zip(HOURLY_KEY, values, strict=True))
    return (f"UPDATE incident_hourly SET n = n - 1 WHERE {match}; "
            f"DELETE FROM incident_hourly WHERE {match} AND n <= 0;")  # fmt: skip


def _sqlite_counts(dataset: str, r: str, k: int) -> str:
    if k > 0:
        return ("INSERT INTO record_counts (dataset, city_code, classification, n) "
                f"VALUES ('{dataset}', {r}.city_code, {r}.classification, 1) "
                "ON CONFLICT (dataset, city_code, classification) DO UPDATE SET n = n + 1;")  # fmt: skip
    return (f"UPDATE record_counts SET n = n - 1 WHERE dataset = '{dataset}' "
            f"AND city_code = {r}.city_code AND classification = {r}.classification;")  # fmt: skip


def _sqlite_install(conn: Connection) -> None:
    for ds in COUNTED:
        hourly = ds == "incidents"

        def add(r, ds=ds, hourly=hourly):
            return _sqlite_counts(ds, r, 1) + (_sqlite_hourly(r, 1) if hourly else "")

        def sub(r, ds=ds, hourly=hourly):
            return _sqlite_counts(ds, r, -1) + (_sqlite_hourly(r, -1) if hourly else "")

        watched = "city_code, classification" + (
            ", ts, h3_r7, district_code, type_code, severity" if hourly else ""
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER {ds}_counts_insert AFTER INSERT ON {ds} BEGIN {add('NEW')} END"
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER {ds}_counts_delete AFTER DELETE ON {ds} BEGIN {sub('OLD')} END"
        )
        # Only a change of a counted column moves a count (a status update does not).
        conn.exec_driver_sql(
            f"CREATE TRIGGER {ds}_counts_update AFTER UPDATE OF {watched} ON {ds} "
            f"BEGIN {sub('OLD')} {add('NEW')} END"
        )


def install(conn: Connection) -> None:
    """Create the triggers that keep the counts current (tables made by the migration)."""
    (_pg_install if conn.dialect.name == "postgresql" else _sqlite_install)(conn)


def uninstall(conn: Connection) -> None:
    for ds in COUNTED:
        for op in ("insert", "update", "delete"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {ds}_counts_{op}" + (
                f" ON {ds}" if conn.dialect.name == "postgresql" else ""))  # fmt: skip
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS hub_{ds}_counts()")


def rebuild(conn: Connection) -> None:
    """Recompute both tables from the records (after a migration or a bulk load that
    bypassed the triggers)."""
    conn.exec_driver_sql("DELETE FROM incident_hourly")
    conn.exec_driver_sql("DELETE FROM record_counts")
    if conn.dialect.name == "postgresql":
        hourly = _PG_HOURLY_EXPR
    else:
        hourly = ", ".join(_sqlite_values("incidents"))
    conn.exec_driver_sql(
        f"INSERT INTO incident_hourly ({_KEYS}, n) SELECT {hourly}, count(*) FROM incidents "
        f"GROUP BY {_GROUP7}"
    )
    for ds in COUNTED:
        conn.exec_driver_sql(
            "INSERT INTO record_counts (dataset, city_code, classification, n) "
            f"SELECT '{ds}', city_code, classification, count(*) FROM {ds} GROUP BY 2, 3"
        )


# --- incident_series (migration 0013) ----------------------------------------------------


def _sqlite_cells(r: str, k: int) -> str:
    values = _cells_values(False, f"{r}.")
    if k > 0:
        keys = ", ".join(CELLS_KEY)
        return (f"INSERT INTO incident_cells ({keys}, n) VALUES ({', '.join(values)}, 1) "
                f"ON CONFLICT ({keys}) DO UPDATE SET n = n + 1;")  # fmt: skip
    match = " AND ".join(f"{c} = {v}" for c, v in zip(CELLS_KEY, values, strict=True))
    return (f"UPDATE incident_cells SET n = n - 1 WHERE {match}; "
            f"DELETE FROM incident_cells WHERE {match} AND n <= 0;")  # fmt: skip


def _sqlite_series(r: str, k: int) -> str:
    sql = [_sqlite_cells(r, k)]
    for series in SERIES:
        hour = _series_bucket(series, False, r)
        value = _series_value(series, f"{r}.")
        if k > 0:
            sql.append(
                f"INSERT INTO incident_series (series, hour, key, classification, n) VALUES "
                f"('{series}', {hour}, {value}, {r}.classification, 1) "
                "ON CONFLICT (series, hour, key, classification) DO UPDATE SET n = n + 1;"
            )
        else:
            match = (f"series = '{series}' AND hour = {hour} AND key = {value} "
                     f"AND classification = {r}.classification")  # fmt: skip
            sql.append(
                f"UPDATE incident_series SET n = n - 1 WHERE {match}; "
                f"DELETE FROM incident_series WHERE {match} AND n <= 0;"
            )
    return " ".join(sql)


def install_series(conn: Connection) -> None:
    """Triggers keeping `incident_series` current (statement-level on PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"""
CREATE OR REPLACE FUNCTION hub_incidents_series() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN {_pg_series_delta("new_rows", None)}
  ELSIF TG_OP = 'UPDATE' THEN {_pg_series_delta("new_rows", "old_rows")}
  ELSE {_pg_series_delta(None, "old_rows")}
  END IF;
  RETURN NULL;
END $$""")
        for op, refs in (("INSERT", "NEW TABLE AS new_rows"),
                         ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                         ("DELETE", "OLD TABLE AS old_rows")):  # fmt: skip
            conn.exec_driver_sql(
                f"CREATE TRIGGER incidents_series_{op.lower()} AFTER {op} ON incidents "
                f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION hub_incidents_series()"
            )
        return
    conn.exec_driver_sql(
        f"CREATE TRIGGER incidents_series_insert AFTER INSERT ON incidents "
        f"BEGIN {_sqlite_series('NEW', 1)} END"
    )
    conn.exec_driver_sql(
        f"CREATE TRIGGER incidents_series_delete AFTER DELETE ON incidents "
        f"BEGIN {_sqlite_series('OLD', -1)} END"
    )
    watched = "ts, classification, h3_r7, severity, " + ", ".join(SERIES.values())
    conn.exec_driver_sql(
        f"CREATE TRIGGER incidents_series_update AFTER UPDATE OF {watched} ON incidents "
        f"BEGIN {_sqlite_series('OLD', -1)} {_sqlite_series('NEW', 1)} END"
    )


def uninstall_series(conn: Connection) -> None:
    pg = conn.dialect.name == "postgresql"
    for op in ("insert", "update", "delete"):
        conn.exec_driver_sql(
            f"DROP TRIGGER IF EXISTS incidents_series_{op}" + (" ON incidents" if pg else "")
        )
    if pg:
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS hub_incidents_series()")


def rebuild_series(conn: Connection) -> None:
    """Recompute `incident_series` and `incident_cells` from the incidents."""
    conn.exec_driver_sql("DELETE FROM incident_series")
    conn.exec_driver_sql("DELETE FROM incident_cells")
    pg = conn.dialect.name == "postgresql"
    values = _cells_values(pg, "incidents." if not pg else "")
    conn.exec_driver_sql(
        f"INSERT INTO incident_cells ({', '.join(CELLS_KEY)}, n) "
        f"SELECT {', '.join(values)}, count(*) FROM incidents GROUP BY 1, 2, 3, 4, 5, 6"
    )
    for series in SERIES:
        hour = _series_bucket(series, pg, "incidents")
        conn.exec_driver_sql(
            "INSERT INTO incident_series (series, hour, key, classification, n) "
            f"SELECT '{series}', {hour}, {_series_value(series)}, classification, count(*) "
            "FROM incidents GROUP BY 2, 3, 4"
        )
