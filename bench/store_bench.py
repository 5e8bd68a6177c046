"""Store benchmarks: bulk loading and the plate lookup, each beside its naive baseline.

Registered with `hub.bench` on import; run them with `python -m hub bench`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from sqlalchemy import (
    Engine,
    bindparam,
    create_engine,
    delete,
    func,
    insert,
    literal_column,
    select,
)

from bench.pg_copy import copy_in, rows_text
from hub import models as m
from hub.bench import BenchContext, Result, log, register
from hub.bulk import bulk_insert
from hub.demo import PURSUIT_PLATE, _plates

SIGHTINGS = m.Sighting.__table__
# Rows written by bulk_insert, and by the naive DataFrame.to_sql, per store size.
BULK_ROWS = {"small": 50_000, "demo": 500_000, "province": 500_000}
NAIVE_ROWS = {"small": 10_000, "demo": 100_000, "province": 100_000}
BULK_GOAL_SHARE = 0.8  # of the engine's own load of the same rows, same run
BULK_REPEATS = {"small": 5}  # rounds per size (default 1), the fastest of each kept
LOOKUP_PLATES = 500
LOOKUP_WARMUP = 20
LOOKUP_GOAL_MS = 5.0
SCRATCH_SCHEMA = "hub_bench_scratch"


# --- bulk_load --------------------------------------------------------------------------


def sightings_frame(
    cameras: pd.DataFrame,
    batch_ids: dict[str, int],
    n: int,
    rng: np.random.Generator,
    anchor,
    first_id: int = 1,
) -> pd.DataFrame:
    """`n` plate reads shaped like the demo's, on the given cameras, in time order.

    Parameters
    ----------
    cameras
        Columns id, city_code, district_code, lon, lat.
    batch_ids
        city_code → id of that city's sightings feed batch (missing cities get none).
    anchor
        Aware datetime; reads fall in the 30 days before it.
    """
    cameras = cameras.reset_index(drop=True)
    cam = rng.integers(0, len(cameras), size=n)
    cam_city = cameras["city_code"].to_numpy()
    n_vehicles = max(200, n // 12)
    plates = _plates(n_vehicles, cam_city[rng.integers(0, len(cameras), size=n_vehicles)], rng)
    secs = np.sort(rng.integers(0, 30 * 86400, size=n))[::-1]
    ids = np.arange(first_id, first_id + n)
    city = pd.Series(cam_city[cam])
    speed = np.where(rng.random(n) < 0.6, rng.normal(80, 20, n).round(1), np.nan)
    df = pd.DataFrame(
        {
            "id": ids,
            "source_id": "GC" + city + "-" + pd.Series(ids).map("{:09d}".format),
            "classification": "sensitive",
            "created_at": pd.Timestamp(anchor),
            "updated_at": pd.Timestamp(anchor),
            "city_code": city,
            "source_batch_id": city.map(batch_ids).astype("Int64"),
            "district_code": cameras["district_code"].to_numpy()[cam],
            "camera_id": cameras["id"].to_numpy()[cam],
            "plate": plates[rng.integers(0, n_vehicles, size=n)],
            "ts": pd.Timestamp(anchor) - pd.to_timedelta(secs, unit="s"),
            "lon": cameras["lon"].to_numpy()[cam],
            "lat": cameras["lat"].to_numpy()[cam],
            "speed_kmh": speed,
            "direction": rng.choice(["N", "S", "E", "W"], size=n),
        }
    )
    df["plate_color"] = np.where(df["plate"].str.len() == 8, "green", "blue")
    return df


def _copy_rows(src: Engine, dst: Engine, table) -> int:
    with src.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(table)).mappings()]
    if rows:
        with dst.begin() as conn:
            conn.execute(insert(table), rows)
    return len(rows)


@contextmanager
def scratch_store(ctx: BenchContext, name: str = "bulk_scratch") -> Iterator[Engine]:
    """An engine on which `sightings` is a fresh, empty table of the store's backend.

    SQLite: a temporary database file `name`.db migrated with `hub.store.upgrade`, holding
    the reference data and copies of the bench store's cameras and feed batches (the
    foreign keys of a sighting). PostgreSQL: a scratch schema `name` first on the search
    path, its `sightings` referring to the bench store's own parents; dropped afterwards.
    """
    from hub.reference import load_reference
    from hub.store import make_engine, transaction, upgrade

    if ctx.backend == "sqlite":
        engine = make_engine(f"sqlite:///{ctx.tmp_dir / f'{name}.db'}")
        try:
            upgrade(engine)
            with transaction(engine) as session:
                load_reference(session=session)
            tables = m.Base.metadata.tables
            for table in ("feed_batches", "cameras"):
                _copy_rows(ctx.store, engine, tables[table])
            yield engine
        finally:
            engine.dispose()
        return
    schema = SCRATCH_SCHEMA if name == "bulk_scratch" else f"{SCRATCH_SCHEMA}_{name}"
    with ctx.store.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = create_engine(
        ctx.store.url, connect_args={"options": f"-c search_path={schema},public"}
    )
    try:
        with engine.begin() as conn:
            SIGHTINGS.create(conn, checkfirst=False)
        yield engine
    finally:
        engine.dispose()
        with ctx.store.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _load_floor(ctx: BenchContext, loaded: Engine, engine: Engine) -> tuple[int, float]:
    """The engine's own fastest load of the rows `loaded` holds into the empty
    `sightings` of `engine`, no Python per row: indexes (and on PostgreSQL foreign keys)
    dropped, the rows in time order (SQLite: `INSERT … SELECT` from the attached database;
    PostgreSQL: COPY of the other scratch schema's rows), indexes and keys
    built back (SQLite: the references checked once), commit: what `bulk_insert` does,
    with the rows already in the engine. PostgreSQL loads them with `COPY … FROM STDIN` of
    the rows rendered beforehand in its text form (below). The rows and the seconds."""
    from sqlalchemy.schema import AddConstraint, DropConstraint

    from hub.bulk import before_index_build

    cols = [c.name for c in SIGHTINGS.columns]
    names = ", ".join(cols)
    indexes = sorted(SIGHTINGS.indexes, key=lambda ix: ix.name)
    if ctx.backend == "sqlite":
        src = loaded.url.database
        loaded.dispose()
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA foreign_keys=OFF")
            raw.execute("ATTACH DATABASE ? AS src", (src,))
            started = time.perf_counter()
            with conn.begin():
                for ix in indexes:
                    ix.drop(conn)
                rows = conn.exec_driver_sql(
                    f"INSERT INTO main.sightings ({names}) SELECT {names} FROM src.sightings "  # noqa: S608 - schema names
                    "ORDER BY ts"
                ).rowcount
                before_index_build(conn)
                for ix in indexes:
                    ix.create(conn)
                # The references checked once, as `bulk_insert` checks them.
                conn.exec_driver_sql('PRAGMA foreign_key_check("sightings")').fetchmany(3)
            seconds = time.perf_counter() - started
            raw.execute("DETACH DATABASE src")
            raw.execute("PRAGMA foreign_keys=ON")
        return rows, seconds
    fks = sorted(SIGHTINGS.foreign_key_constraints, key=lambda fk: fk.name)
    with engine.connect() as conn:
        # The rows in PostgreSQL's COPY text form, in time order, rendered untimed: the
        # timed load only hands the server its bytes (COPY is PostgreSQL's own load of
        # rows from outside; an INSERT … SELECT would copy rows already parsed).
        raw = conn.connection.driver_connection
        body = rows_text(engine, f"{SCRATCH_SCHEMA}.sightings", cols, order="ts")
        started = time.perf_counter()
        with conn.begin():
            for ix in indexes:
                ix.drop(conn)
            for fk in fks:
                conn.execute(DropConstraint(fk))
            rows = copy_in(raw, "sightings", cols, body)
            before_index_build(conn)
            for ix in indexes:
                ix.create(conn)
            for fk in fks:
                conn.execute(AddConstraint(fk, isolate_from_table=False))
        return rows, time.perf_counter() - started


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(SIGHTINGS)).scalar_one()


@register("bulk_load")
def bulk_load(ctx: BenchContext) -> list[Result]:
    """bulk_insert of N sightings vs DataFrame.to_sql of a subset, into an empty table."""
    n, k = BULK_ROWS[ctx.size], NAIVE_ROWS[ctx.size]
    results = []
    if ctx.built is not None:
        b = ctx.built
        results.append(
            Result(
                job="bulk_load",
                figure=f"demo.seed('{b.size}') building the bench store, all tables",
                value=b.rows / b.seconds,
                unit="rows/s",
                note=f"{b.rows:,} rows in {b.seconds:.0f} s incl. generation",
                detail={"rows": b.rows, "seconds": b.seconds, "per_table": b.per_table},
            )
        )
    with ctx.store.connect() as conn:
        cameras = pd.DataFrame(
            conn.execute(
                select(
                    m.Camera.id,
                    m.Camera.city_code,
                    m.Camera.district_code,
                    m.Camera.lon,
                    m.Camera.lat,
                )
            ).all()
        )
        batch_ids = dict(
            conn.execute(
                select(m.FeedBatch.city_code, func.min(m.FeedBatch.id))
                .where(m.FeedBatch.dataset == "sightings")
                .group_by(m.FeedBatch.city_code)
            ).all()
        )
    if cameras.empty:
        raise RuntimeError("the bench store has no cameras to hang sightings on")
    log(f"bulk_load: generating {n + k:,} sightings on {len(cameras):,} cameras")
    frame = sightings_frame(cameras, batch_ids, n + k, np.random.default_rng(ctx.seed), ctx.anchor)
    bulk, naive = frame.iloc[:n], frame.iloc[n:]

    with scratch_store(ctx) as engine:
        log(f"bulk_load: DataFrame.to_sql(method=None), {k:,} rows into an empty table")
        started = time.perf_counter()
        naive.to_sql(SIGHTINGS.name, engine, if_exists="append", index=False, method=None)
        naive_s = time.perf_counter() - started
        naive_written = _count(engine)
        bulk_s = floor_s = float("inf")
        rounds = BULK_REPEATS.get(ctx.size, 1)
        for i in range(rounds):
            # bulk_insert and the floor once per round, the fastest of each kept: the other
            # users of a shared machine slow both alike.
            with engine.begin() as conn:
                conn.execute(delete(SIGHTINGS))
            log(f"bulk_load: round {i + 1}/{rounds}: hub.bulk.bulk_insert, {n:,} rows "
                "into an empty table")  # fmt: skip
            started = time.perf_counter()
            # The table is empty: its indexes are built once at the end.
            written = bulk_insert(engine, SIGHTINGS, [bulk], rebuild_indexes=True)
            bulk_s = min(bulk_s, time.perf_counter() - started)
            stored = _count(engine)
            log("bulk_load: the engine's own load of the same rows (the floor)")
            with scratch_store(ctx, f"bulk_floor{i}") as floor_engine:
                floor_rows, seconds = _load_floor(ctx, engine, floor_engine)
            floor_s = min(floor_s, seconds)
    if stored != n or naive_written != k or floor_rows != n:
        raise RuntimeError(
            f"wrote {stored:,}/{n:,} rows with bulk_insert, {naive_written:,}/{k:,} with to_sql, "
            f"{floor_rows:,}/{n:,} in the floor"
        )
    floor_rate = floor_rows / floor_s
    rate = written / bulk_s
    how = ("INSERT … SELECT from the attached database" if ctx.backend == "sqlite"
           else "COPY of the rows in PostgreSQL's text form")  # fmt: skip
    results[:0] = [
        Result(
            job="bulk_load",
            figure=f"bulk_insert, {n:,} sightings, empty table",
            value=rate,
            unit="rows/s",
            naive=f"to_sql, {k // 1000}k rows",
            naive_value=k / naive_s,
            goal=BULK_GOAL_SHARE * floor_rate,
            note=f"{bulk_s:.2f} s; {rate / floor_rate:.2f} of the floor (goal {BULK_GOAL_SHARE})",
            detail={
                "rows": n,
                "seconds": bulk_s,
                "naive_rows": k,
                "naive_seconds": naive_s,
                "rebuild_indexes": True,
                "backend": ctx.backend,
                "floor_rows_per_s": floor_rate,
                "share_of_floor": rate / floor_rate,
            },
        ),
        Result(
            job="bulk_load",
            figure=f"the floor: the same {n:,} rows loaded by the engine itself, no Python",
            value=floor_rate,
            unit="rows/s",
            naive=f"to_sql, {k // 1000}k rows",
            naive_value=k / naive_s,
            note=f"{floor_s:.2f} s; {how} in time order, indexes dropped and built back, commit",
            detail={"rows": floor_rows, "seconds": floor_s},
        ),
    ]
    return results


# --- plate_lookup -----------------------------------------------------------------------


def _lookup_query(plate_expr):
    s = SIGHTINGS.c
    cols = (
        s.id,
        s.ts,
        s.camera_id,
        s.city_code,
        s.district_code,
        s.lon,
        s.lat,
        s.speed_kmh,
        s.direction,
    )
    return select(*cols).where(plate_expr == bindparam("p")).order_by(s.ts)


def sample_plates(engine: Engine, n: int, rng: np.random.Generator) -> list[str]:
    """Up to `n` distinct plates of random sightings (by random ids, not a scan)."""
    s = SIGHTINGS.c
    found: dict[str, None] = {}
    with engine.connect() as conn:
        lo, hi = conn.execute(select(func.min(s.id), func.max(s.id))).one()
        if lo is None:
            return []
        for _ in range(50):
            ids = rng.integers(lo, hi + 1, size=2 * n).tolist()
            for (plate,) in conn.execute(select(s.plate).where(s.id.in_(ids))):
                if plate != PURSUIT_PLATE:
                    found.setdefault(plate)
            if len(found) >= n:
                break
    plates = list(found)
    rng.shuffle(plates)
    return plates[:n]


def _plan(conn, query, plate: str) -> list[str]:
    """The database's plan for `query` (EXPLAIN QUERY PLAN / EXPLAIN), best effort."""
    compiled = query.compile(dialect=conn.dialect)
    sql = str(compiled)
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (plate,)).all()
        return [str(r[-1]) for r in rows]
    rows = conn.exec_driver_sql("EXPLAIN " + sql, {"p": plate}).all()
    return [str(r[0]) for r in rows]


def _timed(conn, query, plates: list[str]) -> tuple[np.ndarray, list[list]]:
    times, answers = [], []
    for plate in plates:
        started = time.perf_counter()
        rows = conn.execute(query, {"p": plate}).all()
        times.append(time.perf_counter() - started)
        answers.append(rows)
    return np.array(times) * 1000, answers


@register("plate_lookup")
def plate_lookup(ctx: BenchContext) -> list[Result]:
    """p50/p95 of the indexed plate query vs the same query with the index defeated."""
    s = SIGHTINGS.c
    indexed = _lookup_query(s.plate)
    naive = _lookup_query(s.plate.concat(literal_column("''")))  # plate || '': no index
    rng = np.random.default_rng(ctx.seed)
    sample = sample_plates(ctx.store, LOOKUP_PLATES + LOOKUP_WARMUP, rng)
    if len(sample) <= LOOKUP_WARMUP:
        raise RuntimeError("the bench store has too few sightings to sample plates from")
    warmup, plates = sample[:LOOKUP_WARMUP], [*sample[LOOKUP_WARMUP:], PURSUIT_PLATE]
    with ctx.store.connect() as conn:
        total = conn.execute(select(func.count()).select_from(SIGHTINGS)).scalar_one()
        k = 3 if total >= 1_000_000 else 5
        plan_indexed, plan_naive = _plan(conn, indexed, plates[0]), _plan(conn, naive, plates[0])
        log(f"plate_lookup: {len(plates)} indexed lookups over {total:,} sightings")
        _timed(conn, indexed, warmup)
        ms, answers = _timed(conn, indexed, plates)
        log(f"plate_lookup: {k} full-scan lookups (plate || '')")
        naive_ms, naive_answers = _timed(conn, naive, plates[:k])
    agree = all(
        sorted(r.id for r in a) == sorted(r.id for r in b)
        for a, b in zip(answers[:k], naive_answers, strict=True)
    )
    if not agree:
        raise RuntimeError("the indexed and the full-scan query return different rows")
    uses_index = any("ix_sightings_plate_ts" in line for line in plan_indexed)
    rows = np.array([len(a) for a in answers])
    detail = {
        "plates": len(plates),
        "store_rows": total,
        "rows_per_lookup_mean": float(rows.mean()),
        "pursuit_rows": int(rows[-1]),
        "pursuit_ms": float(ms[-1]),
        "max_ms": float(ms.max()),
        "naive_ms": naive_ms.tolist(),
        "plan": plan_indexed,
        "naive_plan": plan_naive,
    }
    naive_label = f"full scan plate||'', {k} plates"
    note = f"{rows.mean():.1f} rows/plate, {total:,} sightings"
    if not uses_index:
        note += "; plan does not name ix_sightings_plate_ts!"
    return [
        Result(
            job="plate_lookup",
            figure=f"p50, WHERE plate = :p ORDER BY ts, {len(plates)} plates",
            value=float(np.percentile(ms, 50)),
            unit="ms",
            naive=naive_label,
            naive_value=float(np.percentile(naive_ms, 50)),
            higher_is_better=False,
            note=note,
            detail=detail,
        ),
        Result(
            job="plate_lookup",
            figure=f"p95, WHERE plate = :p ORDER BY ts, {len(plates)} plates",
            value=float(np.percentile(ms, 95)),
            unit="ms",
            naive=naive_label,
            naive_value=float(np.percentile(naive_ms, 95)),
            goal=LOOKUP_GOAL_MS,
            higher_is_better=False,
        ),
    ]
