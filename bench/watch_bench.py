"""Plate watch and the notification feed: what a hit check costs with 10, 10,000 and
100,000 active watches (one second of province traffic, 1,100 reads, per micro-batch),
beside matching the same batch without the watches' plate index; and the notification
check of 20 signed-in sessions.

Runs on a scratch copy of the small demo province (SQLite, in the run's temporary
directory): 100,000 watches are not left in the shared benchmark store.
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, insert, select, text

from hub import demo
from hub.bench import BenchContext, Result, log, register
from hub.models import Camera, Case, FeedBatch, Sighting, User, Watch
from hub.reference import load_reference
from hub.security.identity import principal_of
from hub.service import Hub
from hub.settings import load_settings
from hub.store import make_engine, transaction, upgrade
from hub.watch import match_batch

READS_PER_BATCH = 1_100  # one second of the province's plate reads
WATCHED_PER_BATCH = 10
BATCHES = 15
SIZES = (10, 10_000, 100_000)
MATCH_GOAL_MS = 100.0  # a tenth of the 1 s publish-to-page budget
FLAT_GOAL = 1.5  # 100,000 watches may cost at most this times 10 watches
NOTICE_GOAL_MS = 20.0
SESSIONS = 20
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def _plates(rng: np.random.Generator, n: int, prefix: str) -> list[str]:
    """`n` distinct valid plates of the form 皖<prefix>XXXX."""
    out: set[str] = set()
    while len(out) < n:
        out.add("皖" + prefix + "".join(rng.choice(list(_LETTERS), 4)))
    return sorted(out)


def scratch_store(ctx: BenchContext, path: Path | None = None) -> Engine:
    """A scratch SQLite copy of the small demo province (at `path`, or in the run's
    temporary directory); also the store of `hit_latency`."""
    path = path or ctx.tmp_dir / f"watch-{uuid.uuid4().hex[:8]}.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with transaction(engine) as session:
        load_reference(session=session)
    log("watch: seeding a scratch small demo province")
    demo.seed(engine, load_settings(), size="small", seed=ctx.seed, anchor=ctx.anchor)
    return engine


def _set_watches(engine: Engine, n: int, watched: list[str], filler: list[str], ctx) -> None:
    """Exactly `n` active watches: the batch's watched plates, the rest on other plates."""
    with transaction(engine) as s:
        s.execute(text("DELETE FROM watch_hits"))
        s.execute(text("DELETE FROM watches"))
        owner = s.scalar(select(User.id).where(User.username == "investigator.hf"))
        case = s.scalar(select(Case.id).where(Case.case_no == demo.PURSUIT_CASE_NO))
        plates = watched + filler[: n - len(watched)]
        rows = [
            {"plate": p, "owner_id": owner, "owner_city": demo.PURSUIT_FROM, "purpose": "pursuit",
             "case_no": demo.PURSUIT_CASE_NO, "case_id": case, "scope": "province",
             "created_at": ctx.anchor - timedelta(days=1), "expires_at": ctx.anchor + timedelta(days=20)}
            for p in plates
        ]  # fmt: skip
        for start in range(0, len(rows), 10_000):
            s.execute(insert(Watch), rows[start : start + 10_000])


def _batch(engine: Engine, cams: list, plates: list[str], ctx, k: int) -> int:
    """A committed feed batch of `READS_PER_BATCH` reads, `WATCHED_PER_BATCH` of them on
    watched plates (`plates[:WATCHED_PER_BATCH]`)."""
    ts = ctx.anchor + timedelta(minutes=k)
    with transaction(engine) as s:
        batch = FeedBatch(city_code=cams[0].city_code, dataset="sightings", source_name="bench")
        s.add(batch)
        s.flush()
        rows = []
        for i, plate in enumerate(plates):
            cam = cams[i % len(cams)]
            rows.append({
                "source_id": f"wb-{k}-{i}", "city_code": cam.city_code,
                "district_code": cam.district_code, "classification": "internal",
                "camera_id": cam.id, "plate": plate, "ts": ts, "lon": cam.lon, "lat": cam.lat,
                "source_batch_id": batch.id,
            })  # fmt: skip
        s.execute(insert(Sighting), rows)
        return batch.id


def _naive_match(engine: Engine, batch_id: int, now) -> float:
    """The same join with the plate index defeated (`plate || ''`): every active watch
    compared with each read, which is what a matcher without the index does."""
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(
            text(
                "SELECT count(*) FROM sightings s JOIN watches w ON w.plate || '' = s.plate "
                "WHERE s.source_batch_id = :b AND w.ended_at IS NULL AND w.expires_at > :now"
            ),
            {"b": batch_id, "now": now.replace(tzinfo=None).isoformat(sep=" ")},
        ).scalar()
    return (time.perf_counter() - started) * 1000


@register("watch_match", needs_store=False)
def watch_match(ctx: BenchContext) -> list[Result]:
    engine = scratch_store(ctx)
    rng = np.random.default_rng(ctx.seed)
    with transaction(engine) as s:
        cams = s.execute(
            select(Camera.id, Camera.city_code, Camera.district_code, Camera.lon, Camera.lat)
        ).all()
    watched = _plates(rng, WATCHED_PER_BATCH, "W")
    filler = _plates(rng, max(SIZES), "F")
    traffic = _plates(rng, READS_PER_BATCH - WATCHED_PER_BATCH, "T")
    now = ctx.anchor + timedelta(hours=1)
    results, figures, k = [], {}, 0
    for n in SIZES:
        _set_watches(engine, n, watched, filler, ctx)
        times = []
        for _ in range(BATCHES):
            k += 1
            batch = _batch(engine, cams, watched + traffic, ctx, k)
            started = time.perf_counter()
            raised = match_batch(engine, batch, now=now)
            times.append((time.perf_counter() - started) * 1000)
            assert raised == WATCHED_PER_BATCH, raised
        naive = _naive_match(engine, batch, now)
        p95 = float(np.percentile(times, 95))
        figures[n] = statistics.median(times)
        log(f"watch_match: {n} watches, median {figures[n]:.1f} ms, p95 {p95:.1f} ms")
        results.append(
            Result(
                "watch_match", f"match+commit 1,100 reads, {n:,} watches (p95)", p95, "ms",
                naive="no plate index", naive_value=naive, goal=MATCH_GOAL_MS,
                higher_is_better=False,
                detail={"median_ms": figures[n], "batches": BATCHES, "hits_per_batch": WATCHED_PER_BATCH},
            )
        )  # fmt: skip
    flat = figures[max(SIZES)] / figures[min(SIZES)]
    results.append(
        Result("watch_match", "cost 100,000 / 10 watches (median)", flat, "x", goal=FLAT_GOAL,
               higher_is_better=False, note="a read costs the same however many watches")
    )  # fmt: skip
    results.append(_notice_check(ctx, engine))
    engine.dispose()
    return results


def _notice_check(ctx: BenchContext, engine: Engine) -> Result:
    """20 sessions (every demo account, one twice) each checking their notifications,
    round after round, as the badge does every few seconds."""
    hub = Hub(engine, load_settings())
    with transaction(engine) as s:
        users = s.scalars(select(User).order_by(User.id)).all()
        sessions = [principal_of(u) for u in users]
    sessions = (sessions * 2)[:SESSIONS]
    now = ctx.anchor + timedelta(hours=1)
    for p in sessions:
        hub.notices.check(p, now=now)
    times = []
    for r in range(10):
        for p in sessions:
            started = time.perf_counter()
            hub.notices.check(p, since=now, now=now + timedelta(seconds=r))
            times.append((time.perf_counter() - started) * 1000)
    p95 = float(np.percentile(times, 95))
    log(f"notice_check: {len(times)} checks, p95 {p95:.1f} ms")
    return Result(
        "watch_match", f"notification check, {SESSIONS} sessions (p95 per check)", p95, "ms",
        goal=NOTICE_GOAL_MS, higher_is_better=False,
        detail={"median_ms": statistics.median(times), "checks": len(times)},
    )  # fmt: skip
