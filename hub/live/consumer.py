"""`python -m hub stream`: the hub's durable pull consumer of city feeds.

Messages are taken in micro-batches per subject (one city, one dataset): up to
`Options.batch_max` messages or `Options.max_wait_s` seconds. One micro-batch is stored
at a time (in a thread) while the bus is read on; the next to go is a subject holding a
read of a watched plate (the fast lane: its hit is what someone waits for), else the
subject waiting longest. Each micro-batch becomes a
JSON Lines source and goes through `hub.ingest.pipeline.ingest`, the very path of file
feeds, so validation, mapping, rejects, lineage (one feed batch per micro-batch, named
``stream:<subject>:<first>-<last sequence>``) and audit are the same. A message is
acknowledged only after the transaction that stored it committed and its plate-watch
hits were raised; a redelivered message finds its natural key and changes nothing. At
start the consumer matches its last few stored batches again (idempotent), so that a
crash between a batch's commit and its matching loses no hit.

Failures:
- a micro-batch the pipeline refuses as a whole is split in halves until the message
  that causes it stands alone; the others go on;
- a message that fails alone is redelivered later (`nak` with a delay) and, at its
  `Options.max_tries`-th delivery, parked in the dead-letter stream with its reason;
- the store locked or down: the same micro-batch is retried with growing pauses while
  the bus holds everything else (at most `Options.fetch` more messages are held behind
  it: back-pressure, not memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from hub.ingest.pipeline import BatchReport, ingest
from hub.ingest.readers import Limits
from hub.ingest.spec import FeedError, Spec, load_spec
from hub.live import bus
from hub.security.crypto import FieldCipher
from hub.validate import normalize_plate

log = logging.getLogger("hub.stream")
_TRANSIENT_HINTS = ("locked", "busy", "timeout", "connection", "could not serialize",
                    "deadlock", "server closed")  # fmt: skip


@dataclass(frozen=True)
class Options:
    """How the consumer batches, retries and parks."""

    batch_max: int = 2000
    # Each city and dataset is a micro-batch of its own with a fixed cost (~20 ms): a
    # shorter wait multiplies the batches, not the freshness (pages refresh every 5 s).
    # Reads of a watched plate do not wait (the fast lane).
    max_wait_s: float = 1.0
    fetch: int = 8000  # most messages held beside the micro-batch being stored
    nak_delay_s: float = 2.0
    max_tries: int = bus.MAX_TRIES
    retry_max_s: float = 30.0  # longest pause while the store is unavailable
    connect_wait_s: float = 15.0  # how long to wait for the bus at start
    watch_refresh_s: float = 5.0  # how often the fast lane re-reads the watched plates
    rematch_batches: int = 20  # stored batches matched again at start


@dataclass
class Stats:
    """What a run of the consumer did."""

    batches: int = 0
    messages: int = 0  # acknowledged after commit
    rows_rejected: int = 0
    failed_batches: int = 0
    retried: int = 0  # messages sent back for a later try
    parked: int = 0
    store_waits: int = 0
    fast_lane: int = 0  # micro-batches sent ahead for a read of a watched plate
    ingest_seconds: float = 0.0  # inside the pipeline (the rest: bus, batching, acks)
    batch_ids: list[int] = field(default_factory=list)


class _StoreUnavailable(Exception):
    """The store cannot take a batch now (locked, down): wait and try the same again."""


def stream_spec(dataset: str) -> Spec:
    """The shipped JSON Lines spec of the standard for a streamed dataset."""
    return load_spec(f"stream_{dataset}")


def jsonl(bodies: list[bytes]) -> bytes:
    """Message bodies as JSON Lines, one line each: line breaks inside one JSON document
    are blanks (JSON allows none inside strings), and a body the reader would skip as a
    blank line (empty, a byte-order mark, Unicode blanks) is a document that is no object,
    so that every message is a row, stored or rejected with its reason."""
    return b"\n".join(map(_line, bodies)) + b"\n"


def _line(body: bytes) -> bytes:
    line = body.replace(b"\r", b" ").replace(b"\n", b" ").strip()
    try:
        blank = not line.decode("utf-8").strip().lstrip("\ufeff").strip()
    except UnicodeDecodeError:  # the reader refuses the batch's encoding: split, then parked
        blank = False
    return b'""' if blank else line


def _generations(msgs: list, key: list[str]) -> list[list]:
    """`msgs` (in stream order) as consecutive runs in which no record key repeats: a
    record sent twice within one micro-batch is an insert then an update, in the order
    sent, not a conflict within one file (`conflicting_duplicate`). Nearly always one run."""
    if not key:
        return [msgs]
    seen: dict[tuple, int] = {}
    runs: list[list] = []
    for m in msgs:
        try:
            doc = json.loads(m.data)
            k = tuple(str(doc.get(f)).strip() for f in key) if isinstance(doc, dict) else None
        except (ValueError, RecursionError):
            k = None  # rejected by the pipeline whichever run it is in
        n = 0 if k is None else seen.get(k, -1) + 1
        if k is not None:
            seen[k] = n
        while len(runs) <= n:
            runs.append([])
        runs[n].append(m)
    return runs


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, FeedError):
        if exc.code != "store_refused":
            return False
        text = f"{exc} {exc.params}".lower()
        return any(h in text for h in _TRANSIENT_HINTS)
    return isinstance(exc, DBAPIError | OSError)


def _watch_module():
    """hub.watch, when the hub has plate watch (the consumer runs without it too)."""
    try:
        from hub import watch
    except ImportError:
        return None
    return watch


def _match_watches(engine: Engine, batch_id: int) -> None:
    """Raise plate-watch hits for a committed batch of sightings."""
    watch = _watch_module()
    if watch is None:
        return
    try:
        watch.match_batch(engine, batch_id)
    except Exception:  # the records are stored; a matcher fault must not stop the stream
        log.exception("plate watch matching failed for batch %s", batch_id)


def _match_in(session, report) -> None:
    """Raise the batch's plate-watch hits in its own transaction, before the commit: the
    hits are readable the moment the reads are. In a savepoint, so a matcher fault costs
    the hits (found again at the next start by `_rematch_recent`), never the reads."""
    watch = _watch_module()
    if watch is None or not report.rows_inserted + report.rows_updated:
        return
    try:
        with session.begin_nested():
            watch.match_batch(session, report.batch_id)
    except Exception:
        log.exception("plate watch matching failed for batch %s", report.batch_id)


def _rematch_recent(engine: Engine, n: int) -> int:
    """Match the last `n` stored stream batches of sightings again: a consumer killed
    after a commit and before its matching left those hits unraised, and the redelivered
    messages change nothing (so raise nothing). Rematching raises nothing twice."""
    watch = _watch_module()
    if watch is None or n <= 0:
        return 0
    from sqlalchemy import select

    from hub.models import FeedBatch

    with engine.connect() as conn:
        ids = conn.execute(
            select(FeedBatch.id)
            .where(FeedBatch.dataset == "sightings", FeedBatch.status == "done",
                   FeedBatch.source_name.startswith("stream:"))
            .order_by(FeedBatch.id.desc())
            .limit(n)
        ).scalars().all()  # fmt: skip
    for batch_id in reversed(ids):
        _match_watches(engine, batch_id)
    return len(ids)


class _FastLane:
    """The plates on watch, re-read every `refresh_s` in a thread (the loop never waits
    for it), and whether a message is a read of one. A miss costs only the lane: every
    read is matched in the store after its commit all the same."""

    def __init__(self, engine: Engine, refresh_s: float) -> None:
        self.engine, self.refresh_s = engine, refresh_s
        self.plates: frozenset[str] = frozenset()
        self._at = -float("inf")
        self._task: asyncio.Task | None = None

    def _load(self) -> frozenset[str]:
        watch = _watch_module()
        active = getattr(watch, "watched_plates", None)
        return active(self.engine) if active is not None else frozenset()

    async def load(self) -> None:
        try:
            self.plates = await asyncio.to_thread(self._load)
        except Exception:  # noqa: BLE001 - the lane is an optimisation: run without it
            log.warning("fast lane: cannot read the watched plates", exc_info=True)
        self._at = time.monotonic()

    def refresh(self) -> None:
        if self._task is not None and self._task.done():
            try:
                self.plates = self._task.result()
            except Exception:  # noqa: BLE001 - the lane is an optimisation: keep the old set
                log.warning("fast lane: cannot read the watched plates", exc_info=True)
            self._task = None
        if self._task is None and time.monotonic() - self._at >= self.refresh_s:
            self._at = time.monotonic()
            self._task = asyncio.create_task(asyncio.to_thread(self._load))

    async def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task

    def holds(self, msg) -> bool:
        """Whether `msg` is a plate read of a watched plate."""
        if not self.plates or not msg.subject.endswith(".sightings"):
            return False
        try:
            plate = json.loads(msg.data).get("plate")
        except (ValueError, AttributeError, RecursionError):  # the pipeline says why
            return False
        return isinstance(plate, str) and normalize_plate(plate) in self.plates


def _header_bytes(headers: dict[str, str]) -> int:
    """What `headers` add to a message on the wire (NATS/1.0, a line each, a blank line),
    with room to spare for what the client adds."""
    lines = sum(len(k) + len(v.encode()) + 4 for k, v in headers.items())
    return len("NATS/1.0\r\n") + lines + 2 + 64


async def _in_progress(msgs: list) -> None:
    """Tell the bus that these messages are being worked on (its ack wait starts again)."""
    for m in msgs:
        with contextlib.suppress(Exception):  # a lost heartbeat costs a redelivery, no more
            await m.in_progress()


class StreamConsumer:
    """The hub's consumer of HUB_FEEDS: `await run()` until stopped or drained."""

    def __init__(
        self,
        engine: Engine,
        endpoint: bus.Endpoint,
        cipher: FieldCipher,
        *,
        options: Options = Options(),
        limits: Limits = Limits(),
    ) -> None:
        self.engine, self.endpoint, self.cipher = engine, endpoint, cipher
        self.options, self.limits = options, limits
        self.stats = Stats()
        self._specs = {d: stream_spec(d) for d in bus.STREAM_DATASETS}
        self._js = None
        self._max_payload = 64 << 10  # the server's, once connected

    # --- one micro-batch ----------------------------------------------------------------

    def _ingest(self, adcode: str, spec: Spec, subject: str, msgs: list) -> BatchReport:
        seqs = [m.metadata.sequence.stream for m in msgs]
        started = time.perf_counter()
        try:
            return self._pipeline(adcode, spec, subject, msgs, seqs)
        finally:
            self.stats.ingest_seconds += time.perf_counter() - started

    def _pipeline(self, adcode: str, spec: Spec, subject: str, msgs: list, seqs: list[int]):
        return ingest(
            self.engine, city_code=adcode, spec=spec,
            source=io.BytesIO(jsonl([m.data for m in msgs])),
            source_name=f"stream:{subject}:{min(seqs)}-{max(seqs)}", cipher=self.cipher,
            limits=self.limits, after_write=_match_in if spec.dataset == "sightings" else None,
        )  # fmt: skip

    async def _store(self, adcode: str, spec: Spec, subject: str, msgs: list) -> None:
        """Ingest `msgs` and acknowledge them; split on a refusal; wait out the store."""
        pause = 0.5
        while True:
            try:
                report = await asyncio.to_thread(self._ingest, adcode, spec, subject, msgs)
                break
            except Exception as exc:
                if not _transient(exc):
                    if not isinstance(exc, FeedError):  # a pipeline fault: still one message's
                        log.exception("ingest of %s messages of %s failed", len(msgs), subject)
                    code = exc.code if isinstance(exc, FeedError) else "ingest_crashed"
                    self.stats.failed_batches += 1
                    if len(msgs) == 1:
                        await self._failed(msgs[0], code, str(exc))
                    else:
                        half = len(msgs) // 2
                        await self._store(adcode, spec, subject, msgs[:half])
                        await self._store(adcode, spec, subject, msgs[half:])
                    return
            # The store cannot take it now: keep these messages ours and fetch nothing
            # else; the bus holds the rest.
            self.stats.store_waits += 1
            log.warning("store unavailable; retrying %s messages in %.1f s", len(msgs), pause)
            await _in_progress(msgs)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.options.retry_max_s)
        if report.batch_id is not None:  # its hits are committed with it (`_match_in`)
            self.stats.batch_ids.append(report.batch_id)
        for m in msgs:
            await m.ack()
        self.stats.batches += 1
        self.stats.messages += len(msgs)
        self.stats.rows_rejected += report.rows_rejected

    async def _failed(self, msg, code: str, reason: str) -> None:
        """Send a failing message back for later, or park it after its last try."""
        tries = msg.metadata.num_delivered
        if tries < self.options.max_tries:
            self.stats.retried += 1
            await msg.nak(delay=self.options.nak_delay_s)
            return
        await self._park(msg, code, reason)

    async def _park(self, msg, code: str, reason: str) -> None:
        seq = msg.metadata.sequence.stream
        parsed = bus.parse_subject(msg.subject)
        tail = ".".join(parsed) if parsed else "unknown.unknown"
        headers = {
            "Nats-Msg-Id": f"dead:{seq}", "Hub-Subject": msg.subject, "Hub-Stream-Seq": str(seq),
            "Hub-Reason": code, "Hub-Error": " ".join(reason.split())[:500] or code,
            "Hub-Deliveries": str(msg.metadata.num_delivered),
        }  # fmt: skip
        body = msg.data
        room = self._max_payload - _header_bytes({**headers, "Hub-Body-Truncated": str(len(body))})
        if len(body) > room:  # the reason must fit beside it: the whole body stays in
            headers["Hub-Body-Truncated"] = str(len(body))  # HUB_FEEDS under its sequence
            body = body[: max(0, room)]
        try:
            await self._js.publish(f"{bus.DEAD_PREFIX}.{tail}", body, headers=headers)
        except Exception as exc:  # noqa: BLE001 - the bus refused or is away: try again later
            log.warning("cannot park message %s of %s (%s); it comes back later", seq,
                        msg.subject, exc)  # fmt: skip
            self.stats.retried += 1
            with contextlib.suppress(Exception):
                await msg.nak(delay=self.options.nak_delay_s)
            return
        await msg.term()  # parked: the bus never delivers it again
        self.stats.parked += 1
        log.warning("parked message %s of %s: %s", seq, msg.subject, code)

    async def _flush(self, subject: str, msgs: list) -> None:
        parsed = bus.parse_subject(subject)
        if parsed is None or parsed[1] not in self._specs:
            for m in msgs:  # no retry makes an unknown dataset known
                await self._park(m, "unknown_dataset", f"no streamed dataset on {subject}")
            return
        msgs.sort(key=lambda m: m.metadata.sequence.stream)
        spec = self._specs[parsed[1]]
        for run in _generations(msgs, spec.key):
            await self._store(parsed[0], spec, subject, run)

    # --- the loop -----------------------------------------------------------------------

    async def _pending(self, sub) -> int:
        info = await sub.consumer_info()
        return info.num_pending + info.num_ack_pending

    def _next(self, buffers: dict[str, list], since: dict[str, float], urgent: set[str],
              idle: bool, full: bool) -> str | None:  # fmt: skip
        """The subject to store next: one holding a watched plate's read; else, hands
        full, the largest; else the one waiting longest among those full or old enough
        (any, when the bus is idle)."""
        if urgent:
            return min(urgent, key=since.__getitem__)
        if full and buffers:
            return max(buffers, key=lambda s: len(buffers[s]))
        now, opts = time.monotonic(), self.options
        due = [s for s, b in buffers.items()
               if idle or len(b) >= opts.batch_max or now - since[s] >= opts.max_wait_s]  # fmt: skip
        return min(due, key=since.__getitem__) if due else None

    async def _loop(self, sub, stop: asyncio.Event, drain: bool, NatsError) -> None:  # noqa: N803
        """Fetch while one micro-batch is stored; never more than `Options.fetch` messages
        held beside the one being stored."""
        opts = self.options
        lane = _FastLane(self.engine, opts.watch_refresh_s)
        await lane.load()  # the lane works from the first fetch on
        buffers: dict[str, list] = defaultdict(list)
        since: dict[str, float] = {}
        urgent: set[str] = set()
        held = 0
        storing: asyncio.Task | None = None
        in_store: list = []  # the micro-batch being stored
        beat = time.monotonic()
        try:
            while not stop.is_set():
                lane.refresh()
                if storing is not None and storing.done():
                    await storing  # its exception, if any, ends the run
                    storing, in_store = None, []
                if time.monotonic() - beat >= bus.PROGRESS_S:
                    # Still ours: the bus must not deliver what waits here a second time.
                    await _in_progress([*in_store, *(m for b in buffers.values() for m in b)])
                    beat = time.monotonic()
                msgs: list = []
                room = opts.fetch - held
                if room > 0:
                    # Busy (a store runs, or reads wait to be stored): look again soon.
                    wait = 0.05 if storing is not None or buffers else opts.max_wait_s
                    # A pull the client gave up on may still deliver (its expiry is the
                    # server's): asking for half the room leaves room for that too.
                    ask = room if storing is None else max(1, room // 2)
                    try:
                        msgs = await sub.fetch(ask, timeout=wait)
                    except TimeoutError:
                        pass
                    except NatsError as exc:  # the bus is down or a leader moves: wait
                        log.warning("bus: %s", exc)
                        await asyncio.sleep(0.5)
                elif storing is not None:  # hands full: the bus holds the rest
                    await asyncio.wait({storing}, timeout=opts.max_wait_s)
                    continue
                # (hands full and nothing being stored: the largest buffer goes below)
                now = time.monotonic()
                for m in msgs:
                    buffers[m.subject].append(m)
                    since.setdefault(m.subject, now)
                    if m.subject not in urgent and lane.holds(m):
                        urgent.add(m.subject)
                held += len(msgs)
                if storing is None:
                    subject = self._next(buffers, since, urgent, idle=not msgs, full=room <= 0)
                    if subject is not None:
                        batch = buffers.pop(subject)
                        first = since.pop(subject)
                        if subject in urgent:
                            urgent.discard(subject)
                            self.stats.fast_lane += 1
                        if len(batch) > opts.batch_max:  # the rest waits its turn
                            buffers[subject], batch = (
                                batch[opts.batch_max :],
                                batch[: opts.batch_max],
                            )
                            since[subject] = first
                            if any(lane.holds(m) for m in buffers[subject]):
                                urgent.add(subject)
                        held -= len(batch)
                        in_store = batch
                        storing = asyncio.create_task(self._flush(subject, batch))
                if drain and not msgs and not buffers and storing is None:
                    try:
                        if await self._pending(sub) == 0:
                            break
                    except (TimeoutError, NatsError):
                        pass
        finally:
            if storing is not None:
                await storing
            await lane.close()

    async def run(self, *, stop: asyncio.Event | None = None, drain: bool = False) -> Stats:
        """Consume until `stop` is set (or, with `drain`, until nothing is pending).

        Raises
        ------
        bus.BusError
            The bus cannot be reached at start.
        """
        from nats.errors import Error as NatsError

        stop = stop or asyncio.Event()
        nc = await bus.connect(
            self.endpoint.options(
                name="hub-stream", max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                connect_timeout=2, allow_reconnect=True,
            ),
            self.options.connect_wait_s,
        )  # fmt: skip
        try:
            self._js = nc.jetstream()
            self._max_payload = nc.max_payload or self._max_payload
            await bus.ensure_streams(self._js, self.endpoint.replicas)
            sub = await self._js.pull_subscribe_bind(durable=bus.CONSUMER, stream=bus.STREAM)
            await asyncio.to_thread(_rematch_recent, self.engine, self.options.rematch_batches)
            await self._loop(sub, stop, drain, NatsError)
        finally:
            if nc.is_connected:  # the last acknowledgements leave before we do
                with contextlib.suppress(TimeoutError, NatsError):
                    await nc.flush(timeout=5)
            await nc.close()
        return self.stats
