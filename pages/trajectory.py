"""Trajectory: one plate's sightings across cities as a path with time playback; sightings
the viewer may not open stay pointers to the owning city, with request and break-glass."""

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pydeck as pdk
import streamlit as st

from geo import layers as gl
from hub.security.errors import HubError
from ui import map as hubmap
from ui.auth import guard
from ui.errors import show_error
from ui.frame import city_names, hub_or_stop
from ui.i18n import t
from ui.reason import reason_form
from ui.tables import LOCAL_TZ, local_time

PALETTE = [[200, 30, 30, 235], [30, 90, 200, 235], [20, 140, 60, 235], [150, 60, 170, 235]]
principal = guard("trajectory")
hub = hub_or_stop()
names = city_names()
tz = ZoneInfo(LOCAL_TZ)
st.title(t("traj_heading"))
reason = reason_form()
now = datetime.now(tz).replace(second=0, microsecond=0)
for k, v in {"0": now - timedelta(hours=24), "1": now + timedelta(minutes=1)}.items():
    st.session_state.setdefault(f"traj_d{k}", v.date())
    st.session_state.setdefault(f"traj_t{k}", v.time())
with st.form("trajectory"):
    c = st.columns([2, 1, 1, 1, 1], vertical_alignment="bottom")
    plate = c[0].text_input(t("field_plate"), max_chars=64, key="traj_plate")
    d0, t0 = c[1].date_input(t("traj_from"), key="traj_d0"), c[2].time_input(t("traj_from_time"), key="traj_t0", step=60)  # fmt: skip
    d1, t1 = c[3].date_input(t("traj_to"), key="traj_d1"), c[4].time_input(t("traj_to_time"), key="traj_t1", step=60)  # fmt: skip
    go = st.form_submit_button(t("search"), type="primary", disabled=reason is None)
if go and reason is not None:
    start, end = datetime.combine(d0, t0, tz), datetime.combine(d1, t1, tz)
    st.session_state["traj_query"] = {"plate": plate, "start": start, "end": end, "reason": reason}
query, tr = st.session_state.get("traj_query"), None
if query:  # the last query runs again on every load: a grant obtained since shows at once
    try:
        tr = hub.plate_trajectory(principal, **query)
    except HubError as exc:
        st.session_state.pop("traj_query", None)
        if exc.code == "bad_window":
            st.error(t("traj_err_bad_window", days=31), icon=":material/block:")
        else:
            show_error(exc)
if flash := st.session_state.pop("traj_flash", None):
    st.success(flash)
if tr is not None:
    hidden_n = sum(p.count for p in tr.pointers)
    st.caption(t("traj_counts", plate=tr.plate, rows=len(tr.points), hidden=hidden_n))
    if tr.grants_used:
        st.info(t("opened_with_grant", grants=", ".join(f"#{g}" for g in tr.grants_used)))
    pts = pd.DataFrame(tr.points)
    if not pts.empty:
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
              "camera": f"{x['from_camera']} → {x['to_camera']}", "speed": "",
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
                          gl.points_layer(shown[["lon", "lat", "time", "camera", "city", "speed", "color"]])]  # fmt: skip
                with box:
                    hubmap.show(hubmap.deck(layers, map_style=hub.settings.map_style, tooltip=tip, view=view), height=560)  # fmt: skip

        playback()
        cols = {"time": t("field_ts"), "camera": t("traj_col_camera"), "city": t("city"),
                "speed_kmh": t("traj_col_speed"), "camera_speed_kmh": t("traj_col_camera_speed")}  # fmt: skip
        st.dataframe(pts[list(cols)].rename(columns=cols), hide_index=True, width="stretch")
    elif not tr.pointers:
        st.info(t("no_results"))
    if tr.crossings:
        st.subheader(t("traj_crossings"))
        for x in tr.crossings:
            st.markdown(f":material/swap_horiz: **{names[x['from_city']]} → {names[x['to_city']]}** · {local_time(x['left_at'])} → "
                        f"{local_time(x['entered_at'])} · {x['from_camera']} → {x['to_camera']}")  # fmt: skip
    for p in tr.pointers:
        city = names.get(p.city_code, p.city_code)
        text = t("pointer_line", n=p.count, city=city, level=t("level_" + p.level))
        if p.first_ts and p.last_ts:
            text += t("pointer_span", start=local_time(p.first_ts), end=local_time(p.last_ts, "%H:%M"))  # fmt: skip
        with st.container(border=True):
            st.markdown(f":material/lock: {text}")
            if not p.route.requestable:
                st.caption(t("pointer_never"))
                continue
            st.caption(t("route_" + p.route.value))
            with st.form(f"traj-req-{p.city_code}-{p.level}"):
                st.markdown(f"**{t('request_access')}** · {tr.plate}")
                why = st.text_area(t("justification"), max_chars=1000)
                if st.form_submit_button(t("send_request")):
                    try:
                        rid = hub.request_access(principal, owner_city=p.city_code, level=p.level, scope_kind="plate",
                                                 scope_value=tr.plate, reason=query["reason"], justification=why)  # fmt: skip
                        st.success(t("request_sent", id=rid))
                    except HubError as exc:
                        show_error(exc)
            if principal.role == "investigator" and p.level == "sensitive":
                with (
                    st.expander(f"{t('break_glass')} · {city}"),
                    st.form(f"traj-glass-{p.city_code}"),
                ):
                    st.warning(t("break_glass_warning"))
                    why = st.text_area(t("justification"), max_chars=1000, key=f"traj-why-{p.city_code}")  # fmt: skip
                    if st.form_submit_button(t("break_glass_confirm"), type="primary"):
                        try:
                            gid = hub.break_glass(principal, plate=tr.plate, owner_city=p.city_code,
                                                  reason=query["reason"], justification=why)  # fmt: skip
                            st.session_state["traj_flash"] = t("break_glass_done", id=gid)
                            st.rerun()
                        except HubError as exc:
                            show_error(exc)
