"""Province scale on PostgreSQL: day partitions and the counts kept by triggers.

- `trajectory_partitions`: a plate's 30-day reads over the day partitions beside the
  same query on one unpartitioned copy of the same rows (made once in schema
  `bench_flat`, kept for later runs), and the whole audited `Hub.plate_trajectory`.
- `retention_partition`: dropping one expired day through `apply_retention` (the
  partition path) beside `DELETE` of the same day row by row; both rolled back, so the
  store is unchanged.
- `overview_cold`: `Hub.province_overview` and `Hub.overview` on a new engine (a
  restart: no warm connection, no cache), beside counting the records per city and
  class as the overview did before.

On SQLite the partition jobs say so and measure nothing.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from datetime import timedelta

from sqlalchemy import select, text

from hub import partitions
from hub.bench import BenchContext, Result, log, register
from hub.models import DATA_CLASSES, Sighting, User
from hub.retention import apply_retention
from hub.security.errors import HubError
from hub.security.identity import principal_of
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import make_engine, transaction

SAMPLES = 200
TRAJECTORY_GOAL_MS = 20.0
COLD_GOAL_S = 2.0
QUERY = ("SELECT id, ts, camera_id, lon, lat FROM {t} WHERE plate = %(p)s "
         "AND ts >= %(a)s AND ts < %(b)s ORDER BY ts")  # fmt: skip


def _postgres_only(ctx: BenchContext, job: str) -> list[Result] | None:
    if ctx.backend == "postgresql":
        return None
    return [Result(job, "skipped", note="partitions exist on PostgreSQL only; pass --db")]


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] * 1000


def _flat_copy(conn) -> None:
    """One unpartitioned table of the same reads, with the same (plate, ts) index."""
    if conn.execute(text("SELECT to_regclass('bench_flat.sightings')")).scalar():
        return
    log("bench_flat.sightings: copying the reads into one plain table (once)")
    conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS bench_flat")
    conn.exec_driver_sql("CREATE TABLE bench_flat.sightings AS SELECT * FROM public.sightings")
    conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
    conn.exec_driver_sql("CREATE INDEX ON bench_flat.sightings (plate, ts)")
    conn.exec_driver_sql("VACUUM ANALYZE bench_flat.sightings")


@register("trajectory_partitions")
def trajectory_partitions(ctx: BenchContext) -> list[Result]:
    job = "trajectory_partitions"
    if (skip := _postgres_only(ctx, job)) is not None:
        return skip
    start, end = ctx.anchor - timedelta(days=30), ctx.anchor
    with ctx.store.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        _flat_copy(conn)
        plates = conn.execute(
            text("SELECT plate FROM sightings TABLESAMPLE SYSTEM (0.1) REPEATABLE (7) LIMIT :n"),
            {"n": SAMPLES},
        ).scalars().all()  # fmt: skip
        raw = conn.connection.driver_connection
        times: dict[str, list[float]] = {"public.sightings": [], "bench_flat.sightings": []}
        rows = 0
        for _ in range(2):  # the first pass warms both tables alike
            for t in times:
                times[t].clear()
            for plate in plates:
                for t in times:
                    began = time.perf_counter()
                    with raw.cursor() as cur:
                        cur.execute(QUERY.format(t=t), {"p": plate, "a": start, "b": end})
                        rows += len(cur.fetchall())
                    times[t].append(time.perf_counter() - began)
    hub = Hub(ctx.store, load_settings())
    with transaction(ctx.store) as s:
        who = principal_of(s.scalar(select(User).where(User.username == "investigator.hf")))
    whole = []
    for plate in plates[:60]:
        began = time.perf_counter()
        with contextlib.suppress(HubError):  # a refusal is audited and timed the same
            hub.plate_trajectory(who, plate, start, end, Reason("investigation", "BENCH-1"),
                                 now=end)  # fmt: skip
        whole.append(time.perf_counter() - began)
    part, flat = _p95(times["public.sightings"]), _p95(times["bench_flat.sightings"])
    return [
        Result(job, "30-day plate reads, p95 over day partitions", part, "ms",
               naive="same query, one unpartitioned table", naive_value=flat,
               goal=2 * flat, higher_is_better=False,
               note=f"{len(plates)} sampled plates; goal: ≤ 2× the plain table"),
        Result(job, "whole audited Hub.plate_trajectory, 30 days, p95", _p95(whole), "ms",
               goal=TRAJECTORY_GOAL_MS, higher_is_better=False,
               note=f"{len(whole)} plates as investigator.hf"),
    ]  # fmt: skip


@register("retention_partition")
def retention_partition(ctx: BenchContext) -> list[Result]:
    job = "retention_partition"
    if (skip := _postgres_only(ctx, job)) is not None:
        return skip
    with ctx.store.connect() as conn:
        days = partitions.day_partitions(conn, "sightings")
        sizes = [conn.execute(text(f'SELECT count(*) FROM "{p.table}"')).scalar()  # noqa: S608
                 for p in days[:7]]  # fmt: skip
    # Everything up to the end of the busiest of the first week's days (a full day; the
    # first ones of the demo are its thin start).
    last = days[sizes.index(max(sizes))]
    n = sum(sizes[: days.index(last) + 1])
    now = ctx.anchor + timedelta(hours=1)
    keep = {"sightings": (now - last.end).days, "incidents": 0, "help_requests": 0, "alerts": 0}
    with transaction(ctx.store) as s:
        began = time.perf_counter()
        purged = apply_retention(s, keep, now=now)
        dropped = time.perf_counter() - began
        s.rollback()
    with ctx.store.connect() as conn:
        began = time.perf_counter()
        conn.execute(text("DELETE FROM sightings WHERE ts < :b"), {"b": last.end})
        deleted = time.perf_counter() - began
        conn.rollback()
    gone = next(p.purged for p in purged if p.dataset == "sightings")
    return [Result(job, f"retention of {days.index(last) + 1} days ({n:,} reads): partitions dropped", dropped, "s",
                   naive="DELETE of the same days row by row", naive_value=deleted,
                   higher_is_better=False,
                   note=f"{gone:,} purged; both rolled back")]  # fmt: skip


@register("overview_cold")
def overview_cold(ctx: BenchContext) -> list[Result]:
    job = "overview_cold"
    url = ctx.store.url.render_as_string(hide_password=False)
    engine = make_engine(url)  # a restart: a new pool, nothing cached in this process
    try:
        hub = Hub(engine, load_settings())
        with transaction(engine) as s:
            who = principal_of(s.scalar(select(User).where(User.username == "leader")))
        began = time.perf_counter()
        hub.province_overview(who)
        province = time.perf_counter() - began
        began = time.perf_counter()
        hub.overview(who, now=ctx.anchor)
        charts = time.perf_counter() - began
        began = time.perf_counter()
        with engine.connect() as conn:
            for models in DATA_CLASSES.values():
                for model in models:
                    t = model.__tablename__
                    conn.execute(text(f"SELECT city_code, count(*) FROM {t} GROUP BY 1"))  # noqa: S608
        scan = time.perf_counter() - began
    finally:
        engine.dispose()
    return [
        Result(job, "全省数据资源 first visit (Hub.province_overview)", province, "s",
               naive="counting every record per city", naive_value=scan, goal=COLD_GOAL_S,
               higher_is_better=False, note=f"{Sighting.__tablename__} counted by triggers"),
        Result(job, "overview first visit (Hub.overview, 30-day charts)", charts, "s",
               goal=COLD_GOAL_S, higher_is_better=False, note="whole hours from the rollup"),
    ]  # fmt: skip
