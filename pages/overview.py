"""Overview: province and city KPIs, 30-day trends, type mix, hour of week, incidents per
district; a wall mode for the command-room screen (dark, large, refreshing, no controls,
one screen without scrolling, with a clock, "data as of" and legends)."""

from datetime import UTC, datetime

import streamlit as st

from geo.layers import district_fill_layer, fill_colors, label_layer
from hub.codes import label
from ui import cached, charts
from ui import map as hubmap
from ui.auth import guard
from ui.frame import city_names, hub_or_stop
from ui.freshness import replica_notice
from ui.i18n import lang, t
from ui.overview import (
    KPI_CSS,
    WALL_COLUMNS,
    WALL_CSS,
    WALL_HEIGHTS,
    kpi_delta,
    minutes,
    wall_chart,
)
from ui.tables import local_time

principal = guard("overview")
hub = hub_or_stop()
names = city_names()
wall = st.session_state.get("wall_mode", False)
st.markdown(WALL_CSS if wall else KPI_CSS, unsafe_allow_html=True)
# The figures follow the stream: the overview is recounted at most once a minute.
REFRESH_SECONDS = 60


def kpis(ov) -> None:
    p = ov.province
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


def district_map(ov, *, height: int, dark: bool) -> None:
    """Incidents per district (last 7 days) with its legend."""
    d = ov.districts
    fill = dict(zip(d.district_code, fill_colors(d["count"], (200, 40, 30)), strict=True))
    extra = {c: {"tip": f"{n:,}"} for c, n in zip(d.district_code, d["count"], strict=True)}
    size = 16 if dark else 12
    layers = [district_fill_layer(fill, extra), label_layer("city", names=names, size=size)]
    tip = {"html": "<b>{name}</b><br/>" + t("ov_last_7_days") + ": {tip}"}
    hubmap.show(hubmap.deck(layers, map_style=hub.settings.map_style, tooltip=tip), height=height)
    top = int(d["count"].max()) if len(d) else 0
    st.caption(f":red[■] {t('ov_map_legend', top=f'{top:,}')}")


def type_mix(ov, *, dark: bool, height: int | None = None):
    mix = ov.type_mix.assign(
        type=ov.type_mix["type"].map(lambda c: label("incident_type", c, lang()))
    )
    chart = charts.bars(mix, "type", title=t("chart_incidents"), dark=dark)
    return chart.properties(height=height) if height else chart


@st.fragment(run_every=5)
def wall_clock() -> None:
    """The wall's clock and how old its figures are (the body refreshes every minute)."""
    now = datetime.now(UTC)
    as_of = st.session_state.get("wall_as_of", now)
    st.markdown(f"## {t('wall_clock', time=local_time(now, '%H:%M'))}")
    st.caption(t("wall_as_of", time=local_time(as_of, "%H:%M")))


def wall_header() -> None:
    top = st.columns([6, 4, 1], vertical_alignment="center")
    top[0].markdown(f"## {t('ov_heading')} · {local_time(datetime.now(UTC), '%Y-%m-%d')}")
    with top[1]:
        wall_clock()
    if top[2].button(t("ov_leave_wall"), key="leave_wall", type="tertiary"):
        st.session_state["wall_mode"] = False
        st.rerun()


@st.fragment(run_every=REFRESH_SECONDS)
def wall_board() -> None:
    """The whole board on one screen: KPIs, then the map | trend and hour of week | the
    cities and the type mix (the header with the clock is drawn once, above)."""
    h = WALL_HEIGHTS
    ov = cached.overview(principal)
    st.session_state["wall_as_of"] = datetime.now(UTC).replace(second=0, microsecond=0)
    stale = ov.stale_feeds[ov.stale_feeds > 0]
    valid = ov.validity.dropna()
    st.caption(t("ov_feeds", stale=len(stale), cities="、".join(names.get(c, c) for c in stale.index) or "—",
                 validity=f"{valid.mean():.1%}" if len(valid) else "—"))  # fmt: skip
    kpis(ov)
    if ov.escalated.sum():
        late = "、".join(names.get(c, c) for c in ov.escalated[ov.escalated > 0].index)
        st.error(
            t("ov_escalated", n=int(ov.escalated.sum()), cities=late), icon=":material/campaign:"
        )
    left, mid, right = st.columns(list(WALL_COLUMNS))
    with left:
        st.markdown(f"#### {t('ov_districts')}")
        district_map(ov, height=h["map"], dark=True)
    with mid:
        st.markdown(f"#### {t('ov_trend')}")
        st.altair_chart(wall_chart(charts.trend(ov.trend, names, dark=True), 1, h["trend"]),
                        width="content")  # fmt: skip
        st.markdown(f"#### {t('ov_hour_of_week')}")
        st.altair_chart(wall_chart(charts.hour_of_week(ov.hour_of_week, dark=True), 1,
                                   h["hour_of_week"]), width="content")  # fmt: skip
    with right:
        st.markdown(f"#### {t('ov_by_city')}")
        cities = ov.incidents.drop("province")
        with st.container(key="wall-cities"):
            for row in range(0, len(cities), 4):
                cols = st.columns(4)
                for col, (code, r) in zip(
                    cols, cities.iloc[row : row + 4].iterrows(), strict=False
                ):
                    col.metric(names.get(code, code), f"{int(r['today']):,}")
        st.altair_chart(wall_chart(type_mix(ov, dark=True), 2, h["type_mix"]), width="content")


@st.fragment(run_every=REFRESH_SECONDS)
def board() -> None:
    ov = cached.overview(principal)
    st.title(t("ov_heading"))
    replica_notice(hub)
    st.caption(t("wall_as_of", time=local_time(datetime.now(UTC), "%H:%M")))
    kpis(ov)

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
        st.altair_chart(charts.trend(ov.trend, names), width="stretch")
        st.subheader(t("ov_hour_of_week"))
        st.altair_chart(charts.hour_of_week(ov.hour_of_week), width="stretch")
    with right:
        st.subheader(t("ov_districts"))
        district_map(ov, height=430, dark=False)
        st.subheader(t("ov_type_mix"))
        st.altair_chart(type_mix(ov, dark=False), width="stretch")


if wall:
    wall_header()
    wall_board()
else:
    board()
if not wall and st.sidebar.button(t("ov_wall_mode"), icon=":material/tv:"):
    st.session_state["wall_mode"] = True
    st.rerun()
