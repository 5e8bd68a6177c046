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

Triggers keep both current for every writer (file feed, stream consumer, demo seed,
EIDO import, exercise, retention): on PostgreSQL one statement-level trigger per table
and operation over its transition tables (a batch of 100k rows costs one grouped
upsert, not 100k), on SQLite row triggers. A partition dropped by retention fires no
trigger; `hub.retention` subtracts what it drops with `subtract_relation`.
"""

from __future__ import annotations

from sqlalchemy import Connection

HOURLY_KEY = ("hour", "h3_r7", "city_code", "district_code", "classification", "type_code",
              "severity")  # fmt: skip
COUNTED = ("incidents", "sightings")

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


def subtract_relation(conn: Connection, dataset: str, relation: str) -> None:
    """Take the rows of `relation` (a partition about to be dropped) out of the counts."""
    if dataset == "incidents":
        conn.exec_driver_sql(_pg_hourly_delta(None, relation))
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
