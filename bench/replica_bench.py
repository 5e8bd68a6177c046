"""Read-only aggregates on a real streaming replica, beside the same calls on the primary.

`--db` names the PostgreSQL benchmark store. The job makes a hot standby of that server
with `pg_basebackup -R` on a free loopback port (the same standby the replica tests
start: `bench/pg_standby.py`), points `HUB_REPLICA_URL` at it and times, per call, the
server side of what a page asks for on a rerun: the leadership overview, the province
counts, the situation map's province 7-day hexagons and an Explore pivot, each through
`Hub` (the caller checked on the primary, the aggregate on the replica) and through a
`Hub` without a replica in the same run. Budget: ≤ 0.3 s per rerun on either.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import make_url

from hub.analytics import ExploreQuery
from hub.bench import BenchContext, Result, log, register
from hub.models import User
from hub.security.identity import principal_of
from hub.service import Hub
from hub.settings import load_settings
from hub.situation import SituationQuery
from hub.store import transaction

SECONDS_GOAL = 0.3
REPEAT = 5


def _who(engine, username: str):
    with transaction(engine) as session:
        return principal_of(session.scalar(select(User).where(User.username == username)))


def _calls(ctx: BenchContext) -> list[tuple[str, str, Callable[[Hub, object], object]]]:
    """(figure, who, call) of what the aggregate pages ask for on a rerun."""
    end = ctx.anchor
    week = SituationQuery(end - timedelta(days=7), end)
    pivot = ExploreQuery(end - timedelta(days=30), end, rows=("city",), columns="type")
    return [
        ("overview (leader, 30 days)", "leader",
         lambda hub, who: hub.overview(who, now=end)),
        ("province counts (全省数据资源)", "province.approver",
         lambda hub, who: hub.province_overview(who)),
        ("situation hexagons, province 7 d", "commander.hf",
         lambda hub, who: hub.situation(who, week, now=end)),
        ("Explore pivot, 30 d × city × type", "analyst",
         lambda hub, who: hub.explore(who, pivot)),
    ]  # fmt: skip


def _time(hub: Hub, who, call) -> tuple[float, float]:
    """(first call, median of the next `REPEAT`) in seconds."""
    started = time.perf_counter()
    call(hub, who)
    first = time.perf_counter() - started
    runs = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        call(hub, who)
        runs.append(time.perf_counter() - started)
    return first, statistics.median(runs)


@register("replica_reads")
def replica_reads(ctx: BenchContext) -> list[Result]:
    if ctx.backend != "postgresql" or not ctx.db:
        log("replica_reads: needs --db PostgreSQL (a standby is made of that server); skipped")
        return []
    from bench.pg_standby import standby_of

    url = make_url(ctx.db)
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    primary = Hub(ctx.store, load_settings(environ={}))
    log("replica_reads: making a hot standby of the bench server (pg_basebackup -R) ...")
    started = time.perf_counter()
    with standby_of(admin) as standby:
        made = time.perf_counter() - started
        settings = load_settings(environ={"HUB_REPLICA_URL": standby.url(url.database)})
        replica = Hub(ctx.store, settings)
        try:
            status = replica.reads.status(fresh=True)
            if not status.in_use:
                raise RuntimeError(f"the standby is not used: {status.problem}")
            log(f"replica_reads: standby ready in {made:.0f} s, lag {status.lag_seconds:.1f} s")
            results = []
            for figure, username, call in _calls(ctx):
                who = _who(ctx.store, username)
                p_first, p_median = _time(primary, who, call)
                r_first, r_median = _time(replica, who, call)
                still = replica.reads.status(fresh=True)
                log(f"replica_reads: {figure}: replica {r_median:.3f} s (first {r_first:.3f}), "
                    f"primary {p_median:.3f} s (first {p_first:.3f})")  # fmt: skip
                results.append(Result(
                    job="replica_reads", figure=f"{figure}: server time per rerun on the replica",
                    value=r_median, unit="s", naive="the same call on the primary",
                    naive_value=p_median, goal=SECONDS_GOAL, higher_is_better=False,
                    note=f"first call: replica {r_first:.3f} s, primary {p_first:.3f} s; "
                         f"replica in use: {still.in_use}, lag {still.lag_seconds or 0:.1f} s",
                    detail={"replica_first_s": r_first, "primary_first_s": p_first,
                            "standby_made_s": made, "in_use": still.in_use},
                ))  # fmt: skip
            return results
        finally:
            replica.reads.dispose()
