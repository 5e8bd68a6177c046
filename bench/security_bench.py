"""The price of the security kernel: an audited plate lookup (policy in SQL, pointers,
masks, audit entry with alarm rules, commit) beside the bare indexed query."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select

from bench.store_bench import SIGHTINGS, sample_plates
from hub.bench import BenchContext, Result, log, register
from hub.demo import PURSUIT_CASE_NO, PURSUIT_FROM
from hub.models import User
from hub.security.identity import add_user, principal_of
from hub.security.policy import Principal
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import transaction

PLATES = 300
OVERHEAD_GOAL = 3.0
P95_GOAL_MS = 5.0


def _bench_investigator(ctx: BenchContext) -> Principal:
    """An investigator of the pursuit case's city (created once in the bench store)."""
    with transaction(ctx.store) as session:
        user = session.scalar(select(User).where(User.username == "bench.investigator"))
        if user is None:
            user = add_user(
                session, None, username="bench.investigator", display_name="bench",
                role="investigator", password="bench-not-a-login", city_code=PURSUIT_FROM,
                now=datetime.now(UTC),
            )  # fmt: skip
        return principal_of(user)


@register("audited_search")
def audited_search(ctx: BenchContext) -> list[Result]:
    hub = Hub(ctx.store, load_settings())
    who = _bench_investigator(ctx)
    reason = Reason("case_investigation", PURSUIT_CASE_NO)
    plates = sample_plates(ctx.store, PLATES + 20, np.random.default_rng(ctx.seed))
    warm, plates = plates[:20], plates[20:]

    def bare_lookup(conn, plate):
        return conn.execute(
            select(SIGHTINGS).where(SIGHTINGS.c.plate == plate).order_by(SIGHTINGS.c.ts)
        ).all()

    log(f"audited_search: {len(plates)} plates, bare then audited")
    with ctx.store.connect() as conn:
        for p in warm:
            bare_lookup(conn, p)
        bare_ms = []
        for p in plates:
            t = time.perf_counter()
            bare_lookup(conn, p)
            bare_ms.append((time.perf_counter() - t) * 1000)
    for p in warm:
        hub.search_plate(who, p, reason)
    audited_ms, rows = [], []
    for p in plates:
        t = time.perf_counter()
        r = hub.search_plate(who, p, reason)
        audited_ms.append((time.perf_counter() - t) * 1000)
        rows.append(len(r.rows) + sum(x.count for x in r.pointers))
    bare_p95, aud_p95 = np.percentile(bare_ms, 95), np.percentile(audited_ms, 95)
    overhead = aud_p95 / bare_p95
    note = f"overhead {overhead:.1f}x bare (goal <= {OVERHEAD_GOAL:.0f}x): {'met' if overhead <= OVERHEAD_GOAL else 'not met'}"
    return [
        Result(
            job="audited_search",
            figure=f"p50, whole audited service call, {len(plates)} plates",
            value=float(np.percentile(audited_ms, 50)), unit="ms",
            naive="bare indexed query", naive_value=float(np.percentile(bare_ms, 50)),
            higher_is_better=False,
            detail={"rows_mean": float(np.mean(rows))},
        ),
        Result(
            job="audited_search",
            figure=f"p95, whole audited service call, {len(plates)} plates",
            value=float(aud_p95), unit="ms",
            naive="bare indexed query", naive_value=float(bare_p95),
            goal=P95_GOAL_MS, higher_is_better=False, note=note,
        ),
    ]  # fmt: skip
