"""The live path's commands: `stream` (the consumer, its dead letters), `bus` (the
embedded server, its status) and `live` (the demo's publisher); registered by hub.cli."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from hub.settings import load_settings

Add = Callable[..., argparse.ArgumentParser]


def _usage(message: str) -> Exception:
    from hub.cli import UsageError

    return UsageError(message)


def _engine(args: argparse.Namespace):
    from hub.store import make_engine

    return make_engine(args.db or load_settings().database_url)


def _facade(args: argparse.Namespace):
    from hub.live import bus
    from hub.live.facade import LiveFacade

    return LiveFacade(bus.hub_endpoint(), _engine(args))


async def _until_signalled(run: Callable[[asyncio.Event], object]) -> object:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await run(stop)


def cmd_stream(args: argparse.Namespace) -> int:
    from hub.ingest.readers import Limits
    from hub.live import bus
    from hub.live.consumer import Options, StreamConsumer
    from hub.security.crypto import FieldCipher

    if args.action == "dead":
        dead = _facade(args).dead_letters(limit=args.limit)
        for d in dead:
            when = f"{d.parked_at:%Y-%m-%d %H:%M:%S}" if d.parked_at else "-"
            print(f"#{d.dead_seq:<6} {when} {d.subject} seq {d.stream_seq} after {d.deliveries} "
                  f"tries: {d.reason} {d.error} ({d.size} bytes)")  # fmt: skip
        print(f"{len(dead)} parked message(s)")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    consumer = StreamConsumer(
        _engine(args), bus.hub_endpoint(), FieldCipher.from_settings(settings),
        options=Options(batch_max=args.batch_max, fetch=4 * args.batch_max),
        limits=Limits.from_settings(settings),
    )  # fmt: skip
    try:
        stats = asyncio.run(
            _until_signalled(lambda stop: consumer.run(stop=stop, drain=args.drain))
        )
    except bus.BusError as exc:
        raise _usage(f"{exc} (start it: python -m hub bus serve, or set HUB_BUS_URL)") from None
    print(f"stream: {stats.messages:,} messages in {stats.batches:,} batches, "
          f"{stats.rows_rejected:,} rows rejected, {stats.parked} parked, "
          f"{stats.retried} sent back for a later try")  # fmt: skip
    return 0


def cmd_bus(args: argparse.Namespace) -> int:
    from hub.live import bus

    if args.action == "serve":
        server = bus.embedded_server(port=args.port)
        server.start()
        print(f"nats-server (JetStream under {bus.NATS_DIR}) at {server.url}", flush=True)

        async def wait(stop: asyncio.Event) -> None:
            while not stop.is_set() and server.running:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

        try:
            asyncio.run(_until_signalled(wait))
        finally:
            server.stop()
        return 0
    if args.action == "credentials":
        if args.city not in bus.city_codes():
            raise _usage(f"no city with adcode {args.city!r}")
        password = bus.load_credentials(bus.NATS_DIR)[bus.city_user(args.city)]
        print(f"user {bus.city_user(args.city)}\npassword {password}\n"
              f"publish {bus.FEED_PREFIX}.{args.city}.<dataset>\n"
              f"inbox_prefix {bus.city_inbox(args.city)}")  # fmt: skip
        return 0
    facade = _facade(args)
    status = facade.bus_status()
    if not status.up:
        print(f"bus DOWN at {', '.join(status.servers)}: {status.error}", file=sys.stderr)
    else:
        print(f"bus up at {', '.join(status.servers)}: {status.messages:,} kept, "
              f"{status.pending:,} pending, {status.in_flight:,} in flight, "
              f"{status.parked:,} parked")  # fmt: skip
    now = datetime.now(UTC)
    for f in facade.freshness(now=now):
        age = f"{(now - f.last_batch_at).total_seconds():.0f} s ago" if f.last_batch_at else "never"
        print(f"  {f.city_code} {f.dataset:<14} {age:<14} {'STALE' if f.stale else 'live'}")
    return 0 if status.up else 1


def cmd_live(args: argparse.Namespace) -> int:
    from hub.cli import _refuse_in_production
    from hub.live import bus
    from hub.live.publisher import LiveOptions, run_live

    _refuse_in_production("the synthetic live flow")
    options = LiveOptions(rate=args.rate, seconds=args.seconds, backfill_hours=args.backfill_hours,
                          seed=args.seed, pursuit_after_s=args.pursuit_after)  # fmt: skip
    try:
        sent = asyncio.run(
            _until_signalled(
                lambda stop: run_live(_engine(args), bus.hub_endpoint(), options, stop=stop)
            )  # fmt: skip
        )
    except bus.BusError as exc:
        raise _usage(f"{exc} (start it: python -m hub bus serve)") from None
    print(f"live: published {sum(sent.values()):,} messages "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(sent.items())))  # fmt: skip
    return 0


def register(add: Add) -> None:
    """Add the live path's commands to the CLI's parser (`add` as in hub.cli._parser)."""
    st = add("stream", cmd_stream, "consume city feeds from the bus into the store (run), or "
             "list parked messages (dead)")  # fmt: skip
    st.add_argument("action", nargs="?", choices=["run", "dead"], default="run")
    st.add_argument("--drain", action="store_true", help="exit once nothing is pending")
    st.add_argument("--batch-max", type=int, default=2000, metavar="N",
                    help="messages per micro-batch (default 2000)")  # fmt: skip
    st.add_argument("--limit", type=int, default=100, help="dead: how many (default 100)")

    b = add("bus", cmd_bus, "the embedded NATS JetStream server (serve), its state (status), "
            "a city's bus credentials for its vendor (credentials)")  # fmt: skip
    b.add_argument("action", choices=["serve", "status", "credentials"])
    b.add_argument("--port", type=int, default=14222, help="serve: client port (default 14222)")
    b.add_argument("--city", metavar="ADCODE", help="credentials: the city")

    lv = add("live", cmd_live, "publish a realistic synthetic flow for all 16 cities over the "
             "bus, with the pursuit (demo only)")  # fmt: skip
    lv.add_argument(
        "--rate",
        type=float,
        default=40.0,
        help="plate reads per second, province-wide, at the daily peak (default 40)",
    )
    lv.add_argument("--seconds", type=float, default=None, help="stop after this long")
    lv.add_argument(
        "--backfill-hours",
        type=float,
        default=24.0,
        help="first fill the gap since the newest stored record, at most this long",
    )
    lv.add_argument(
        "--pursuit-after",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="when the watched car leaves 合肥 for 滁州 (default 60 s after start)",
    )
    lv.add_argument("--seed", type=int, default=None)
