"""The trajectory map: a plate's path across cities with hourly playback, its border
crossings, the cities holding sightings the viewer may not open filled in orange, and
sections no car can drive (a possible cloned plate) broken out as warnings, with a legend."""

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
from ui.text import html_text, plain

PALETTE = [[200, 30, 30, 235], [30, 90, 200, 235], [20, 140, 60, 235], [150, 60, 170, 235]]
SUSPECT_COLOR = [90, 90, 90, 220]


def _suspect_warnings(tr: Trajectory, names: dict[str, str]) -> None:
    """One warning per impossible section: what it would take, not a drawn fact."""
    for x in tr.suspect:
        where = dict(a=plain(x["from_camera"] or ""), b=plain(x["to_camera"] or ""),
                     city_a=names.get(x["from_city"], x["from_city"]),
                     city_b=names.get(x["to_city"], x["to_city"]),
                     at_a=local_time(x["from_ts"], "%H:%M:%S"), at_b=local_time(x["to_ts"], "%H:%M:%S"),
                     km=f"{x['km']:.1f}")  # fmt: skip
        if x["speed_kmh"] is None:
            st.warning(t("traj_suspect_same_time", **where), icon=":material/content_copy:")
        else:
            st.warning(t("traj_suspect", speed=f"{x['speed_kmh']:.0f}", **where),
                       icon=":material/content_copy:")  # fmt: skip


def _suspect_layer(tr: Trajectory, upto, tz: ZoneInfo) -> pdk.Layer:
    rows = [{"path": [[x["from_lon"], x["from_lat"]], [x["to_lon"], x["to_lat"]]],
             "time": f"{local_time(x['from_ts'], '%H:%M')} → {local_time(x['to_ts'], '%H:%M')}",
             "camera": html_text(f"{x['from_camera']} → {x['to_camera']}"), "city": t("traj_suspect_tip"),
             "speed": "" if x["speed_kmh"] is None else f"· {x['speed_kmh']:.0f} km/h"}
            for x in tr.suspect if x["to_ts"].astimezone(tz).replace(tzinfo=None) <= upto]  # fmt: skip
    return pdk.Layer("PathLayer", data=pd.DataFrame(rows, columns=["path", "time", "camera", "city", "speed"]),
                     id="trajectory-suspect", get_path="path", get_color=SUSPECT_COLOR, get_width=2,
                     width_units="'pixels'", width_min_pixels=2, pickable=True)  # fmt: skip


def _legend(colors: dict[str, list[int]], names: dict[str, str], tr: Trajectory) -> None:
    # `traj_legend_city_<i>` draws PALETTE[i]'s colour (red, blue, green, violet).
    st.caption(
        f"**{t('traj_legend')}** "
        + " · ".join(t(f"traj_legend_city_{i % 4}", city=names.get(k, k))
                     for i, k in enumerate(colors))
        + f" · {t('traj_legend_points')} · {t('traj_legend_crossing')}"
        + (f" · {t('traj_legend_hidden')}" if tr.pointers else "")
        + (f" · {t('traj_legend_suspect')}" if tr.suspect else "")
    )  # fmt: skip


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
    _suspect_warnings(tr, names)
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
            # The path breaks at an impossible section: that one is drawn grey, apart.
            runs = shown.groupby(shown.implausible.cumsum()) if len(shown) else []
            paths = [
                gl.path_layer(run, colors, layer_id=f"trajectory-path-{i}")
                for i, (_, run) in enumerate(runs)
            ]
            layers = [*base, *paths, _suspect_layer(tr, moment, tz), gl.crossing_layer(cross[cross["at"] < moment].drop(columns="at")),
                      gl.points_layer(shown[["lon", "lat", "time", "camera", "city", "speed", "color"]]
                                      .assign(camera=shown.camera.map(html_text)))]  # fmt: skip
            with box:
                hubmap.show(hubmap.deck(layers, map_style=hub.settings.map_style, tooltip=tip, view=view), height=560)  # fmt: skip
        _legend(colors, names, tr)

    playback()
