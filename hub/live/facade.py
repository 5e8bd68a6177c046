"""What pages ask about the live path: is the bus up, how fresh is each city's stream,
which messages were parked. Plain synchronous calls (pages are synchronous) that never
raise because the bus is down: a down bus is an answer, not an error.

Dead letters are listed by their metadata only (subject, sequence, reason, tries, size):
their bodies may hold personal data and stay on the bus for the feed operator's tools.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine, func, select

from hub import models as m
from hub.live import bus

T = TypeVar("T")
STALE_AFTER = timedelta(minutes=10)  # no stream batch of a city for this long: stale


@dataclass(frozen=True)
class BusStatus:
    """The bus as the hub sees it now."""

    up: bool
    servers: tuple[str, ...]
    checked_at: datetime
    messages: int = 0  # kept in HUB_FEEDS
    pending: int = 0  # not yet delivered to the hub's consumer
    in_flight: int = 0  # delivered, not yet acknowledged
    parked: int = 0  # messages in HUB_DEAD
    error: str | None = None


@dataclass(frozen=True)
class Freshness:
    """The newest stream batch of one city and dataset."""

    city_code: str
    dataset: str
    last_batch_at: datetime | None
    batches: int
    stale: bool


@dataclass(frozen=True)
class DeadLetter:
    """A parked message: where it came from and why it was parked."""

    dead_seq: int
    subject: str
    stream_seq: int
    reason: str
    error: str
    deliveries: int
    size: int
    parked_at: datetime | None


def _run(coro: Coroutine[object, object, T]) -> T:
    """Run a coroutine from synchronous code, also from inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class LiveFacade:
    """The live path's questions for pages and the CLI."""

    def __init__(self, endpoint: bus.Endpoint, engine: Engine, *, timeout: float = 2.0) -> None:
        self.endpoint, self.engine, self.timeout = endpoint, engine, timeout

    async def _connect(self):
        import nats

        return await nats.connect(
            **self.endpoint.options(
                connect_timeout=self.timeout, allow_reconnect=False, max_reconnect_attempts=0
            )
        )

    def bus_status(self) -> BusStatus:
        """Whether the bus answers, with its counts; `up=False` and `error` when not."""
        now = datetime.now(UTC)

        async def ask() -> BusStatus:
            nc = await self._connect()
            try:
                js = nc.jetstream(timeout=self.timeout)
                feeds = await js.stream_info(bus.STREAM)
                consumer = await js.consumer_info(bus.STREAM, bus.CONSUMER)
                dead = await js.stream_info(bus.DEAD_STREAM)
                return BusStatus(
                    True, self.endpoint.servers, now, feeds.state.messages,
                    consumer.num_pending, consumer.num_ack_pending, dead.state.messages,
                )  # fmt: skip
            finally:
                await nc.close()

        try:
            return _run(asyncio.wait_for(ask(), self.timeout * 3))
        except Exception as exc:  # down, unreachable or not set up: all mean "no live feed"
            return BusStatus(
                False, self.endpoint.servers, now, error=f"{type(exc).__name__}: {exc}"[:300]
            )

    def freshness(self, *, now: datetime | None = None) -> list[Freshness]:
        """Per city and streamed dataset: the newest committed stream batch (from the store,
        so it answers while the bus is down)."""
        now = now or datetime.now(UTC)
        q = (
            select(m.FeedBatch.city_code, m.FeedBatch.dataset,
                   func.max(m.FeedBatch.finished_at), func.count())
            .where(m.FeedBatch.source_name.like("stream:%"),
                   m.FeedBatch.status.in_(("done", "unchanged")))
            .group_by(m.FeedBatch.city_code, m.FeedBatch.dataset)
        )  # fmt: skip
        with self.engine.connect() as conn:
            seen = {(c, d): (t, n) for c, d, t, n in conn.execute(q)}
        out = []
        for city in bus.city_codes():
            for ds in bus.STREAM_DATASETS:
                last, n = seen.get((city, ds), (None, 0))
                stale = last is None or now - last > STALE_AFTER
                out.append(Freshness(city, ds, last, n, stale))
        return out

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest parked messages, newest first (empty when the bus is down)."""

        async def read() -> list[DeadLetter]:
            from nats.js.errors import NotFoundError

            nc = await self._connect()
            try:
                js = nc.jetstream(timeout=self.timeout)
                state = (await js.stream_info(bus.DEAD_STREAM)).state
                out: list[DeadLetter] = []
                seq = state.last_seq
                while seq >= max(state.first_seq, 1) and len(out) < limit:
                    try:
                        raw = await js.get_msg(bus.DEAD_STREAM, seq)
                    except NotFoundError:
                        seq -= 1
                        continue
                    out.append(_dead_letter(raw))
                    seq -= 1
                return out
            finally:
                await nc.close()

        try:
            return _run(asyncio.wait_for(read(), self.timeout * 5))
        except Exception:
            return []


def _dead_letter(raw) -> DeadLetter:
    h = raw.headers or {}
    parked = raw.time
    if raw.subject.startswith("$JS.EVENT.ADVISORY"):  # the bus's own backstop
        info = json.loads(raw.data or b"{}")
        return DeadLetter(raw.seq, f"{bus.STREAM} (consumer {info.get('consumer', '')})",
                          int(info.get("stream_seq", 0)), "max_deliveries",
                          "the consumer never completed it", int(info.get("deliveries", 0)),
                          0, parked)  # fmt: skip
    return DeadLetter(
        raw.seq, h.get("Hub-Subject", ""), int(h.get("Hub-Stream-Seq", 0)),
        h.get("Hub-Reason", ""), h.get("Hub-Error", ""), int(h.get("Hub-Deliveries", 0)),
        # A body too big to park beside its reason is cut short: its size as sent.
        int(h.get("Hub-Body-Truncated") or len(raw.data or b"")), parked,
    )  # fmt: skip
