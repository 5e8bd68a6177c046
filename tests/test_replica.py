"""Read-only aggregates on a real streaming standby (issue 19): routing, how old the
replica's data is, and falling back to the primary when the standby is down, too far
behind or not a standby at all."""

from __future__ import annotations

import dataclasses
import time

import pytest
from sqlalchemy import text

from hub.replica import ReadRouter
from hub.settings import load_settings
from hub.store import make_engine, upgrade
from tests.conftest import PG_ADMIN_URL, new_database_url
from tests.pg_standby import standby_of

pytestmark = pytest.mark.standby


@pytest.fixture(scope="module")
def primary(tmp_path_factory):
    """A migrated database of its own on the test server, made before the standby copies
    the server, so that the standby has it too."""
    engine = make_engine(new_database_url("postgresql", tmp_path_factory.mktemp("replica")))
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE replica_probe (n integer)"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def standby(primary):
    with standby_of(PG_ADMIN_URL) as s:
        yield s


def _router(primary, standby, **kw) -> ReadRouter:
    settings = dataclasses.replace(
        load_settings(), replica_url=standby.url(primary.url.database), **kw
    )
    return ReadRouter.from_settings(primary, settings)


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM replica_probe")).scalar_one()


def _write(primary, n: int = 1) -> None:
    with primary.begin() as conn:
        conn.execute(text("INSERT INTO replica_probe SELECT generate_series(1, :n)"), {"n": n})


def _eventually(check, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_without_a_replica_everything_reads_the_primary(primary) -> None:
    router = ReadRouter.from_settings(primary, load_settings())
    assert router.engine() is primary
    status = router.status()
    assert not status.configured and not status.notice(10)


def test_a_fresh_standby_serves_the_aggregates(primary, standby) -> None:
    router = _router(primary, standby)
    before = _count(primary)
    _write(primary, 3)
    assert _eventually(lambda: _count(router.replica) == before + 3)
    status = router.status(fresh=True)
    assert status.in_use and status.problem is None and status.lag_seconds is not None
    assert status.lag_seconds < 5 and not status.notice(10)
    assert router.engine() is router.replica


def test_lag_is_measured_and_shown_then_too_old_goes_back_to_the_primary(primary, standby) -> None:
    router = _router(primary, standby, replica_max_lag_seconds=2.0)
    with router.replica.connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_pause()"))
        conn.commit()
    try:
        _write(primary)
        time.sleep(1.0)
        lagging = router.status(fresh=True)
        assert lagging.lag_seconds is not None and lagging.lag_seconds >= 0.5
        assert lagging.notice(0.5)  # a page would say how old the data is
        assert _count(router.replica) < _count(primary)
        time.sleep(2.0)
        stale = router.status(fresh=True)
        assert stale.problem == "too_old" and not stale.in_use
        assert router.engine() is primary
    finally:
        with router.replica.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
            conn.commit()
    assert _eventually(lambda: router.status(fresh=True).in_use)
    assert _count(router.replica) == _count(primary)


def test_a_standby_that_is_down_falls_back_to_the_primary(primary, standby) -> None:
    router = _router(primary, standby)
    assert router.status(fresh=True).in_use
    standby.stop()
    try:
        down = router.status(fresh=True)
        assert down.problem == "down" and not down.in_use and down.notice(10)
        assert router.engine() is primary
        assert _count(router.engine()) >= 0  # the aggregate still answers, from the primary
    finally:
        standby.start()
    assert _eventually(lambda: router.status(fresh=True).in_use, 60)


def test_a_url_that_is_not_a_standby_is_not_used(primary) -> None:
    settings = dataclasses.replace(load_settings(), replica_url=PG_ADMIN_URL)
    router = ReadRouter.from_settings(primary, settings)
    status = router.status()
    assert status.problem == "not_standby" and router.engine() is primary
