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

from hub.cli_text import label, local_time, number, t
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
            when = local_time(d.parked_at, seconds=True, zone=False) if d.parked_at else "-"
            print(t("stream_dead_line", seq=d.dead_seq, when=when, subject=d.subject,
                    stream_seq=d.stream_seq, tries=d.deliveries, reason=d.reason,
                    error=d.error, size=number(d.size)))  # fmt: skip
        print(t("stream_dead_count", n=number(len(dead))))
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
        raise _usage(t("stream_bus_missing", error=exc)) from None
    print(t("stream_done", messages=number(stats.messages), batches=number(stats.batches),
            rejected=number(stats.rows_rejected), parked=number(stats.parked),
            retried=number(stats.retried)))  # fmt: skip
    return 0


def cmd_bus(args: argparse.Namespace) -> int:
    from hub.live import bus

    if args.action == "serve":
        server = bus.embedded_server(port=args.port)
        server.start()
        print(t("bus_serving", dir=bus.NATS_DIR, url=server.url), flush=True)

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
            raise _usage(t("bus_no_city", code=repr(args.city)))
        password = bus.load_credentials(bus.NATS_DIR)[bus.city_user(args.city)]
        print(t("bus_credentials", user=bus.city_user(args.city), password=password,
                subject=f"{bus.FEED_PREFIX}.{args.city}.<dataset>",
                inbox=bus.city_inbox(args.city)))  # fmt: skip
        return 0
    facade = _facade(args)
    status = facade.bus_status()
    if not status.up:
        print(t("bus_down", servers=", ".join(status.servers), error=status.error),
              file=sys.stderr)  # fmt: skip
    else:
        print(t("bus_up", servers=", ".join(status.servers), messages=number(status.messages),
                pending=number(status.pending), in_flight=number(status.in_flight),
                parked=number(status.parked)))  # fmt: skip
    now = datetime.now(UTC)
    for f in facade.freshness(now=now):
        age = (t("bus_age_seconds", n=number((now - f.last_batch_at).total_seconds()))
               if f.last_batch_at else t("bus_age_never"))  # fmt: skip
        print(t("bus_feed_line", city=f.city_code, dataset=label("dataset", f.dataset),
                age=age, state=t("bus_state_stale" if f.stale else "bus_state_live")))  # fmt: skip
    return 0 if status.up else 1


def cmd_live(args: argparse.Namespace) -> int:
    from hub.cli import _refuse_in_production
    from hub.live import bus
    from hub.live.publisher import LiveOptions, run_live

    _refuse_in_production("what_live")
    options = LiveOptions(rate=args.rate, seconds=args.seconds, backfill_hours=args.backfill_hours,
                          seed=args.seed, pursuit_after_s=args.pursuit_after)  # fmt: skip
    try:
        sent = asyncio.run(
            _until_signalled(
                lambda stop: run_live(_engine(args), bus.hub_endpoint(), options, stop=stop)
            )  # fmt: skip
        )
    except bus.BusError as exc:
        raise _usage(t("live_bus_missing", error=exc)) from None
    parts = ", ".join(f"{label('dataset', k)} {number(v)}" for k, v in sorted(sent.items()))
    print(t("live_published", total=number(sum(sent.values())), parts=parts))
    return 0


def register(add: Add) -> None:
    """Add the live path's commands to the CLI's parser (`add` as in hub.cli._parser)."""
    st = add("stream", cmd_stream, "")
    st.add_argument("action", nargs="?", choices=["run", "dead"], default="run")
    st.add_argument("--drain", action="store_true", help=t("help_stream_drain"))
    st.add_argument("--batch-max", type=int, default=2000, metavar="N",
                    help=t("help_stream_batch_max"))  # fmt: skip
    st.add_argument("--limit", type=int, default=100, help=t("help_stream_limit"))

    b = add("bus", cmd_bus, "")
    b.add_argument("action", choices=["serve", "status", "credentials"])
    b.add_argument("--port", type=int, default=14222, help=t("help_bus_port"))
    b.add_argument("--city", metavar="ADCODE", help=t("help_bus_city"))

    lv = add("live", cmd_live, "")
    lv.add_argument(
        "--rate",
        type=float,
        default=40.0,
        help=t("help_live_rate"),
    )
    lv.add_argument("--seconds", type=float, default=None, help=t("help_live_seconds"))
    lv.add_argument(
        "--backfill-hours",
        type=float,
        default=24.0,
        help=t("help_live_backfill"),
    )
    lv.add_argument(
        "--pursuit-after",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help=t("help_live_pursuit"),
    )
    lv.add_argument("--seed", type=int, default=None, help=t("help_live_seed"))
