"""The hub's stream consumer on a real JetStream server: one path with file feeds, ack
after commit, redelivery changes nothing, poison parked, kill and restart, bus down."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import nats
import pytest
from sqlalchemy import func, select, text

from hub import models as m
from hub.ingest.pipeline import ingest
from hub.live import bus
from hub.live.consumer import Options, StreamConsumer, jsonl, stream_spec
from hub.live.facade import LiveFacade
from hub.security import audit
from hub.security.crypto import FieldCipher
from hub.settings import ROOT, load_settings
from hub.store import transaction
from tests.bus_support import (
    CHUZHOU,
    HEFEI,
    WUHU,
    add_cameras,
    ensure,
    hub_endpoint,
    incident,
    publish_raw,
    running_server,
    sighting,
)

FAST = Options(max_wait_s=0.2, nak_delay_s=0.1, max_tries=3)


@pytest.fixture
def nats_server(tmp_path) -> Iterator[bus.LocalServer]:
    yield from running_server(tmp_path)


def consume(engine, server, options: Options = FAST):
    consumer = StreamConsumer(
        engine, hub_endpoint(server), FieldCipher.from_settings(load_settings()), options=options
    )
    return asyncio.run(asyncio.wait_for(consumer.run(drain=True), 120))


def count(engine, model) -> int:
    with transaction(engine) as s:
        return s.scalar(select(func.count()).select_from(model))


def chain_ok(engine) -> bool:
    with transaction(engine) as s:
        return audit.verify(s).ok


def test_end_to_end_one_path_with_rejects_and_lineage(store, nats_server):
    """Hand-written JSON over the plain client lands through the file path: stored rows,
    rejects with their reasons in the same store, one feed batch per subject slice."""
    cams = add_cameras(store, HEFEI)
    ensure(nats_server)
    good = [("incidents", incident(i), f"{HEFEI}:incidents:INC-{i}") for i in range(50)]
    bad = [
        ("incidents", b"{not json", "bad-1"),
        ("incidents", incident(9001).replace(b'"theft"', b'"teleport"'), "bad-2"),
        ("incidents", b'{"source_id": "X\'; DROP TABLE incidents;--", "type_code": "theft"}',
         "bad-3"),
        ("sightings", sighting(1, cams[0], "皖A12345"), "s1"),
        ("sightings", sighting(2, cams[1], "NOT-A-PLATE"), "s2"),
        ("sightings", b"{\n  \"pretty\": true\n}", "s3"),
        ("sightings", b"", "s4"),
    ]  # fmt: skip
    asyncio.run(publish_raw(nats_server, HEFEI, good + bad))
    stats = consume(store, nats_server)
    assert stats.messages == 57 and stats.parked == 0
    assert count(store, m.Incident) == 50 and count(store, m.Sighting) == 1
    with transaction(store) as s:
        batches = s.scalars(
            select(m.FeedBatch).where(m.FeedBatch.source_name.like("stream:%"))
        ).all()
        assert {b.source_name.split(":")[1] for b in batches} == {
            f"hub.feed.{HEFEI}.incidents", f"hub.feed.{HEFEI}.sightings"}  # fmt: skip
        assert all(b.status == "done" and b.spec_name.startswith("stream_") for b in batches)
        reasons = s.execute(text("SELECT reasons FROM feed_rejects")).scalars().all()
    assert len(reasons) == 6
    joined = " ".join(reasons)
    for code in ("not_json", "not_object", "plate"):
        assert code in joined
    assert chain_ok(store)


def _watch(engine, plate: str) -> None:
    """An active province-wide watch on `plate` (a watcher of Hefei's)."""
    now = datetime.now(UTC)
    with transaction(engine) as s:
        user = m.User(username="watcher.t", display_name="watcher", role="investigator",
                      city_code=HEFEI, password_hash="-")  # fmt: skip
        s.add(user)
        s.flush()
        s.add(m.Watch(plate=plate, owner_id=user.id, owner_city=HEFEI, purpose="pursuit",
                      case_no="A1", case_id=1, scope="province",
                      created_at=now - timedelta(hours=1), expires_at=now + timedelta(days=1)))  # fmt: skip


def test_a_read_of_a_watched_plate_goes_ahead_and_raises_its_hit(store, nats_server):
    """Reads of two busy cities are on the bus before one read of a watched plate in a
    third: that read is stored first (the fast lane), and its hit is raised."""
    ensure(nats_server)
    cams = add_cameras(store, CHUZHOU)
    _watch(store, "皖AW0001")
    for city in (HEFEI, WUHU):
        asyncio.run(publish_raw(nats_server, city, [("incidents", incident(i, city), f"{city}-b{i}")
                                                    for i in range(300)]))  # fmt: skip
    asyncio.run(publish_raw(nats_server, CHUZHOU,
                            [("sightings", sighting(1, cams[0], "皖A W0001", CHUZHOU), "w1")]))  # fmt: skip
    opts = Options(batch_max=100, fetch=1000, max_wait_s=5.0)
    stats = consume(store, nats_server, opts)
    assert stats.messages == 601 and stats.fast_lane == 1
    with transaction(store) as s:
        first = s.scalars(select(m.FeedBatch).where(m.FeedBatch.source_name.like("stream:%"))
                          .order_by(m.FeedBatch.id)).first()  # fmt: skip
        assert first.source_name.startswith(f"stream:hub.feed.{CHUZHOU}.sightings:")
        assert s.scalar(select(func.count()).select_from(m.WatchHit)) == 1


def test_a_batch_stored_but_not_matched_is_matched_at_restart(store, nats_server):
    """A consumer killed between a batch's commit and its matching: the redelivered
    messages change nothing, so the next consumer matches its last batches again."""
    ensure(nats_server)
    cams = add_cameras(store, HEFEI)
    _watch(store, "皖AW0002")
    ingest(store, city_code=HEFEI, spec=stream_spec("sightings"),
           source=io.BytesIO(jsonl([sighting(7, cams[0], "皖AW0002")])),
           source_name=f"stream:hub.feed.{HEFEI}.sightings:1-1",
           cipher=FieldCipher.from_settings(load_settings()))  # fmt: skip
    assert count(store, m.WatchHit) == 0
    consume(store, nats_server)
    consume(store, nats_server)
    assert count(store, m.WatchHit) == 1, "raised once, however often the consumer starts"


def test_hits_commit_with_their_reads_and_a_matcher_fault_loses_no_read(
    store, nats_server, monkeypatch
):
    """The hit is in the reads' own transaction (one commit, nothing between them); a
    matcher that fails costs the hit until the next start, never the reads."""
    from hub import watch

    ensure(nats_server)
    cams = add_cameras(store, HEFEI)
    _watch(store, "皖AW0003")
    real = watch.match_batch
    with monkeypatch.context() as patch:
        patch.setattr(watch, "match_batch", lambda *a, **k: 1 / 0)
        asyncio.run(
            publish_raw(nats_server, HEFEI, [("sightings", sighting(3, cams[0], "皖AW0003"), "f1")])
        )
        stats = consume(store, nats_server)
    assert stats.messages == 1 and count(store, m.Sighting) == 1 and count(store, m.WatchHit) == 0
    seen_from_outside = []  # the batch's reads as another connection sees them at match time

    def spy(target, batch_id, **kw):
        with store.connect() as other:
            seen_from_outside.append(other.scalar(select(func.count()).select_from(m.Sighting)
                                                  .where(m.Sighting.source_batch_id == batch_id)))  # fmt: skip
        return real(target, batch_id, **kw)

    monkeypatch.setattr(watch, "match_batch", spy)
    asyncio.run(
        publish_raw(nats_server, HEFEI, [("sightings", sighting(4, cams[0], "皖AW0003"), "f2")])
    )
    consume(store, nats_server)
    assert count(store, m.WatchHit) == 2  # the new read's hit, and the missed one at start
    assert seen_from_outside[-1] == 0, "the hit was raised before its reads were committed"
    assert chain_ok(store)


def test_redelivery_and_repeats_change_nothing(store, nats_server):
    ensure(nats_server)
    items = [("incidents", incident(i), f"{HEFEI}:incidents:INC-{i}") for i in range(20)]
    acks = asyncio.run(publish_raw(nats_server, HEFEI, items + items))
    assert sum(bool(a.duplicate) for a in acks) == 20  # the bus drops repeated message ids
    consume(store, nats_server)
    # Past the duplicate window a repeat arrives under a new id: the natural key holds.
    asyncio.run(publish_raw(nats_server, HEFEI, [(d, b, "late-" + i) for d, b, i in items]))
    stats = consume(store, nats_server)
    assert stats.messages == 20
    assert count(store, m.Incident) == 20
    with transaction(store) as s:
        last = s.scalars(select(m.FeedBatch).order_by(m.FeedBatch.id.desc())).first()
    assert last.rows_unchanged == 20 and last.rows_inserted == 0


def test_poison_message_is_parked_after_n_tries_and_never_blocks(store, nats_server):
    ensure(nats_server)
    items = [("incidents", incident(i), f"m{i}") for i in range(30)]
    items.insert(13, ("incidents", b'{"source_id": "\xff\xfe bad bytes"}', "poison"))
    asyncio.run(publish_raw(nats_server, HEFEI, items))
    stats = consume(store, nats_server)
    assert count(store, m.Incident) == 30
    assert stats.parked == 1 and stats.retried == FAST.max_tries - 1
    dead = LiveFacade(hub_endpoint(nats_server), store).dead_letters()
    assert len(dead) == 1
    assert dead[0].reason == "bad_encoding" and dead[0].deliveries == FAST.max_tries
    assert dead[0].subject == f"hub.feed.{HEFEI}.incidents" and dead[0].stream_seq == 14
    assert chain_ok(store)


def _stream_cli(url: str, server, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "HUB_BUS_URL": server.url, "HUB_BUS_USER": bus.HUB_USER,
           "HUB_BUS_PASSWORD": server.creds[bus.HUB_USER], "HUB_BUS_REPLICAS": "1"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "stream", "--db", url, "--batch-max", "500", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite"])
def test_kill_consumer_mid_stream_then_restart(store, empty_url, nats_server):
    """SIGKILL the consumer while it writes; a new one catches up: nothing lost, nothing
    doubled, the audit chain intact."""
    ensure(nats_server)
    n = 5000
    items = [("incidents", incident(i), f"k{i}") for i in range(n)]
    asyncio.run(publish_raw(nats_server, HEFEI, items))
    proc = _stream_cli(empty_url, nats_server)
    deadline = time.monotonic() + 60
    while count(store, m.Incident) < 1000 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = count(store, m.Incident)
    assert 0 < stored < n, "killed before or after the whole stream: not mid-stream"
    again = _stream_cli(empty_url, nats_server, "--drain")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()
    assert count(store, m.Incident) == n
    with transaction(store) as s:
        assert s.scalar(select(func.count(func.distinct(m.Incident.source_id)))) == n
    assert chain_ok(store)


def test_bus_down_messages_wait_and_are_caught_up(store, nats_server):
    """The bus stops: stored records still serve and the facade says the feed is down;
    it comes back with what publishers sent before, and the consumer catches up."""
    ensure(nats_server)
    asyncio.run(publish_raw(nats_server, WUHU, [("incidents", incident(i, WUHU), f"w{i}")
                                                for i in range(40)]))  # fmt: skip
    consume(store, nats_server)
    asyncio.run(publish_raw(nats_server, WUHU, [("incidents", incident(i, WUHU), f"w{i}")
                                                for i in range(40, 100)]))  # fmt: skip
    nats_server.stop()
    facade = LiveFacade(hub_endpoint(nats_server), store)
    status = facade.bus_status()
    assert not status.up and status.error
    assert count(store, m.Incident) == 40  # the store serves without the bus
    fresh = {(f.city_code, f.dataset): f for f in facade.freshness()}
    assert fresh[(WUHU, "incidents")].last_batch_at is not None
    nats_server.start()
    assert facade.bus_status().up
    consume(store, nats_server)
    assert count(store, m.Incident) == 100


def test_consumer_rides_out_a_bus_restart(store, nats_server):
    ensure(nats_server)
    engine = store
    consumer = StreamConsumer(engine, hub_endpoint(nats_server),
                              FieldCipher.from_settings(load_settings()), options=FAST)  # fmt: skip
    stop = asyncio.Event()

    async def scenario():
        task = asyncio.create_task(consumer.run(stop=stop))
        await publish_raw(
            nats_server, HEFEI, [("incidents", incident(i), f"r{i}") for i in range(30)]
        )
        await _until(lambda: count(engine, m.Incident) == 30)
        await asyncio.to_thread(nats_server.stop)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(nats_server.start)
        await publish_raw(
            nats_server, HEFEI, [("incidents", incident(i), f"r{i}") for i in range(30, 60)]
        )
        await _until(lambda: count(engine, m.Incident) == 60)
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(asyncio.wait_for(scenario(), 90))
    assert count(engine, m.Incident) == 60


async def _until(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(cond):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_locked_store_is_back_pressure_not_memory(store, nats_server, monkeypatch):
    """While another writer holds the store, the consumer holds at most two fetches and
    the rest waits in the bus; once released, everything is stored once. The lock lasts
    well past the bus's ack wait: what the consumer holds is kept in progress, so the bus
    delivers nothing twice (a redelivery would also count against a message's tries)."""
    monkeypatch.setattr(bus, "ACK_WAIT_S", 1)
    monkeypatch.setattr(bus, "PROGRESS_S", 0.3)
    ensure(nats_server)
    n = 6000
    asyncio.run(publish_raw(nats_server, HEFEI, [("incidents", incident(i), f"l{i}")
                                                 for i in range(n)]))  # fmt: skip
    opts = Options(batch_max=500, fetch=500, max_wait_s=0.2, retry_max_s=0.5)
    consumer = StreamConsumer(store, hub_endpoint(nats_server),
                              FieldCipher.from_settings(load_settings()), options=opts)  # fmt: skip
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.connect() as conn:
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
            held.set()
            release.wait(30)
            conn.exec_driver_sql("COMMIT")

    async def scenario():
        locker = threading.Thread(target=hold)
        locker.start()
        held.wait(10)
        task = asyncio.create_task(consumer.run(drain=True))
        await asyncio.sleep(4.0)  # four ack waits
        info = await _consumer_info(nats_server)
        release.set()
        await asyncio.to_thread(locker.join)
        await asyncio.wait_for(task, 120)
        return info

    info = asyncio.run(scenario())
    # In the consumer's hands: the batch being stored and the one fetched behind it.
    assert info.num_ack_pending <= 2 * opts.fetch
    assert info.num_pending >= n - 2 * opts.fetch  # the rest waits in the bus
    assert count(store, m.Incident) == n
    assert consumer.stats.messages == n, "a message the consumer held was delivered again"
    assert consumer.stats.parked == 0


async def _consumer_info(server):
    nc = await nats.connect(servers=[server.url], user="hub", password=server.creds["hub"])
    info = await nc.jetstream().consumer_info(bus.STREAM, bus.CONSUMER)
    await nc.close()
    return info


def test_hostile_bodies_are_rejected_with_a_reason_and_never_stop_the_stream(store, nats_server):
    """With a watch active (the fast lane reads every body): JSON nested past the parser's
    depth, and bodies the reader would skip as blank lines (a byte-order mark, Unicode
    blanks) in one micro-batch with good reads. Every message is a stored read or a
    reject with its reason; none stops the consumer or vanishes."""
    ensure(nats_server)
    cams = add_cameras(store, HEFEI)
    _watch(store, "皖AW0009")
    hostile = [b"[" * 1000 + b"]" * 1000, b"\xef\xbb\xbf", "\u00a0".encode(),
               "\u2028".encode(), "\u3000".encode(), b"\x1c", b" \t "]  # fmt: skip
    items = [("sightings", sighting(i, cams[0], f"皖A1{i:04d}"), f"ok{i}") for i in range(10)]
    for k, body in enumerate(hostile):
        items.insert(2 * k + 1, ("sightings", body, f"hostile{k}"))
    items.append(("sightings", sighting(99, cams[1], "皖AW0009"), "watched"))
    asyncio.run(publish_raw(nats_server, HEFEI, items))
    stats = consume(store, nats_server, Options(max_wait_s=5.0, nak_delay_s=0.1, max_tries=3))
    assert stats.messages == len(items) and stats.parked == 0
    assert count(store, m.Sighting) == 11 and count(store, m.WatchHit) == 1
    assert count(store, m.FeedReject) == len(hostile)
    with transaction(store) as s:
        read = s.scalar(select(func.sum(m.FeedBatch.rows_read))
                        .where(m.FeedBatch.source_name.like("stream:%")))  # fmt: skip
    assert read == len(items), "a message the reader skipped would be acknowledged unseen"


def test_a_record_sent_twice_in_one_micro_batch_is_an_insert_then_an_update(store, nats_server):
    """Messages are ordered: the second state of a record overwrites the first, with both
    versions in its history, as when they arrive in two micro-batches."""
    ensure(nats_server)
    first = incident(1)
    second = first.replace(b'"status": "open"', b'"status": "closed"')
    asyncio.run(publish_raw(nats_server, HEFEI, [("incidents", first, "u1"),
                                                 ("incidents", incident(2), "u2"),
                                                 ("incidents", second, "u3")]))  # fmt: skip
    stats = consume(store, nats_server, Options(max_wait_s=5.0))
    assert stats.messages == 3 and count(store, m.FeedReject) == 0
    with transaction(store) as s:
        status = s.scalar(select(m.Incident.status).where(m.Incident.source_id == "INC-1"))
        ops = s.execute(text("SELECT op FROM record_versions WHERE source_id = 'INC-1' "
                             "ORDER BY id")).scalars().all()  # fmt: skip
    assert status == "closed" and ops == ["insert", "update"]


def test_a_message_too_big_to_park_beside_its_reason_is_parked_cut_short(store, nats_server):
    """A body at the bus's size limit cannot be republished with the reason's headers: it
    is parked with its reason and its first bytes (the whole stays in HUB_FEEDS under its
    sequence), and the stream goes on."""
    ensure(nats_server)
    body = b'{"source_id": "BIG", "summary": "' + b"x" * 65_300 + b'\xff"}'
    items = [("incidents", incident(i), f"b{i}") for i in range(5)]
    items.insert(2, ("incidents", body, "big"))
    asyncio.run(publish_raw(nats_server, HEFEI, items))
    stats = consume(store, nats_server)
    assert stats.parked == 1 and count(store, m.Incident) == 5
    (dead,) = LiveFacade(hub_endpoint(nats_server), store).dead_letters()
    assert dead.reason == "bad_encoding" and dead.size == len(body) and dead.stream_seq == 3


def test_clock_words_and_infinite_numbers_are_no_values(store):
    """pandas reads "now" and "today" as the clock's time and Arrow reads "Infinity" as a
    number: a record's time and quantities are neither."""
    cams = add_cameras(store, HEFEI)
    good = sighting(1, cams[0], "皖A10001")
    bodies = [good,
              good.replace(b'"S-1"', b'"S-2"').replace(b'"ts": "', b'"ts": "now", "x": "'),
              good.replace(b'"S-1"', b'"S-3"').replace(b'"ts": "', b'"ts": "today", "x": "'),
              good.replace(b'"S-1"', b'"S-4"').replace(b"52.5", b"Infinity"),
              good.replace(b'"S-1"', b'"S-5"').replace(b"52.5", b"1e400")]  # fmt: skip
    # A file's spec (a zone for times without one): over the bus "now" has no zone at all.
    spec = dataclasses.replace(stream_spec("sightings"), timezone="Asia/Shanghai")
    report = ingest(store, city_code=HEFEI, spec=spec,
                    source=io.BytesIO(jsonl(bodies)), source_name="clock-words",
                    cipher=FieldCipher.from_settings(load_settings()))  # fmt: skip
    assert report.rows_inserted == 1 and report.rows_rejected == 4
    assert report.reasons == {"bad_datetime": 2, "not_number": 2}


def test_one_impossible_value_is_a_reject_not_a_failed_batch(store):
    """A whole number no column holds and a point off the earth are rows refused with
    their reason; the rest of the batch (a file of a million rows, as a micro-batch) is
    stored. Both used to fail the whole batch (a cast, an H3 cell)."""
    bodies = [incident(i) for i in range(4)]
    bodies[1] = bodies[1].replace(b'"severity": 2', b'"severity": 1e20')
    bodies[2] = bodies[2].replace(b'"lon": ', b'"lon": 1e308, "x": ')
    bodies[3] = bodies[3].replace(b'"lat": ', b'"lat": -1e308, "x": ')
    report = ingest(store, city_code=HEFEI, spec=stream_spec("incidents"),
                    source=io.BytesIO(jsonl(bodies)), source_name="impossible",
                    cipher=FieldCipher.from_settings(load_settings()))  # fmt: skip
    assert report.status == "done" and report.rows_inserted == 1 and report.rows_rejected == 3
    assert report.reasons == {"unknown_code": 1, "outside_province": 2}


def test_the_bus_contract_refuses_times_without_a_zone(store):
    """A time with no zone would be read in some zone the vendor never meant (local time
    taken as UTC is eight hours off): over the bus every time carries its zone."""
    cams = add_cameras(store, HEFEI)
    good = sighting(1, cams[0], "皖A10001")
    stamp = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S")
    bodies = [good.replace(b"+00:00", b"Z").replace(b'"S-1"', b'"S-0"'), good,
              good.replace(b"+00:00", b"+0000").replace(b'"S-1"', b'"S-4"')]  # fmt: skip
    for i, naive in enumerate((stamp, stamp[:10], stamp.replace("T", " ")), start=5):
        bodies.append(good.replace(b'"S-1"', f'"S-{i}"'.encode())
                      .replace(b'"ts": "', f'"ts": "{naive}", "x": "'.encode()))  # fmt: skip
    report = ingest(store, city_code=HEFEI, spec=stream_spec("sightings"),
                    source=io.BytesIO(jsonl(bodies)), source_name="zones",
                    cipher=FieldCipher.from_settings(load_settings()))  # fmt: skip
    assert report.rows_inserted == 3 and report.reasons == {"no_zone": 3}


def test_an_object_or_a_list_where_one_value_belongs_is_a_reject(store):
    """JSON lets a field hold an object or a list; stored, it would read as Python's text
    of it (a key {'$gt': ''}). It is refused with the field that held it."""
    bodies = [incident(1),
              incident(2).replace(b'"INC-2"', b'{"$gt": ""}'),
              incident(3).replace(b'"test 3"', b'["a", "b"]')]  # fmt: skip
    report = ingest(store, city_code=HEFEI, spec=stream_spec("incidents"),
                    source=io.BytesIO(jsonl(bodies)), source_name="nested",
                    cipher=FieldCipher.from_settings(load_settings()))  # fmt: skip
    assert report.rows_inserted == 1 and report.reasons == {"not_scalar": 2}
    with transaction(store) as s:
        assert s.scalars(select(m.Incident.source_id)).all() == ["INC-1"]
