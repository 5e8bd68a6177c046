"""Joint response and alerts on the province store, each beside the naive way.

- ``response_board``: one refresh of the board (hub read + audit + deck JSON) for an
  operation on the 合肥/滁州 line; naive: read every unit of the participating cities and
  rank them by haversine distance in Python, drawn the same way.
- ``nearest_units``: nearest 5 units (with ETA) for each of the last day's incidents,
  batched (`geo.nearest.UnitIndex.nearest_many`); naive: haversine to every unit and a
  full sort, one incident at a time.
- ``alert_scan``: the whole province's hotspot scan (cells and risk zones, last 24 h vs
  28 days); naive: read every incident of the 29 days and bin it into H3 cells in Python.

The writes (an operation, alerts) happen in transactions that are rolled back, so the
shared benchmark store is left as it was.
"""

from __future__ import annotations

import logging
import statistics
import time
from datetime import timedelta

import h3
import numpy as np
import pandas as pd
from sqlalchemy import select

from geo import layers as gl
from geo.distance import haversine_m
from geo.nearest import UnitIndex, unit_speeds_kmh
from hub import alerts, response
from hub.bench import BenchContext, Result, log, register
from hub.models import City, Incident, Unit, User
from hub.security.identity import principal_of
from hub.store import session_factory
from ui import map as hubmap
from ui import response as ui_resp

BOARD_GOAL_S = 0.3
NEAREST_GOAL_MS = 0.1
SCAN_GOAL_S = 5.0
REPEAT = 5
BORDER = (117.85, 32.10)


def _quiet() -> None:
    # Decks are built outside `streamlit run`: silence its "no script run context" notes.
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("streamlit")]:
        logging.getLogger(name).setLevel(logging.ERROR)


def _who(session, username: str):
    return principal_of(session.scalar(select(User).where(User.username == username)))


@register("response_board")
def response_board(ctx: BenchContext) -> list[Result]:
    _quiet()
    session = session_factory(ctx.store)()
    try:
        session.begin()
        hf = _who(session, "commander.hf")
        session.info.update(principal=hf, grants=())
        names = dict(session.execute(select(City.adcode, City.name)).all())
        now = ctx.anchor
        op = response.create_operation(session, hf, name="bench", kind="planned_event",
                                       lon=BORDER[0], lat=BORDER[1], radius_m=5000,
                                       invite=["341100"], now=now)  # fmt: skip
        cz = _who(session, "commander.cz")
        response.respond_invitation(session, cz, op, accept=True, now=now)

        def refresh(i: int) -> float:
            started = time.perf_counter()
            b = response.board(session, hf, op, now=now + timedelta(minutes=10 * i))
            ui_resp.board_deck(b, names, None).to_json()
            return time.perf_counter() - started

        refresh(0)
        seconds = statistics.median(refresh(i) for i in range(1, REPEAT + 1))
        started = time.perf_counter()
        rows = session.execute(
            select(Unit.id, Unit.callsign, Unit.kind, Unit.status, Unit.lon, Unit.lat)
            .where(Unit.city_code.in_(["340100", "341100"]))
        ).all()  # fmt: skip
        ranked = sorted(rows, key=lambda u: float(haversine_m(BORDER[0], BORDER[1], u.lon, u.lat)))
        frame = pd.DataFrame(ranked, columns=["id", "callsign", "kind", "status", "lon", "lat"])
        hubmap.deck([gl.city_layer(pickable=False), gl.district_layer(),
                     gl.scatter_layer(frame, layer_id="u"), gl.label_layer("city", names=names)],
                    map_style=None).to_json()  # fmt: skip
        naive = time.perf_counter() - started
        n_units = len(frame)
    finally:
        session.rollback()
        session.close()
    log(f"response_board: {seconds:.3f} s per refresh; naive {naive:.3f} s over {n_units} units")
    return [Result(job="response_board", figure="board refresh, server time (hub + deck JSON)",
                   value=seconds, unit="s", naive=f"rank all {n_units:,} units in Python",
                   naive_value=naive, goal=BOARD_GOAL_S, higher_is_better=False)]  # fmt: skip


@register("nearest_units")
def nearest_units(ctx: BenchContext) -> list[Result]:
    with ctx.store.connect() as conn:
        units = pd.DataFrame(conn.execute(
            select(Unit.id, Unit.lon, Unit.lat, Unit.kind)
            .where(Unit.kind.in_([k for k, v in unit_speeds_kmh().items() if v > 0]))
        ).all(), columns=["id", "lon", "lat", "kind"])  # fmt: skip
        incidents = pd.DataFrame(conn.execute(
            select(Incident.lon, Incident.lat)
            .where(Incident.ts >= ctx.anchor - timedelta(days=1), Incident.ts < ctx.anchor)
        ).all(), columns=["lon", "lat"])  # fmt: skip
    index = UnitIndex(units.id.to_numpy(), units.lon, units.lat, units.kind)
    index.nearest_many(incidents.lon[:100], incidents.lat[:100], k=5)  # warm
    started = time.perf_counter()
    found = index.nearest_many(incidents.lon, incidents.lat, k=5)
    per_ms = (time.perf_counter() - started) / len(incidents) * 1e3
    sample = incidents.head(500)
    ulon, ulat = units.lon.to_numpy(), units.lat.to_numpy()
    started = time.perf_counter()
    for q in sample.itertuples():
        d = haversine_m(q.lon, q.lat, ulon, ulat)
        np.argsort(d)[:5]
    naive_ms = (time.perf_counter() - started) / len(sample) * 1e3
    log(f"nearest_units: {per_ms * 1e3:.1f} µs per incident over {len(units):,} units "
        f"({len(found):,} rows); naive {naive_ms * 1e3:.1f} µs")  # fmt: skip
    return [Result(job="nearest_units",
                   figure=f"nearest 5 units + ETA per incident ({len(incidents):,} incidents, "
                          f"{len(units):,} units, batched)",
                   value=per_ms, unit="ms", naive="haversine + full sort per incident",
                   naive_value=naive_ms, goal=NEAREST_GOAL_MS, higher_is_better=False)]  # fmt: skip


@register("alert_scan")
def alert_scan(ctx: BenchContext) -> list[Result]:
    session = session_factory(ctx.store)()
    try:
        session.begin()
        started = time.perf_counter()
        result = alerts.scan(session, now=ctx.anchor)
        seconds = time.perf_counter() - started
    finally:
        session.rollback()
        session.close()
    started = time.perf_counter()
    since = ctx.anchor - timedelta(days=29)
    with ctx.store.connect() as conn:
        rows = conn.execute(
            select(Incident.ts, Incident.lon, Incident.lat)
            .where(Incident.ts >= since, Incident.ts < ctx.anchor)
        ).all()  # fmt: skip
    frame = pd.DataFrame(rows, columns=["ts", "lon", "lat"])
    frame["cell"] = [h3.latlng_to_cell(la, lo, 7) for lo, la in zip(frame.lon, frame.lat,
                                                                    strict=True)]  # fmt: skip
    frame.groupby(["cell", pd.to_datetime(frame.ts).dt.date]).size()
    naive = time.perf_counter() - started
    log(f"alert_scan: {seconds:.2f} s ({result.areas_tested:,} areas, {result.flagged} flagged, "
        f"query {result.seconds_query:.2f} s); naive {naive:.2f} s over {len(frame):,} rows")  # fmt: skip
    return [Result(job="alert_scan", figure="hotspot scan of the province (cells + zones)",
                   value=seconds, unit="s",
                   naive=f"bin {len(frame):,} incidents into H3 in Python", naive_value=naive,
                   goal=SCAN_GOAL_S, higher_is_better=False,
                   note=f"{result.areas_tested:,} areas, {result.flagged} flagged, "
                        f"{len(result.created)} alerts")]  # fmt: skip
