"""Overview: province and city KPIs, 30-day trends, type mix, hour of week, incidents per
district; a wall mode for the command-room screen (dark, large, refreshing, no controls)."""

import streamlit as st

from geo.layers import district_fill_layer, fill_colors, label_layer
from hub.codes import label
from ui import cached, charts
from ui import map as hubmap
from ui.auth import guard
from ui.frame import city_names, hub_or_stop
from ui.i18n import lang, t
from ui.overview import WALL_CSS, kpi_delta, minutes

principal = guard("overview")
hub = hub_or_stop()
names = city_names()
wall = st.session_state.get("wall_mode", False)
if wall:
    st.markdown(WALL_CSS, unsafe_allow_html=True)


@st.fragment(run_every=60 if wall else None)
def board() -> None:
    ov = cached.overview(principal)
    p = ov.province
    st.title(t("ov_heading") + (f" · {ov.today:%Y-%m-%d}" if wall else ""))
    k = st.columns(7)
    k[0].metric(t("ov_incidents_today"), f"{p['today']:,}", kpi_delta(p["change_pct"]),
                delta_color="inverse", help=t("ov_incidents_help", mean=f"{p['mean_7d']:.0f}"))  # fmt: skip
    k[1].metric(t("ov_open_cases"), f"{int(ov.open_cases.sum()):,}")
    k[2].metric(t("ov_active_alerts"), f"{int(ov.active_alerts.sum()):,}",
                t("ov_unacknowledged", n=int(ov.unacknowledged.sum()), esc=int(ov.escalated.sum())),
                delta_color="off" if not ov.escalated.sum() else "inverse")  # fmt: skip
    k[3].metric(t("ov_cross_city"), f"{int(ov.cross_city_lookups.sum()):,}")
    k[4].metric(t("ov_decisions"), f"{ov.decisions_today:,}", minutes(ov.median_decision),
                delta_color="off")  # fmt: skip
    k[6].metric(t("ov_operations"), f"{ov.operations:,}")
    k[5].metric(t("ov_cities_up"), f"{int((ov.incidents.drop('province').change_pct > 20).sum())}",
                help=t("ov_cities_up_help"))  # fmt: skip

    st.subheader(t("ov_by_city"))
    cities = ov.incidents.drop("province")
    for row in range(0, len(cities), 8):
        cols = st.columns(8)
        for col, (code, r) in zip(cols, cities.iloc[row : row + 8].iterrows(), strict=False):
            col.metric(names.get(code, code), f"{int(r['today']):,}", kpi_delta(r["change_pct"]),
                       delta_color="inverse")  # fmt: skip

    if ov.escalated.sum():
        late = "、".join(names.get(c, c) for c in ov.escalated[ov.escalated > 0].index)
        st.error(
            t("ov_escalated", n=int(ov.escalated.sum()), cities=late), icon=":material/campaign:"
        )
    stale = ov.stale_feeds[ov.stale_feeds > 0]
    valid = ov.validity.dropna()
    st.caption(t("ov_feeds", stale=len(stale), cities="、".join(names.get(c, c) for c in stale.index) or "—",
                 validity=f"{valid.mean():.1%}" if len(valid) else "—"))  # fmt: skip
    left, right = st.columns([3, 2])
    with left:
        st.subheader(t("ov_trend"))
        st.altair_chart(charts.trend(ov.trend, names, dark=wall), width="stretch")
        st.subheader(t("ov_hour_of_week"))
        st.altair_chart(charts.hour_of_week(ov.hour_of_week, dark=wall), width="stretch")
    with right:
        st.subheader(t("ov_districts"))
        d = ov.districts
        fill = dict(zip(d.district_code, fill_colors(d["count"], (200, 40, 30)), strict=True))
        extra = {c: {"tip": f"{n:,}"} for c, n in zip(d.district_code, d["count"], strict=True)}
        layers = [district_fill_layer(fill, extra), label_layer("city", names=names, size=12)]
        tip = {"html": "<b>{name}</b><br/>" + t("ov_last_7_days") + ": {tip}"}
        hubmap.show(hubmap.deck(layers, map_style=hub.settings.map_style, tooltip=tip), height=430)
        st.subheader(t("ov_type_mix"))
        mix = ov.type_mix.assign(
            type=ov.type_mix["type"].map(lambda c: label("incident_type", c, lang()))
        )
        st.altair_chart(
            charts.bars(mix, "type", title=t("chart_incidents"), dark=wall), width="stretch"
        )


board()
if wall:
    if st.button(t("ov_leave_wall"), key="leave_wall", type="tertiary"):
        st.session_state["wall_mode"] = False
        st.rerun()
elif st.sidebar.button(t("ov_wall_mode"), icon=":material/tv:"):
    st.session_state["wall_mode"] = True
    st.rerun()
