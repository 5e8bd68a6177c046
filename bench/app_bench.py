"""The app as people use it: every page run once through AppTest, twenty command-room
sessions at their refresh cadence, and the incident window + box query behind the map."""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select, text

from hub.analytics import ExploreQuery
from hub.bench import BenchContext, Result, log, register
from hub.demo import PURSUIT_CASE_NO, PURSUIT_PLATE
from hub.models import User
from hub.security.identity import principal_of
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.situation import SituationQuery
from hub.store import transaction
from ui import cached

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = 20
DURATION_S = 60.0
CADENCE_S = 5.0  # a live board's fragment refresh
P95_GOAL_S = 1.0


def quiet_streamlit() -> None:
    """Silence Streamlit's "no script run context" notes: pages and decks run here
    outside `streamlit run`, thousands of times."""
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("streamlit")]:
        logging.getLogger(name).setLevel(logging.ERROR)


def _principals(engine) -> dict:
    with transaction(engine) as session:
        users = session.scalars(select(User)).all()
        return {u.username: principal_of(u) for u in users}


@contextmanager
def _app_store(ctx: BenchContext) -> Iterator[None]:
    """Point the app's own Hub (`ui.hub.get_hub`) at the bench store, caches empty."""
    import streamlit as st

    quiet_streamlit()
    old = os.environ.get("HUB_DATABASE_URL")
    os.environ["HUB_DATABASE_URL"] = ctx.store.url.render_as_string(hide_password=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        yield
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
        if old is None:
            os.environ.pop("HUB_DATABASE_URL", None)
        else:
            os.environ["HUB_DATABASE_URL"] = old


# One page opened after a restart, then again, in a process of its own (bench/README.md
# `page_runs`). Streamlit is imported and has run an empty script before the clock
# starts (the server is up before anyone visits); everything the page imports, opens and caches is part of the first
# visit. The process's clock reads the bench anchor, so the pages' "last 24 h" and "last
# 30 days" windows hold the seeded records instead of the empty days after them.
_PAGE_CHILD = r"""
import copyreg, datetime as _dt, json, logging, pickle, sys, time  # noqa: E401
from streamlit.testing.v1 import AppTest
spec = json.loads(sys.argv[1])
for name in [n for n in logging.root.manager.loggerDict if n.startswith("streamlit")]:
    logging.getLogger(name).setLevel(logging.ERROR)
AppTest.from_string("pass").run()  # the runtime's own start-up (component registry, ...)
started = time.perf_counter()  # the first visit's clock; pandas is part of it
import pandas  # before the patch below: its compiled parts subclass the real datetime
_real = _dt.datetime
_shift = _real.now(_dt.UTC) - _real.fromisoformat(spec["now"])
class _Meta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, _real)
class _Clock(_real, metaclass=_Meta):
    __slots__ = ()
    @classmethod
    def now(cls, tz=None):
        return _real.now(tz) - _shift
def _revive(fields, tz):
    return _real(*fields, tzinfo=tz)
# st.cache_data pickles its values, and a page runs as a new __main__: both helpers live
# in the datetime module, and a real datetime is pickled by its fields (the name
# datetime.datetime means the clock from here on).
_Clock.__module__ = _revive.__module__ = "datetime"
_dt._Clock, _dt._revive = _Clock, _revive
copyreg.pickle(_real, lambda d: (_revive, (d.timetuple()[:6] + (d.microsecond,), d.tzinfo)))
_dt.datetime = _Clock
def visit(began=None):
    began = began or time.perf_counter()
    at = AppTest.from_file(spec["path"], default_timeout=300)
    at.session_state["principal"] = pickle.loads(bytes.fromhex(spec["principal"]))
    at.run()
    failed = str(at.exception[0].value)[:100] if at.exception else None
    return time.perf_counter() - began, failed
cold, failed = visit(started)
warm, failed_again = visit()
print(json.dumps({"cold": cold, "warm": warm, "failed": failed or failed_again}))
"""
PAGE_ROLES = (
    "commander",
    "investigator",
    "analyst",
    "leader",
    "auditor",
    "province_approver",
    "admin",
    "officer",
    "city_approver",
)  # the first of these that may see a page
COLD_GOAL_S = 2.0


def _visit_after_restart(ctx: BenchContext, page, who) -> dict:
    env = {**os.environ, "HUB_DATABASE_URL": ctx.store.url.render_as_string(hide_password=False),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    spec = {"path": str(page.path), "principal": pickle.dumps(who).hex(),
            "now": ctx.anchor.isoformat()}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _PAGE_CHILD, json.dumps(spec)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    if done.returncode:
        return {"cold": None, "warm": None, "failed": done.stderr.strip()[-100:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


@register("page_runs")
def page_runs(ctx: BenchContext) -> list[Result]:
    """Every page, as the first role allowed to see it: its first visit after a restart
    (a new process: nothing imported, opened or cached yet) and the next visit."""
    from ui.registry import PAGES

    who = _principals(ctx.store)
    by_role = {p.role: p for p in who.values() if not p.username.startswith("bench.")}
    results = []
    for page in PAGES:
        role = next(r for r in PAGE_ROLES if r in page.roles and r in by_role)
        run = _visit_after_restart(ctx, page, by_role[role])
        failed = run["failed"]
        if run["cold"] is not None:
            log(f"page_runs: {page.key} as {role}: {run['cold']:.2f} s first visit after a "
                f"restart, {run['warm']:.2f} s next visit")  # fmt: skip
        results.append(Result(
            job="page_runs", figure=f"first visit after a restart, {page.key} as {role}",
            value=run["cold"], unit="s", goal=COLD_GOAL_S, higher_is_better=False,
            note=(f"next visit {run['warm']:.2f} s" if run["warm"] is not None else "")
            + (f"; page raised: {failed[:60]}" if failed else ""),
            error=f"page raised: {failed}" if failed else None,
            detail={"cold_s": run["cold"], "warm_s": run["warm"], "role": role},
        ))  # fmt: skip
    return results


def _mix(hub: Hub, who: dict, anchor) -> list:
    """What a command room's pages ask, as (label, call) pairs."""
    day = (anchor - timedelta(hours=24), anchor)
    pursuit = Reason("pursuit", PURSUIT_CASE_NO)
    return [
        ("situation, 合肥 24 h", lambda: hub.situation(
            who["commander.hf"], SituationQuery(*day, cities=("340100",)), now=anchor)),
        ("situation, province 24 h", lambda: hub.situation(
            who["commander.cz"], SituationQuery(*day, points=False), now=anchor)),
        # Overview and Explore as their pages ask: through the shared per-role caches.
        ("overview (page cache)", lambda: cached.overview(who["leader"])),
        ("plate search", lambda: hub.search_plate(who["investigator.hf"], PURSUIT_PLATE, pursuit)),
        ("trajectory", lambda: hub.plate_trajectory(
            who["investigator.hf"], PURSUIT_PLATE, anchor - timedelta(days=2), anchor, pursuit)),
        ("explore 7 d (page cache)", lambda: cached.explore(
            who["analyst"], ExploreQuery(anchor - timedelta(days=7), anchor, rows=("city", "type")))),
    ]  # fmt: skip


@register("command_room")
def command_room(ctx: BenchContext) -> list[Result]:
    """Twenty sessions, each calling one of the pages' services every ~5 s for 60 s."""
    with _app_store(ctx):
        return _command_room(ctx)


def _command_room(ctx: BenchContext) -> list[Result]:
    hub = Hub(ctx.store, load_settings())
    who = _principals(ctx.store)
    mix = _mix(hub, who, ctx.anchor)
    log("command_room: each service alone first (the same calls, one at a time)")
    alone = []
    for _ in range(3):
        for _, call in mix:
            started = time.perf_counter()
            call()
            alone.append(time.perf_counter() - started)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + DURATION_S

    def session(seed: int) -> None:
        rng = random.Random(seed)
        time.sleep(rng.uniform(0, CADENCE_S))  # sessions do not start in step
        while time.monotonic() < stop:
            _, call = rng.choice(mix)
            started = time.perf_counter()
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:120])
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
            time.sleep(max(0.0, CADENCE_S - elapsed) * rng.uniform(0.8, 1.2))

    log(
        f"command_room: {SESSIONS} sessions for {DURATION_S:.0f} s, one call every ~{CADENCE_S:.0f} s each"
    )
    threads = [threading.Thread(target=session, args=(i,)) for i in range(SESSIONS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    p95 = float(np.percentile(latencies, 95)) if latencies else float("nan")
    note = f"{len(latencies)} calls, {len(latencies) / DURATION_S:.1f}/s, {len(errors)} errors"
    if errors:
        note += f" (first: {errors[0]})"
    return [
        Result(
            job="command_room", figure=f"p95 per call, {SESSIONS} sessions x {DURATION_S:.0f} s",
            value=p95, unit="s", naive="same calls one at a time, p95",
            naive_value=float(np.percentile(alone, 95)), goal=P95_GOAL_S,
            higher_is_better=False, note=note,
            error=None if not errors else f"{len(errors)} errors: {errors[0]}",
        ),
        Result(
            job="command_room", figure="median per call under load", value=statistics.median(latencies),
            unit="s", naive="same calls one at a time, median", naive_value=statistics.median(alone),
            higher_is_better=False,
        ),
    ]  # fmt: skip


@register("incident_window")
def incident_window(ctx: BenchContext) -> list[Result]:
    """Incidents of a 24 h window inside a map box (index on ts, lon, lat) vs a full scan."""
    rng = np.random.default_rng(ctx.seed)
    dialect = ctx.store.dialect.name
    fmt = "%Y-%m-%d %H:%M:%S.%f" if dialect == "sqlite" else None
    sql = ("SELECT id, lon, lat, severity FROM incidents WHERE ts >= :a AND ts < :b "
           "AND lon BETWEEN :x0 AND :x1 AND lat BETWEEN :y0 AND :y1")  # fmt: skip
    naive_sql = sql.replace("ts >= :a AND ts < :b", "ts || '' >= :a AND ts || '' < :b") if dialect == "sqlite" \
        else sql.replace("ts >= :a AND ts < :b", "ts + interval '0 s' >= :a AND ts + interval '0 s' < :b")  # fmt: skip

    def params():
        end = ctx.anchor - timedelta(hours=int(rng.integers(0, 24 * 25)))
        x, y = rng.uniform(115.5, 118.8), rng.uniform(30.0, 33.8)
        a, b = end - timedelta(hours=24), end
        return {"a": a.strftime(fmt) if fmt else a, "b": b.strftime(fmt) if fmt else b,
                "x0": x, "x1": x + 0.5, "y0": y, "y1": y + 0.4}  # fmt: skip

    runs = [params() for _ in range(200)]
    with ctx.store.connect() as conn:
        fast, rows = [], []
        for p in runs:
            started = time.perf_counter()
            rows.append(len(conn.execute(text(sql), p).all()))
            fast.append((time.perf_counter() - started) * 1000)
        slow = []
        for p in runs[:3]:
            started = time.perf_counter()
            conn.execute(text(naive_sql), p).all()
            slow.append((time.perf_counter() - started) * 1000)
    return [Result(
        job="incident_window", figure="p95, 24 h window x 0.5° box, 200 queries",
        value=float(np.percentile(fast, 95)), unit="ms", naive="full scan (index defeated), 3 queries",
        naive_value=float(np.median(slow)), goal=50.0, higher_is_better=False,
        note=f"median {np.median(rows):.0f} rows per window",
    )]  # fmt: skip
