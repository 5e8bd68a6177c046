"""`python -m hub live`: a realistic synthetic flow from all 16 cities over the bus.

Each city publishes under its own bus credentials (the bus refuses anything else), with
the daily rhythm of the demo history (`hub.demo`): plate reads at the cameras the store
knows, incidents and help requests near them, in the same proportions as the seeded
history so that the live flow continues it. On start the gap since the newest stored
record (at most `backfill_hours`) is published first, so "the last 24 h" never shows a
hole on the second day. The pursuit: the watched car (`hub.demo.PURSUIT_PLATE`) drives
from 合肥 into 滁州 along their road's cameras, first `pursuit_after_s` after start and
again every `pursuit_every_s`, so a demo sees a hit cross the city line within minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from geo.boundaries import load_boundaries
from hub import demo
from hub import models as m
from hub.codes import code_tables
from hub.live import bus

_HOURLY = demo._DAY_HOURS / demo._DAY_HOURS.max()  # share of the peak, by local hour
_SIZE = demo.SIZES["demo"]
# Incidents and help requests per plate read, as in the seeded history.
_PER_READ = {"incidents": _SIZE.incidents / _SIZE.sightings,
             "help_requests": _SIZE.help_requests / _SIZE.sightings}  # fmt: skip
_PURSUIT_KMH = 110.0


@dataclass(frozen=True)
class LiveOptions:
    """How much and for how long."""

    rate: float = 0.5  # plate reads per second, province-wide, at the daily peak
    seconds: float | None = None  # None: until stopped
    backfill_hours: float = 24.0
    seed: int | None = None
    pursuit_after_s: float = 60.0
    pursuit_every_s: float = 1200.0
    tick_s: float = 1.0


def _rhythm(ts: pd.DatetimeIndex | datetime) -> np.ndarray | float:
    local_hour = (
        (pd.DatetimeIndex([ts]) if isinstance(ts, datetime) else ts)
        .tz_convert("Asia/Shanghai")
        .hour
    )
    share = _HOURLY[np.asarray(local_hour)]
    return float(share[0]) if isinstance(ts, datetime) else share


def _iso(ts) -> list[str]:
    return [t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" for t in pd.DatetimeIndex(ts)]


class World:
    """What the flow is generated from: the store's cameras per city (read once)."""

    def __init__(self, engine: Engine, rng: np.random.Generator) -> None:
        with engine.connect() as conn:
            rows = conn.execute(
                select(m.Camera.source_id, m.Camera.city_code, m.Camera.lon, m.Camera.lat,
                       m.Camera.road)
            ).all()  # fmt: skip
        if not rows:
            raise bus.BusError("the store has no cameras: seed the demo first (python -m hub demo)")
        self.cameras = pd.DataFrame(rows, columns=["source_id", "city_code", "lon", "lat", "road"])
        self.cities = sorted(self.cameras["city_code"].unique())
        weight = np.array([demo.POPULATION.get(c, 100) for c in self.cities], float)
        self.share = weight / weight.sum()
        self.rng = rng
        self.serial = 0
        tables = code_tables()
        self.incident_types = [c.code for c in tables["incident_type"]]
        self.help_kinds = [c.code for c in tables["help_kind"]]
        self.labels = {c.code: c.zh for c in (*tables["incident_type"], *tables["help_kind"])}

    def _ids(self, prefix: str, n: int) -> list[str]:
        self.serial += n
        stamp = datetime.now(UTC).strftime("%y%m%d%H%M%S")
        return [f"LIVE-{prefix}-{stamp}-{self.serial - n + i}" for i in range(n)]

    def records(self, dataset: str, city: str, times: pd.DatetimeIndex) -> list[dict]:
        """`len(times)` records of `dataset` in `city` at those times, in the standard."""
        n, rng = len(times), self.rng
        cams = self.cameras[self.cameras["city_code"] == city]
        pick = cams.iloc[rng.integers(0, len(cams), n)]
        ts = _iso(times)
        ids = self._ids(f"{city}-{dataset[:3].upper()}", n)
        if dataset == "sightings":
            plates = demo._plates(n, np.array([city] * n), rng)
            return [
                {"source_id": i, "camera": c, "plate": p, "ts": t, "lon": lo, "lat": la,
                 "plate_color": "green" if len(p) == 8 else "blue",
                 "speed_kmh": round(float(s), 1), "classification": "sensitive"}
                for i, c, p, t, lo, la, s in zip(
                    ids, pick["source_id"], plates, ts, pick["lon"], pick["lat"],
                    rng.normal(55, 15, n).clip(5, 130), strict=True)
            ]  # fmt: skip
        lon = pick["lon"].to_numpy() + rng.normal(0, 0.004, n)
        lat = pick["lat"].to_numpy() + rng.normal(0, 0.004, n)
        if dataset == "incidents":
            kinds = rng.choice(self.incident_types, n)
            reported = _iso(times + pd.to_timedelta(rng.integers(60, 600, n), unit="s"))
            return [
                {"source_id": i, "type_code": k, "severity": int(sev), "status": "open", "ts": t,
                 "reported_at": r, "lon": round(lo, 6), "lat": round(la, 6),
                 "summary": f"（合成）{self.labels[k]}警情", "classification": "internal"}
                for i, k, sev, t, r, lo, la in zip(
                    ids, kinds, rng.choice([1, 2, 3, 4], n, p=[0.45, 0.35, 0.15, 0.05]), ts,
                    reported, lon, lat, strict=True)
            ]  # fmt: skip
        kinds = rng.choice(self.help_kinds, n)
        return [
            {"source_id": i, "kind": k, "status": "open", "ts": t, "lon": round(lo, 6),
             "lat": round(la, 6), "summary": f"（合成）群众{self.labels[k]}求助",
             "caller_phone": phone, "classification": "internal"}
            for i, k, t, lo, la, phone in zip(ids, kinds, ts, lon, lat, demo._phones(n, rng),
                                              strict=True)
        ]  # fmt: skip

    def flow(self, start: datetime, end: datetime, rate: float) -> dict[tuple[str, str], list]:
        """Records of every city and dataset with event times in [start, end)."""
        seconds = (end - start).total_seconds()
        if seconds <= 0:
            return {}
        out: dict[tuple[str, str], list] = {}
        # Expected counts follow the hour of day; times are spread within the slice.
        hours = pd.date_range(start, end, freq="h", inclusive="left")
        mean_share = float(np.mean(_rhythm(hours))) if len(hours) else _rhythm(start)
        for dataset, per_read in (("sightings", 1.0), *_PER_READ.items()):
            expected = rate * per_read * mean_share * seconds * self.share
            for city, n in zip(self.cities, self.rng.poisson(expected), strict=True):
                if n:
                    offsets = np.sort(self.rng.uniform(0, seconds, n))
                    times = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(offsets, "s"))
                    out[(city, dataset)] = self.records(dataset, city, times)
        return out

    def pursuit(self, start: datetime) -> list[tuple[datetime, str, dict]]:
        """The watched car's reads from 合肥 into 滁州: (when, city, record)."""
        a, b = sorted([demo.PURSUIT_FROM, demo.PURSUIT_TO])
        names = load_boundaries().cities.set_index("adcode")["name"]
        road = self.cameras[self.cameras["road"] == f"{names[a][:2]}{names[b][:2]}公路"]
        if road.empty:
            return []
        # Position along the road, from 合肥's end towards 滁州's.
        ends = road.groupby(road["city_code"] == demo.PURSUIT_TO)[["lon", "lat"]].mean()
        if len(ends) < 2:
            return []
        scale = np.array([math.cos(math.radians(ends["lat"].mean())), 1.0]) * 111.0
        axis = (ends.loc[True] - ends.loc[False]).to_numpy() * scale
        axis /= np.linalg.norm(axis)
        pos = ((road[["lon", "lat"]] - ends.loc[False]).to_numpy() * scale) @ axis
        road = road.assign(pos=pos).sort_values("pos")
        leaving = road[road["city_code"] == demo.PURSUIT_FROM].tail(2)
        arriving = road[road["city_code"] == demo.PURSUIT_TO].head(2)
        path = pd.concat([leaving, arriving])
        km = path["pos"].to_numpy() - path["pos"].iloc[0]
        out = []
        ids = self._ids("PURSUIT", len(path))
        for sid, (cam, k) in zip(ids, zip(path.itertuples(), km, strict=True), strict=True):
            when = start + timedelta(hours=float(k) / _PURSUIT_KMH)
            out.append((when, cam.city_code, {
                "source_id": sid, "camera": cam.source_id, "plate": demo.PURSUIT_PLATE,
                "plate_color": "blue", "ts": _iso([when])[0], "lon": cam.lon, "lat": cam.lat,
                "speed_kmh": _PURSUIT_KMH, "classification": "sensitive",
            }))  # fmt: skip
        return out


def newest_record(engine: Engine) -> datetime | None:
    """The newest event time among the streamed datasets in the store."""
    with engine.connect() as conn:
        times = [
            conn.scalar(select(func.max(t.ts))) for t in (m.Sighting, m.Incident, m.HelpRequest)
        ]
    times = [t for t in times if t is not None]
    return max(times) if times else None


class _Publishers:
    """One connection per city, under the city's own credentials."""

    def __init__(self, endpoint: bus.Endpoint, creds_for) -> None:
        self.endpoint, self.creds_for = endpoint, creds_for
        self.js: dict[str, object] = {}
        self.conns: list = []
        self.sent: dict[str, int] = {}

    async def open(self, cities: list[str]) -> None:
        for city in cities:
            ep = self.creds_for(city)
            opts = ep.options(inbox_prefix=bus.city_inbox(city).encode(), max_reconnect_attempts=-1)
            nc = await bus.connect(opts)
            self.conns.append(nc)
            self.js[city] = nc.jetstream(publish_async_max_pending=4000)

    async def send(self, city: str, dataset: str, records: list[dict]) -> None:
        js = self.js[city]
        subject = bus.feed_subject(city, dataset)
        for r in records:
            body = json.dumps(r, ensure_ascii=False).encode()
            mid = bus.msg_id(city, dataset, r["source_id"])
            await js.publish_async(subject, body, headers={"Nats-Msg-Id": mid})
        self.sent[dataset] = self.sent.get(dataset, 0) + len(records)

    async def settle(self) -> None:
        for js in self.js.values():
            await js.publish_async_completed()

    async def close(self) -> None:
        await self.settle()
        for nc in self.conns:
            await nc.close()


async def run_live(
    engine: Engine,
    endpoint: bus.Endpoint,
    options: LiveOptions = LiveOptions(),
    *,
    stop: asyncio.Event | None = None,
    creds_for=None,
) -> dict[str, int]:
    """Publish the backfill, then the live flow, until `stop` or `options.seconds`.

    `creds_for(city) -> Endpoint` gives a city's connection (default: the embedded
    server's credentials of that city). Returns messages published per dataset.
    """
    stop = stop or asyncio.Event()
    creds_for = creds_for or (lambda city: bus.city_endpoint(city, endpoint))
    world = World(engine, np.random.default_rng(options.seed))
    pubs = _Publishers(endpoint, creds_for)
    await pubs.open(world.cities)
    started = datetime.now(UTC)
    try:
        newest = newest_record(engine)
        floor = started - timedelta(hours=options.backfill_hours)
        if newest is not None and newest < started:
            for (city, ds), records in world.flow(
                max(newest, floor), started, options.rate
            ).items():
                await pubs.send(city, ds, records)
            await pubs.settle()
        next_pursuit = started + timedelta(seconds=options.pursuit_after_s)
        pending: list[tuple[datetime, str, dict]] = []
        last = started
        while not stop.is_set():
            now = datetime.now(UTC)
            if options.seconds is not None and (now - started).total_seconds() >= options.seconds:
                break
            if now >= next_pursuit:
                pending += world.pursuit(next_pursuit)
                next_pursuit += timedelta(seconds=options.pursuit_every_s)
            due = [p for p in pending if p[0] <= now]
            pending = [p for p in pending if p[0] > now]
            for _, city, record in due:
                await pubs.send(city, "sightings", [record])
            for (city, ds), records in world.flow(last, now, options.rate).items():
                await pubs.send(city, ds, records)
            last = now
            await pubs.settle()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.tick_s)
    finally:
        await pubs.close()
    return dict(pubs.sent)
