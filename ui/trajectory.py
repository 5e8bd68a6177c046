"""The trajectory map: a plate's path across cities with hourly playback, its border
crossings, and the cities holding sightings the viewer may not open filled in orange."""

from __future__ import annotations

import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pydeck as pdk
import streamlit as st

from geo import layers as gl
from hub.trajectory import Trajectory
from ui import map as hubmap
from ui.i18n import t
from ui.tables import LOCAL_TZ, local_time
from ui.text import html_text

PALETTE = [[200, 30, 30, 235], [30, 90, 200, 235], [20, 140, 60, 235], [150, 60, 170, 235]]


def trajectory_map(hub, tr: Trajectory, pts: pd.DataFrame, names: dict[str, str]) -> None:
    """Draw `pts` (the open sightings, as a frame) with playback; adds the display columns
    `time`, `city` and `speed` to `pts` for the table below the map."""
    tz = ZoneInfo(LOCAL_TZ)
    colors = {c: PALETTE[i % 4] for i, c in enumerate(dict.fromkeys(pts.city_code))}
    pts["local"] = pts.ts.map(lambda v: v.astimezone(tz).replace(tzinfo=None))
    pts["time"] = pts.ts.map(lambda v: local_time(v, "%m-%d %H:%M:%S"))
    pts["city"], pts["color"] = pts.city_code.map(names), pts.city_code.map(colors)
    pts["speed"] = pts.speed_kmh.map(lambda v: "" if pd.isna(v) else f"· {v:.0f} km/h")
    fill = {p.city_code: [255, 170, 0, 90] for p in tr.pointers}
    base = [
        gl.city_layer(fill, pickable=False),
        gl.district_layer(),
        gl.label_layer(names=names),
    ]
    cross = pd.DataFrame(
        [{"lon": x["lon"], "lat": x["lat"], "at": x["left_at"].astimezone(tz).replace(tzinfo=None),
          "time": f"{local_time(x['left_at'], '%H:%M')} → {local_time(x['entered_at'], '%H:%M')}",
          "camera": html_text(f"{x['from_camera']} → {x['to_camera']}"), "speed": "",
          "city": f"{names[x['from_city']]} → {names[x['to_city']]}"} for x in tr.crossings],
        columns=["lon", "lat", "at", "time", "camera", "speed", "city"],
    )  # fmt: skip
    span = max(pts.lon.max() - pts.lon.min(), pts.lat.max() - pts.lat.min(), 0.05)
    zoom = float(min(11.0, max(6.0, 9.0 - span * 2.5)))
    view = pdk.ViewState(longitude=pts.lon.mean(), latitude=pts.lat.mean(), zoom=zoom)
    tip = {"html": "<b>{time}</b><br/>{camera}<br/>{city} {speed}"}

    @st.fragment
    def playback() -> None:
        lo, hi = pts.local.min().to_pydatetime(), pts.local.max().to_pydatetime()
        c1, c2 = st.columns([1, 9], vertical_alignment="bottom")
        play = c1.button(t("traj_play"), icon=":material/play_arrow:")
        upto = hi
        if hi > lo:
            upto = c2.slider(t("traj_playback"), lo, hi, hi, timedelta(minutes=1), format="MM-DD HH:mm")  # fmt: skip
        box = st.empty()
        for i, moment in enumerate([lo + (hi - lo) * i / 10 for i in range(11)] if play else [upto]):  # fmt: skip
            time.sleep(0.4 if i else 0)
            shown = pts[pts.local <= moment]
            layers = [*base, gl.path_layer(shown, colors), gl.crossing_layer(cross[cross["at"] < moment].drop(columns="at")),
                      gl.points_layer(shown[["lon", "lat", "time", "camera", "city", "speed", "color"]]
                                      .assign(camera=shown.camera.map(html_text)))]  # fmt: skip
            with box:
                hubmap.show(hubmap.deck(layers, map_style=hub.settings.map_style, tooltip=tip, view=view), height=560)  # fmt: skip

    playback()
