"""Situation map: incidents (hexagons, points or heat), cameras, risk zones, help requests
and units on the offline map, filtered, played back by hour, each feature clickable."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from hub.security.errors import HubError
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
query, mode = ui_sit.query_bar(names, now)
if query is None:
    st.stop()
cached = st.session_state.get("sit_cache")
if cached is None or cached[0] != query:
    try:  # one audited map view per query; playback, mode and clicks reuse the answer
        st.session_state["sit_cache"] = cached = (query, hub.situation(principal, query))
    except HubError as exc:
        show_error(exc)
        st.stop()
sit = cached[1]

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
stale = sit.freshness[sit.freshness.stale & sit.freshness.dataset.isin(query.layers)]
m[5].metric(t("sit_stale_feeds"), f"{stale.city_code.nunique()}", help=t("sit_stale_help"))
if note := ui_sit.points_note(sit, mode):
    st.info(note, icon=":material/hexagon:")
if sit.total_incidents == 0 and "incidents" in query.layers:
    st.info(t("sit_empty"), icon=":material/search_off:")

playing = bool(query.by_hour and st.session_state.get("sit_playing"))


@st.fragment(run_every=PLAY_SECONDS if playing else None)
def map_panel() -> None:
    upto = None
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
    left, right = st.columns([3, 1])
    with left:
        deck = ui_sit.build_deck(sit, mode, names, upto=upto, map_style=hub.settings.map_style)
        event = st.pydeck_chart(deck, height=640, on_select="rerun",
                                selection_mode="single-object", key="sit_map")  # fmt: skip
        st.caption(ui_sit.legend(sit, mode))
    with right:
        ui_sit.feature_panel(hub, principal, ui_sit.selected(event))


map_panel()
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
