"""Read-only aggregates on a real streaming standby (issue 19): routing, how old the
replica's data is, and falling back to the primary when the standby is down, too far
behind or not a standby at all.

The standby is a second PostgreSQL cluster made with `pg_basebackup -R` from the test
server (bench/pg_standby.py). Routing is proven by what each side can see: with replay
paused on the standby, a record written on the primary is missing from every aggregate
(they read the standby) and present in every audited read (they stay on the primary),
whose audit entries are written on the primary.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select, text, update

from bench.pg_standby import standby_of
from hub import demo
from hub import models as m
from hub.analytics import ExploreQuery
from hub.replica import ReadRouter, counts_only
from hub.security.identity import SessionEnded
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.situation import SituationQuery
from hub.store import session_factory, transaction
from tests.conftest import ANCHOR, PG_ADMIN_URL
from tests.security_support import principal, seeded_copy
from ui.freshness import replica_text

pytestmark = pytest.mark.standby

WEEK = (ANCHOR - timedelta(days=7), ANCHOR)
HEFEI = "340100"
PURSUIT = Reason("pursuit", demo.PURSUIT_CASE_NO)


@pytest.fixture(scope="module")
def primary(tmp_path_factory):
    """A seeded demo store of its own on the test server, made before the standby copies
    the server, so that the standby has it too."""
    engine = seeded_copy("postgresql", tmp_path_factory)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE replica_probe (n integer)"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def standby(primary):
    with standby_of(PG_ADMIN_URL) as s:
        yield s


def _settings(primary, standby, **kw):
    return dataclasses.replace(load_settings(), replica_url=standby.url(primary.url.database), **kw)


def _router(primary, standby, **kw) -> ReadRouter:
    return ReadRouter.from_settings(primary, _settings(primary, standby, **kw))


def _hub(primary, standby) -> Hub:
    """A hub whose aggregates may read the standby: notice past half a second of lag,
    fall back only past an hour (replay is paused for seconds in these tests)."""
    settings = _settings(
        primary, standby, replica_lag_notice_seconds=0.5, replica_max_lag_seconds=3600.0
    )
    return Hub(primary, settings)


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM replica_probe")).scalar_one()


def _write(primary, n: int = 1) -> None:
    with primary.begin() as conn:
        conn.execute(text("INSERT INTO replica_probe SELECT generate_series(1, :n)"), {"n": n})


def _eventually(check, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def _caught_up(router: ReadRouter) -> None:
    """Wait until the standby has replayed everything written so far."""
    _write(router.primary)
    want = _count(router.primary)
    assert _eventually(lambda: _count(router.replica) == want)
    assert _eventually(lambda: router.status(fresh=True).in_use)


@contextmanager
def _replay_paused(router: ReadRouter):
    with router.replica.connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_pause()"))
        conn.commit()
    try:
        yield
    finally:
        with router.replica.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
            conn.commit()


def _audit_seq(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(m.AuditEntry.seq))).scalar_one()


def _new_incident(engine) -> int:
    """A copy of one of Hefei's public incidents of the week, an hour before the anchor."""
    with transaction(engine) as s:
        like = s.scalars(
            select(m.Incident)
            .where(m.Incident.city_code == HEFEI, m.Incident.classification == "public",
                   m.Incident.ts >= WEEK[0], m.Incident.ts < WEEK[1])
            .limit(1).execution_options(policy="validation")
        ).one()  # fmt: skip
        values = {a.key: getattr(like, a.key) for a in inspect(m.Incident).column_attrs}
        values.update(id=None, source_id=f"replica-{uuid.uuid4().hex[:12]}",
                      ts=ANCHOR - timedelta(hours=1))  # fmt: skip
        new = m.Incident(**values)
        s.add(new)
        s.flush()
        return new.id


def _new_feed_batch(engine) -> None:
    with transaction(engine) as s:
        s.add(m.FeedBatch(city_code=HEFEI, dataset="incidents", source_name="replica-test",
                          status="done", spec_name=f"replica_{uuid.uuid4().hex[:8]}",
                          started_at=ANCHOR, finished_at=ANCHOR))  # fmt: skip


def _aggregates(hub: Hub, who: dict) -> dict[str, int]:
    """Every routed aggregate, as one number each that a new Hefei incident (or a new
    feed batch, for the scorecard) changes."""
    counts_q = SituationQuery(*WEEK, layers=frozenset({"incidents"}), points=False)
    assert counts_only(counts_q)
    return {
        "province_overview": sum(hub.province_overview(who["leader"]).totals.values()),
        "overview": int(hub.overview(who["leader"], now=ANCHOR).trend["count"].sum()),
        "explore": hub.explore(who["analyst"], ExploreQuery(*WEEK)).total,
        "situation_counts": hub.situation(who["commander.hf"], counts_q, now=ANCHOR).total_incidents,
        "quality_scorecard": int(hub.quality_scorecard(who["province.approver"])["batches"].sum()),
    }  # fmt: skip


@pytest.fixture(scope="module")
def who(primary):
    names = ("leader", "analyst", "commander.hf", "province.approver", "investigator.hf")
    return {u: principal(primary, u) for u in names}


# --- the router on its own -------------------------------------------------------------


def test_without_a_replica_everything_reads_the_primary(primary) -> None:
    router = ReadRouter.from_settings(primary, load_settings())
    assert router.engine() is primary
    status = router.status()
    assert not status.configured and not status.notice(10)
    assert router.shown_lag(0) is None


def test_a_fresh_standby_serves_the_aggregates(primary, standby) -> None:
    router = _router(primary, standby)
    _caught_up(router)
    status = router.status(fresh=True)
    assert status.in_use and status.problem is None and status.lag_seconds is not None
    assert router.engine() is router.replica
    assert router.shown_lag(3600) is None  # within the threshold: the pages say nothing
    assert router.replica.url.query["connect_timeout"] == "3"  # a dead host cannot hold a page


def test_lag_is_measured_and_shown_then_too_old_goes_back_to_the_primary(primary, standby) -> None:
    router = _router(primary, standby, replica_max_lag_seconds=3600.0)
    _caught_up(router)
    with _replay_paused(router):
        _write(primary)
        time.sleep(1.0)  # replay stopped before the write: its data is at least 1 s old
        lagging = router.status(fresh=True)
        assert lagging.in_use and lagging.lag_seconds is not None and lagging.lag_seconds >= 1.0
        assert lagging.notice(0.5)  # a page says how old the data is ...
        assert router.shown_lag(0.5) == lagging.lag_seconds
        assert not lagging.notice(lagging.lag_seconds + 60)  # ... only past its threshold
        assert _count(router.replica) < _count(primary)
        # Past the refusal threshold the primary answers, and there is nothing to say.
        strict = ReadRouter(primary, router.replica, max_lag_s=lagging.lag_seconds / 2)
        stale = strict.status()
        assert stale.problem == "too_old" and not stale.in_use and stale.lag_seconds > 1.0
        assert strict.engine() is primary and strict.shown_lag(0.5) is None
    assert _eventually(lambda: _count(router.replica) == _count(primary))


def test_a_url_that_is_not_a_standby_is_not_used(primary) -> None:
    settings = dataclasses.replace(load_settings(), replica_url=PG_ADMIN_URL)
    router = ReadRouter.from_settings(primary, settings)
    status = router.status()
    assert status.problem == "not_standby" and router.engine() is primary


# --- the hub: aggregates on the standby, audited reads on the primary --------------------


def test_aggregates_read_the_standby_and_audited_reads_the_primary(primary, standby, who):
    hub = _hub(primary, standby)
    _caught_up(hub.reads)
    before = _aggregates(hub, who)
    week = SituationQuery(*WEEK)  # the map with its features: audited
    map_before = hub.situation(who["commander.hf"], week, now=ANCHOR).total_incidents
    with _replay_paused(hub.reads):
        new_id = _new_incident(primary)
        _new_feed_batch(primary)
        time.sleep(1.0)
        hub.reads.status(fresh=True)
        # The aggregates read the standby: the new incident and batch are not there yet.
        assert _aggregates(hub, who) == before
        lag = hub.read_freshness()
        assert lag is not None and lag >= 0.5
        assert replica_text(lag, ANCHOR) is not None
        # Audited reads stay on the primary, in the transaction that audits them.
        seq = _audit_seq(primary)
        found = hub.view_record(who["investigator.hf"], "incidents", new_id, PURSUIT)
        assert [r["id"] for r in found.record.rows] == [new_id]
        shown = hub.situation(who["commander.hf"], week, now=ANCHOR)
        assert shown.total_incidents == map_before + 1
        assert shown.points is not None and new_id in set(shown.points["id"])
        with session_factory(primary)() as s:
            entries = s.scalars(select(m.AuditEntry).where(m.AuditEntry.seq > seq)).all()
        assert {"view", "map_view"} <= {e.action for e in entries}
        assert any(f"incidents:{new_id}" in (e.record_ids or []) for e in entries)
    expected = {k: v + 1 for k, v in before.items()}
    assert _eventually(
        lambda: hub.reads.status(fresh=True).in_use and _aggregates(hub, who) == expected
    )


def test_aggregates_write_no_audit_entry_on_either_side(primary, standby, who) -> None:
    hub = _hub(primary, standby)
    _caught_up(hub.reads)
    seq = _audit_seq(primary)
    _aggregates(hub, who)
    assert _audit_seq(primary) == seq


def test_who_is_asking_is_checked_on_the_primary(primary, standby, who) -> None:
    """A person locked on the primary is refused at once, though the standby (paused)
    still has them active."""
    hub = _hub(primary, standby)
    _caught_up(hub.reads)
    leader = who["leader"]
    hub.province_overview(leader)
    with _replay_paused(hub.reads):
        with transaction(primary) as s:
            s.execute(update(m.User).where(m.User.id == leader.user_id)
                      .values(session_version=m.User.session_version + 1))  # fmt: skip
        with pytest.raises(SessionEnded):
            hub.province_overview(leader)
    who["leader"] = principal(primary, "leader")  # the new session, for the tests after


def test_a_standby_that_is_down_falls_back_to_the_primary(primary, standby, who) -> None:
    hub = _hub(primary, standby)
    hub.reads.recheck_s = 3600.0  # the router still believes the standby is up ...
    _caught_up(hub.reads)
    before = _aggregates(hub, who)
    _new_incident(primary)
    _new_feed_batch(primary)
    standby.stop()
    try:
        # ... so each aggregate fails on the standby and answers from the primary.
        assert _aggregates(hub, who) == {k: v + 1 for k, v in before.items()}
        down = hub.reads.status()  # looked at again after the failure
        assert down.configured and down.problem == "down" and not down.in_use
        assert hub.read_freshness() is None  # the primary's data is current
        assert hub.reads.engine() is primary
        seq = _audit_seq(primary)
        hub.situation(who["commander.hf"], SituationQuery(*WEEK), now=ANCHOR)
        assert _audit_seq(primary) > seq  # the audited map view as before
    finally:
        standby.start()
    assert _eventually(lambda: hub.reads.status(fresh=True).in_use, 60)


def test_the_notice_names_the_time_of_the_data() -> None:
    now = datetime(2026, 11, 30, 9, 0, 30, tzinfo=UTC)
    assert replica_text(None, now) is None
    assert replica_text(90.4, now) == "数据截至 11-30 16:58:59（只读副本滞后 90 秒）"
