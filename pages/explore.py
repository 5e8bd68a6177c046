"""Explore: an analyst's pivot of incidents by city, district, type, severity and time,
with charts and an H3 map — counts only, never a record — and a watermarked export."""

from datetime import UTC, datetime

import streamlit as st

from geo.layers import city_layer, hex_layer, label_layer, view_for
from hub.security.errors import HubError
from ui import cached, charts
from ui import explore as ui_ex
from ui import map as hubmap
from ui.auth import guard
from ui.errors import show_error
from ui.frame import city_names, hub_or_stop
from ui.freshness import replica_notice
from ui.i18n import t

principal = guard("explore")
hub = hub_or_stop()
names = city_names()
st.title(t("ex_heading"))
replica_notice(hub)
st.caption(t("ex_caption"))
now = datetime.now(UTC).replace(second=0, microsecond=0)
query = ui_ex.query_bar(names, now)
if query is None:
    st.stop()
try:
    found = cached.explore(principal, query)
except HubError as exc:
    show_error(exc)
    st.stop()

st.metric(t("ex_total"), f"{found.total:,}")
if found.total == 0:
    st.info(t("ex_empty"), icon=":material/search_off:")
    st.stop()

left, right = st.columns([3, 2])
with left:
    st.dataframe(
        ui_ex.readable(found.pivot, names, query.columns),
        hide_index=True,
        width="stretch",
        height=360,
    )
    st.subheader(t("ex_daily"))
    daily = found.daily.assign(city_code="all")
    st.altair_chart(charts.trend(daily, {"all": t("ex_selection")}), width="stretch")
with right:
    cells = found.cells.assign(
        tip=found.cells["count"].map(lambda n: t("sit_tip_cell", n=n, sev="—"))
    )
    layers = [
        city_layer(pickable=False),
        hex_layer(cells),
        label_layer("city", names=names, size=12),
    ]
    view = view_for(query.cities, query.districts, width_px=560, height_px=420)
    hubmap.show(hubmap.deck(layers, map_style=hub.settings.map_style, tooltip={"html": "{tip}"}, view=view), height=420)  # fmt: skip
    st.subheader(t("ov_hour_of_week"))
    st.altair_chart(charts.hour_of_week(found.hour_of_week), width="stretch")

with st.container(border=True):
    st.markdown(f"**{t('ex_export')}**")
    st.caption(t("ex_export_help"))
    c1, c2, c3 = st.columns([1, 1, 3], vertical_alignment="bottom")
    fmt = c1.radio(t("ex_format"), ["xlsx", "csv"], format_func=str.upper, horizontal=True,
                   key="ex_fmt")  # fmt: skip
    if c2.button(t("ex_prepare"), type="primary"):  # one registered export per click
        try:
            st.session_state["ex_file"] = hub.export_exploration(principal, query, fmt)
        except HubError as exc:
            show_error(exc)
    if (f := st.session_state.get("ex_file")) is not None:
        c3.download_button(t("ex_download", name=f.filename, n=f.rows), f.data, f.filename, f.mime,
                           icon=":material/download:")  # fmt: skip
