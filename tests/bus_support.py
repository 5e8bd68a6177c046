"""Bus test support: nats-server processes of the test's own on free loopback ports (never
4222: the machine's own NATS is not ours), plain nats-py publishing of hand-written JSON,
and a few cameras so sightings have somewhere to be read."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from sqlalchemy import Engine

from hub.ingest.pipeline import ingest
from hub.ingest.spec import parse_spec
from hub.live import bus
from hub.security.crypto import FieldCipher
from hub.settings import load_settings

HEFEI, CHUZHOU, WUHU = "340100", "341100", "340200"
# Points well inside each city (WGS84).
CENTRE = {HEFEI: (117.227, 31.820), CHUZHOU: (118.317, 32.302), WUHU: (118.433, 31.352)}


def running_server(tmp_path: Path) -> Iterator[bus.LocalServer]:
    """One JetStream server of this test, killed whatever happens (a fixture's body)."""
    server = bus.LocalServer(
        bus.ServerSpec("t0", bus.free_port(), tmp_path / "js"),
        bus.load_credentials(tmp_path / "nats"),
        tmp_path / "nats",
    )
    server.start()
    try:
        yield server
    finally:
        server.kill()


def hub_endpoint(server: bus.LocalServer, replicas: int = 1) -> bus.Endpoint:
    return bus.Endpoint((server.url,), bus.HUB_USER, server.creds[bus.HUB_USER], replicas)


async def connect_city(servers, creds: dict[str, str], adcode: str, **kw):
    """A city's connection with the plain client: its user, its inbox prefix."""
    urls = [servers] if isinstance(servers, str) else list(servers)
    return await nats.connect(
        servers=urls, user=f"city-{adcode}", password=creds[f"city-{adcode}"],
        inbox_prefix=f"_INBOX_{adcode}".encode(), **kw,
    )  # fmt: skip


async def publish_raw(server: bus.LocalServer, adcode: str, items: list[tuple[str, bytes, str]]):
    """Publish (dataset, body, message id) as `adcode`, waiting for each store ack."""
    nc = await connect_city(server.url, server.creds, adcode)
    js = nc.jetstream()
    acks = []
    for dataset, body, mid in items:
        acks.append(
            await js.publish(f"hub.feed.{adcode}.{dataset}", body, headers={"Nats-Msg-Id": mid})
        )
    await nc.close()
    return acks


def ensure(server: bus.LocalServer, replicas: int = 1) -> None:
    async def go():
        nc = await nats.connect(servers=[server.url], user="hub", password=server.creds["hub"])
        await bus.ensure_streams(nc.jetstream(), replicas)
        await nc.close()

    asyncio.run(go())


def incident(i: int, adcode: str = HEFEI, *, ts: datetime | None = None) -> bytes:
    """A hand-written JSON incident, as a vendor's system would send it."""
    lon, lat = CENTRE[adcode]
    ts = ts or datetime.now(UTC) - timedelta(minutes=5)
    stamp = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'{{"source_id": "INC-{i}", "type_code": "theft", "severity": 2, "status": "open", '
        f'"ts": "{stamp}", "lon": {lon + (i % 100) * 1e-4:.6f}, "lat": {lat:.6f}, '
        f'"summary": "test {i}"}}'
    ).encode()


def sighting(i: int, camera: str, plate: str, adcode: str = HEFEI) -> bytes:
    lon, lat = CENTRE[adcode]
    ts = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return json.dumps(
        {"source_id": f"S-{i}", "camera": camera, "plate": plate, "plate_color": "blue",
         "ts": ts, "lon": lon, "lat": lat, "speed_kmh": 52.5},
        ensure_ascii=False,
    ).encode()  # fmt: skip


def add_cameras(engine: Engine, adcode: str, n: int = 3) -> list[str]:
    """Cameras CAM-<adcode>-<i> at the city's centre, through the file path."""
    spec = parse_spec(
        'name = "t_cameras"\ndataset = "cameras"\nformat = "jsonl"\ncrs = "wgs84"\ntimezone = "UTC"\nkey = ["source_id"]\n'
        '[columns]\nname = "name"\nkind = "kind"\nlon = "lon"\nlat = "lat"\n'
    )
    lon, lat = CENTRE[adcode]
    ids = [f"CAM-{adcode}-{i}" for i in range(n)]
    body = "\n".join(
        json.dumps({"source_id": c, "name": c, "kind": "checkpoint", "lon": lon, "lat": lat})
        for c in ids
    )
    ingest(
        engine, city_code=adcode, spec=spec, source=io.BytesIO(body.encode() + b"\n"),
        source_name="cameras.jsonl", cipher=FieldCipher.from_settings(load_settings()),
    )  # fmt: skip
    return ids
