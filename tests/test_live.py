"""`hub live` over a real bus into a copy of the seeded demo store: every record it
publishes passes validation, the gap since the newest stored record is filled first,
and the watched car's reads cross from 合肥 into 滁州."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hub import demo
from hub import models as m
from hub.live import bus
from hub.live.consumer import Options, StreamConsumer
from hub.live.publisher import LiveOptions, newest_record, run_live
from hub.security.crypto import FieldCipher
from hub.settings import load_settings
from hub.store import make_engine, transaction
from tests.bus_support import ensure, hub_endpoint, running_server


@pytest.fixture
def nats_server(tmp_path) -> Iterator[bus.LocalServer]:
    yield from running_server(tmp_path)


def _copy(seeded_sqlite, tmp_path):
    """A private copy of the session's seeded store (that one must not be written)."""
    target = tmp_path / "live.db"
    src = sqlite3.connect(seeded_sqlite.url.database)
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return make_engine(f"sqlite:///{target}")


def test_live_flow_joins_the_history_and_runs_the_pursuit(seeded_sqlite, tmp_path, nats_server):
    engine = _copy(seeded_sqlite, tmp_path)
    ensure(nats_server)
    endpoint = hub_endpoint(nats_server)
    started = datetime.now(UTC)

    def city(adcode: str) -> bus.Endpoint:
        user = bus.city_user(adcode)
        return bus.Endpoint((nats_server.url,), user, nats_server.creds[user])

    # The pursuit began half an hour ago: all its reads are due at once.
    options = LiveOptions(rate=2.0, seconds=4.0, backfill_hours=2.0, seed=3,
                          pursuit_after_s=-1800.0, tick_s=0.5)  # fmt: skip
    sent = asyncio.run(run_live(engine, endpoint, options, creds_for=city))
    assert sent["sightings"] > 1000 and sent["incidents"] > 100  # two hours of backfill
    consumer = StreamConsumer(engine, endpoint, FieldCipher.from_settings(load_settings()),
                              options=Options(max_wait_s=0.2))  # fmt: skip
    stats = asyncio.run(asyncio.wait_for(consumer.run(drain=True), 120))
    assert stats.messages == sum(sent.values())
    assert stats.rows_rejected == 0 and stats.parked == 0  # realistic means valid
    with transaction(engine) as s:
        live = select(m.Sighting).where(m.Sighting.source_id.like("LIVE-%"))
        first = s.scalar(select(func.min(m.Sighting.ts)).where(m.Sighting.source_id.like("LIVE-%")))
        cities = s.scalar(select(func.count(func.distinct(m.Sighting.city_code))).where(
            m.Sighting.source_id.like("LIVE-%")))  # fmt: skip
        pursuit = s.execute(
            select(m.Sighting.city_code, m.Sighting.ts)
            .where(m.Sighting.plate == demo.PURSUIT_PLATE, m.Sighting.source_id.like("LIVE-%"))
            .order_by(m.Sighting.ts)
        ).all()
        assert s.scalar(select(func.count()).select_from(live.subquery())) == sent["sightings"]
    # The gap is filled from the backfill floor (the seeded history is older than 2 h).
    assert first - (started - timedelta(hours=2)) < timedelta(minutes=5)
    assert cities == 16
    assert pursuit and pursuit[0].city_code == demo.PURSUIT_FROM
    crossed = [p for p in pursuit if p.city_code == demo.PURSUIT_TO]
    assert crossed and crossed[0].ts > pursuit[0].ts
    assert newest_record(engine) >= started - timedelta(seconds=5)
