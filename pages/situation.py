"""Situation map, the common operating picture: incidents (hexagons, points or heat),
cameras, risk zones, help requests and units, with operations, alert areas, watch hits and
the watched cars, on the offline map; filtered, played back by hour, or live (the last N
minutes, new incidents and hits appearing as they arrive); every feature clickable, a
hexagon opening its incidents."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from hub.security.errors import HubError
from ui import live as ui_live
from ui import situation as ui_sit
from ui.auth import guard
from ui.errors import show_error
from ui.frame import city_names, hub_or_stop
from ui.i18n import t
from ui.tables import local_time

PLAY_SECONDS = 1.5
principal = guard("situation")
hub = hub_or_stop()
names = city_names()
st.title(t("sit_heading"))
now = datetime.now(UTC).replace(second=0, microsecond=0)
query, choice = ui_sit.query_bar(names, now, principal.role)
if query is None:
    st.stop()
mode, live_on = choice.mode, choice.live_minutes is not None
cached = st.session_state.get("sit_cache")
if cached is None or cached[0] != (query, choice.overlays):
    try:  # one audited map view per query; playback, mode and clicks reuse the answer
        ov = (
            hub.cop.overlays(principal, choice.overlays, since=query.start)
            if choice.overlays
            else None
        )
        st.session_state["sit_cache"] = cached = (
            (query, choice.overlays),
            hub.situation(principal, query),
            ov,
        )
        st.session_state.pop(ui_live.TAIL, None)  # a new answer: the live tail starts again
    except HubError as exc:
        show_error(exc)
        st.stop()
sit, overlays = cached[1], cached[2]

stale = sit.freshness[sit.freshness.stale & sit.freshness.dataset.isin(query.layers)]
if note := ui_sit.points_note(sit, mode):
    st.info(note, icon=":material/hexagon:")
if sit.total_incidents == 0 and "incidents" in query.layers:
    st.info(t("sit_empty"), icon=":material/search_off:")

playing = bool(query.by_hour and st.session_state.get("sit_playing"))


@st.fragment(run_every=PLAY_SECONDS if playing else ui_live.REFRESH_SECONDS if live_on else None)
def map_panel() -> None:
    upto, live = None, None
    if live_on:
        live = ui_live.tail(hub, principal, sit, choice.live_minutes)
        ui_live.status_strip(hub, names, live)
    if query.by_hour:
        hours = sit.hours
        c1, c2 = st.columns([1, 9], vertical_alignment="bottom")
        if c1.button(t("sit_pause" if playing else "sit_play"), key="sit_play_btn"):
            st.session_state["sit_playing"] = not playing
            st.rerun()
        if playing:  # advance before the slider is drawn, so it shows the new hour
            st.session_state["sit_hour"] = (st.session_state.get("sit_hour", -1) + 1) % len(hours)
        st.session_state.setdefault("sit_hour", len(hours) - 1)
        st.session_state["sit_hour"] = min(st.session_state["sit_hour"], len(hours) - 1)
        i = c2.select_slider(t("sit_hour"), range(len(hours)), key="sit_hour", help=t("sit_hour_help"),
                             format_func=lambda k: local_time(hours[k]))  # fmt: skip
        upto = hours[i] + pd.Timedelta(hours=1)
        st.caption(t("sit_upto", start=local_time(hours[0]), end=local_time(upto)))
    left, right = st.columns([4, 1])
    with left:
        deck = ui_sit.build_deck(sit, mode, names, upto=upto, map_style=hub.settings.map_style,
                                 overlays=overlays, live=live)  # fmt: skip
        event = st.pydeck_chart(deck, height=ui_sit.MAP_HEIGHT, on_select="rerun",
                                selection_mode="single-object", key="sit_map")  # fmt: skip
        st.markdown(ui_sit.legend(sit, mode, overlays, live_on))
    with right:
        ui_sit.feature_panel(hub, principal, ui_sit.selected(event), query)


map_panel()
# The figures under the map: the map takes the screen.
m = st.columns(6)
m[0].metric(t("sit_incidents"), f"{sit.total_incidents:,}")
if sit.points is not None:
    m[1].metric(t("sit_points_shown"), f"{len(sit.points):,}", help=t("sit_rule"))
else:
    m[1].metric(t("sit_cells", res=query.resolution), f"{len(sit.hexes.h3.unique()):,}")
m[2].metric(t("sit_hidden"), f"{sum(sit.hidden.values()):,}", help=t("sit_hidden_help"))
m[3].metric(t("sit_layer_help_requests"), f"{len(sit.help_requests):,}")
online = int((sit.cameras.status == "online").sum())
cams = f"{online:,} / {len(sit.cameras):,}" if "cameras" in query.layers else "—"
m[4].metric(t("sit_cameras_online"), cams)
m[5].metric(t("sit_stale_feeds"), f"{stale.city_code.nunique()}", help=t("sit_stale_help"))
st.caption(t("sit_rule"))
with st.expander(t("sit_freshness"), expanded=not stale.empty):
    fresh = sit.freshness.assign(
        city=sit.freshness.city_code.map(names),
        layer=sit.freshness.dataset.map(lambda d: t(f"sit_feed_{d}")),
        arrived=sit.freshness.last_arrival.map(lambda v: local_time(v) if pd.notna(v) else "—"),
    )
    table = fresh.pivot(index="city", columns="layer", values="arrived")
    flags = fresh.pivot(index="city", columns="layer", values="stale")
    st.dataframe(
        table.style.apply(lambda _: flags.map(lambda s: "color: #d9480f; font-weight: 600" if s else ""), axis=None),
        width="stretch",
    )  # fmt: skip
