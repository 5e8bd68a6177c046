"""Alerts & assists: risk alerts pushed to this city (automatic hotspots and manual),
acknowledgement, CAP export; assistance requests (协查) between cities."""

import streamlit as st

from ui import alerts as ui_al
from ui import response as ui_resp
from ui.auth import guard
from ui.frame import city_names, hub_or_stop
from ui.i18n import t
from ui.notices import linked_first, select_linked

REFRESH_SECONDS = 10
principal = guard("alerts")
hub = hub_or_stop()
names = city_names()
st.title(t("al_heading"))
running = hub.running_exercises()
ui_resp.exercise_banner(bool(running))
tab_alerts, tab_assists = st.tabs([t("al_tab_alerts"), t("al_tab_assists")])

with tab_alerts:
    c = st.columns([2, 2, 6], vertical_alignment="bottom")
    days = c[0].selectbox(t("al_days"), [1, 3, 7, 30], index=2, key="al_days")
    pending_only = c[1].toggle(t("al_pending_only"), key="al_pending")

    @st.fragment(run_every=REFRESH_SECONDS)
    def live_alerts() -> None:
        hub.exercise_tick()
        hub.alert_upkeep()
        frame = ui_resp.attempt(
            lambda: hub.alerts(principal, days=days, include_acknowledged=not pending_only)
        )
        if frame is None:
            return
        # A notice's link: its alert on top with its details open.
        linked = select_linked("alert", "al_chosen", set(frame["id"].tolist()))
        frame = frame.loc[linked_first(frame.index, linked, lambda i: int(frame.at[i, "id"]))]
        m = st.columns(3)
        m[0].metric(t("al_count"), len(frame))
        m[1].metric(t("al_unacked"), int(frame.acknowledged_at.isna().sum()))
        escalated = frame.escalated & frame.acknowledged_at.isna()
        m[2].metric(t("al_escalated_count"), int(escalated.sum()))
        if frame.empty:
            st.caption(t("al_none"))
            return
        left, right = st.columns([3, 2])
        with left:
            chosen = ui_al.alert_rows(hub, principal, frame, names)
        with right:
            if chosen is not None:
                ui_al.alert_detail(hub, principal, chosen, frame, names)
            else:
                st.caption(t("al_pick"))

    live_alerts()
    if principal.role == "commander":
        with st.expander(t("al_raise_heading"), icon=":material/campaign:"):
            ui_al.raise_form(hub, principal)

with tab_assists:
    with st.expander(t("as_new"), icon=":material/forward_to_inbox:"):
        ui_al.new_assist_form(hub, principal, names)
    assists = ui_resp.attempt(lambda: hub.assists(principal))
    if assists is not None:
        ui_al.assist_rows(hub, principal, assists, names)
