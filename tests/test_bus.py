"""The bus itself: a city publishes only under its own subjects (the server refuses the
rest), and a three-node JetStream cluster with three replicas loses a node mid-stream
without losing or doubling a record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import TimeoutError as NatsTimeout
from sqlalchemy import func, select

from hub import models as m
from hub.live import bus
from hub.live.consumer import Options, StreamConsumer
from hub.security.crypto import FieldCipher
from hub.settings import load_settings
from hub.standard import standard
from hub.store import transaction
from tests.bus_support import (
    HEFEI,
    WUHU,
    connect_city,
    ensure,
    incident,
    running_server,
)


@pytest.fixture
def nats_server(tmp_path) -> Iterator[bus.LocalServer]:
    yield from running_server(tmp_path)


def test_a_city_cannot_publish_as_another(nats_server):
    """Plain nats-py, hand-written JSON: 合肥's credentials publish under 合肥 and are
    refused under 芜湖, whose stream then holds nothing."""
    ensure(nats_server)
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    async def go():
        nc = await connect_city(nats_server.url, nats_server.creds, HEFEI, error_cb=on_error)
        js = nc.jetstream()
        ack = await js.publish(f"hub.feed.{HEFEI}.incidents", b'{"source_id": "own"}',
                               headers={"Nats-Msg-Id": "own"})  # fmt: skip
        with pytest.raises(NatsTimeout):  # the server drops it: no store ack ever comes
            await js.publish(f"hub.feed.{WUHU}.incidents", b'{"source_id": "forged"}',
                             headers={"Nats-Msg-Id": "forged"}, timeout=1)  # fmt: skip
        await nc.publish(f"hub.feed.{WUHU}.sightings", b"{}")  # core publish: refused too
        await nc.flush()
        await asyncio.sleep(0.3)
        await nc.close()
        hub = await nats.connect(servers=[nats_server.url], user="hub",
                                 password=nats_server.creds["hub"])  # fmt: skip
        state = (await hub.jetstream().stream_info(bus.STREAM)).state
        wuhu = await hub.jetstream().stream_info(bus.STREAM, subjects_filter=f"hub.feed.{WUHU}.>")
        await hub.close()
        return ack, state, wuhu

    ack, state, wuhu = asyncio.run(go())
    assert ack.seq == 1 and state.messages == 1
    assert not wuhu.state.subjects
    violations = [str(e) for e in errors if "permissions violation" in str(e).lower()]
    assert len(violations) == 2 and all(WUHU in v for v in violations)


def test_wrong_password_and_the_hub_cannot_forge_a_feed(nats_server):
    ensure(nats_server)

    async def go():
        with pytest.raises(Exception, match="[Aa]uthorization"):
            await nats.connect(servers=[nats_server.url], user=f"city-{HEFEI}", password="guess",
                               allow_reconnect=False, max_reconnect_attempts=0)  # fmt: skip
        hub = await nats.connect(servers=[nats_server.url], user="hub",
                                 password=nats_server.creds["hub"])  # fmt: skip
        with pytest.raises(NatsTimeout):
            await hub.jetstream().publish(f"hub.feed.{HEFEI}.incidents", b"{}", timeout=1)
        await hub.close()

    asyncio.run(go())


def test_the_message_contract_is_in_the_published_standard():
    contract = standard()["message_bus"]
    assert contract["subject"] == "hub.feed.<adcode>.<dataset>"
    assert contract["deduplication_header"] == "Nats-Msg-Id"
    assert set(contract["datasets"]) == set(bus.STREAM_DATASETS)
    for ds, entry in contract["datasets"].items():
        assert entry["schema"] == f"#/entities/{ds}"
    assert contract["credentials"]["user"] == "city-<adcode>"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["sqlite"])
def test_three_node_cluster_loses_a_node_mid_stream(store, tmp_path: Path):
    """R3 streams on three routed servers; one is killed while a city publishes and the
    hub consumes: every record stored exactly once."""
    servers = bus.local_cluster(tmp_path / "cluster")
    try:
        for s in servers:
            s.start()
        urls = tuple(s.url for s in servers)
        creds = servers[0].creds
        endpoint = bus.Endpoint(urls, bus.HUB_USER, creds[bus.HUB_USER], replicas=3)
        n = 3000
        consumer = StreamConsumer(store, endpoint, FieldCipher.from_settings(load_settings()),
                                  options=Options(batch_max=250, fetch=250, max_wait_s=0.2))  # fmt: skip

        async def ready() -> None:
            deadline = time.monotonic() + 30
            while True:  # the cluster elects its meta leader first
                try:
                    nc = await nats.connect(servers=list(urls), user="hub",
                                            password=creds["hub"])  # fmt: skip
                    await bus.ensure_streams(nc.jetstream(timeout=5), replicas=3)
                    await nc.close()
                    return
                except Exception:
                    assert time.monotonic() < deadline, "the cluster never formed"
                    await asyncio.sleep(0.5)

        async def publish() -> None:
            nc = await connect_city(urls, creds, HEFEI, max_reconnect_attempts=-1,
                                    reconnect_time_wait=0.2)  # fmt: skip
            js = nc.jetstream(timeout=2)
            for i in range(n):
                if i == n // 3:
                    servers[1].kill()  # mid-stream, without warning
                while True:  # a publisher retries with the same id until the bus acks
                    try:
                        await js.publish(f"hub.feed.{HEFEI}.incidents", incident(i),
                                         headers={"Nats-Msg-Id": f"c{i}"})  # fmt: skip
                        break
                    except Exception:
                        await asyncio.sleep(0.2)
            await nc.close()

        async def scenario():
            await ready()
            stop = asyncio.Event()
            task = asyncio.create_task(consumer.run(stop=stop))
            await publish()
            deadline = time.monotonic() + 60
            while await asyncio.to_thread(_count, store) < n:
                assert time.monotonic() < deadline, "the consumer did not catch up"
                await asyncio.sleep(0.2)
            stop.set()
            await asyncio.wait_for(task, 30)

        asyncio.run(asyncio.wait_for(scenario(), 110))
        with transaction(store) as s:
            assert s.scalar(select(func.count()).select_from(m.Incident)) == n
            assert s.scalar(select(func.count(func.distinct(m.Incident.source_id)))) == n
    finally:
        for s in servers:
            s.kill()


def _count(engine) -> int:
    with transaction(engine) as s:
        return s.scalar(select(func.count()).select_from(m.Incident))


def _credentials_in(directory: str) -> dict:
    from pathlib import Path

    from hub.live.bus import load_credentials

    return load_credentials(Path(directory))


def test_processes_starting_together_share_one_set_of_credentials(tmp_path) -> None:
    """./run starts the bus, the consumer and the publisher at once: whichever makes the
    credentials file first, all of them must end up with the same one (it used to crash
    the bus with FileExistsError and leave the others unable to sign in)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(4) as pool:
        got = list(pool.map(_credentials_in, [str(tmp_path)] * 8))
    assert all(g == got[0] for g in got) and len(got[0]) == 17  # the hub and 16 cities
    assert not [p for p in tmp_path.iterdir() if p.name != "credentials.json"]
