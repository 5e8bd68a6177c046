"""The situation map's rerun: hub query + deck + JSON, beside drawing every incident raw.

What a rerun costs the server is everything between the filters and the bytes handed to
the browser: `Hub.situation` (aggregate + audited features), `ui.situation.build_deck`
and the deck's JSON. The naive map reads every incident of the window and sends each one
as a dot — the same base layers, no aggregation.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import pandas as pd
from sqlalchemy import select

from bench.app_bench import quiet_streamlit
from geo import layers as gl
from hub.bench import BenchContext, Result, log, register
from hub.models import City, Incident, User
from hub.security.identity import principal_of
from hub.service import Hub
from hub.settings import load_settings
from hub.situation import SituationQuery
from hub.store import transaction
from ui import map as hubmap
from ui.hub import settle_heap
from ui.situation import build_deck

SECONDS_GOAL = 0.3
MB_GOAL = 2.0
SCENARIOS = (  # label, cities, window
    ("province 24 h", (), timedelta(hours=24)),
    ("province 7 d", (), timedelta(days=7)),
    ("city 24 h (合肥)", ("340100",), timedelta(hours=24)),
    ("city 7 d (合肥)", ("340100",), timedelta(days=7)),
)
REPEAT = 3


def _rerun(hub, who, query, mode, names) -> tuple[float, int]:
    started = time.perf_counter()
    sit = hub.situation(who, query, now=query.end)
    payload = build_deck(sit, mode, names, upto=None, map_style=None).to_json()
    return time.perf_counter() - started, len(payload.encode())


def _naive(ctx: BenchContext, query: SituationQuery, names) -> tuple[float, int, int]:
    """Every incident of the window as a dot, on the same base layers."""
    started = time.perf_counter()
    i = Incident
    stmt = select(i.id, i.type_code, i.severity, i.ts, i.lon, i.lat).where(
        i.ts >= query.start, i.ts < query.end
    )
    if query.cities:
        stmt = stmt.where(i.city_code.in_(query.cities))
    with ctx.store.connect() as conn:
        frame = pd.DataFrame(
            conn.execute(stmt).all(), columns=["id", "type", "sev", "ts", "lon", "lat"]
        )
    frame["ts"] = frame["ts"].astype(str)
    layers = [gl.city_layer(pickable=False), gl.points_layer(frame, layer_id="raw"),
              gl.label_layer("city", names=names)]  # fmt: skip
    payload = hubmap.deck(layers, map_style=None).to_json()
    return time.perf_counter() - started, len(payload.encode()), len(frame)


@register("situation_map")
def situation_map(ctx: BenchContext) -> list[Result]:
    quiet_streamlit()  # the deck is built outside `streamlit run`
    hub = Hub(ctx.store, load_settings())
    settle_heap()  # as the app does once per process, when it opens its Hub
    with transaction(ctx.store) as session:
        who = principal_of(session.scalar(select(User).where(User.username == "commander.hf")))
        names = dict(session.execute(select(City.adcode, City.name)).all())
    results = []
    for label, cities, span in SCENARIOS:
        start, end = ctx.anchor - span, ctx.anchor
        seconds, sizes = {}, {}
        for mode in ("hexagons", "points"):
            q = SituationQuery(start, end, cities=cities, points=mode == "points")
            _rerun(hub, who, q, mode, names)  # warm the page cache as a second rerun would
            runs = [_rerun(hub, who, q, mode, names) for _ in range(REPEAT)]
            seconds[mode] = statistics.median(r[0] for r in runs)
            sizes[mode] = max(r[1] for r in runs)
        log(f"situation_map: {label}: {seconds} s, {sizes} bytes; naive raw scatter ...")
        naive_s, naive_bytes, n = _naive(ctx, SituationQuery(start, end, cities=cities), names)
        worst = max(seconds, key=seconds.get)
        results += [
            Result(
                job="situation_map", figure=f"server time per rerun, {label}, worst mode ({worst})",
                value=seconds[worst], unit="s", naive=f"raw scatter of {n:,} incidents",
                naive_value=naive_s, goal=SECONDS_GOAL, higher_is_better=False,
                note=", ".join(f"{m} {v:.3f} s" for m, v in seconds.items()),
            ),
            Result(
                job="situation_map", figure=f"map JSON per rerun, {label}, largest mode",
                value=max(sizes.values()) / 1e6, unit="MB", naive=f"raw scatter of {n:,} incidents",
                naive_value=naive_bytes / 1e6, goal=MB_GOAL, higher_is_better=False,
                note=", ".join(f"{m} {v / 1e6:.2f} MB" for m, v in sizes.items()),
            ),
        ]  # fmt: skip
    return results
