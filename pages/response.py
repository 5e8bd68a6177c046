"""Joint response: an operation's live board — area, units in reach with ETA, resource
requests through their lifecycle, the shared timeline, participants and the briefing."""

import streamlit as st

from ui import response as ui_resp
from ui.auth import guard
from ui.frame import city_names, hub_or_stop
from ui.i18n import t
from ui.notices import select_linked
from ui.text import plain

REFRESH_SECONDS = 5
principal = guard("response")
hub = hub_or_stop()
names = city_names()
st.title(t("resp_heading"))

top = st.columns([6, 2, 2], vertical_alignment="bottom")
ops = hub.operations(principal)
with top[2]:
    ui_resp.exercise_starter(hub, principal)
prefill = st.session_state.get(ui_resp.OPERATION_FROM_MAP)
with st.expander(t("resp_new_operation"), expanded=ops.empty or prefill is not None):
    created = ui_resp.new_operation_form(hub, principal, names, prefill)
    if created is not None:
        st.session_state.pop(ui_resp.OPERATION_FROM_MAP, None)
        st.session_state["resp_op"] = created
        st.rerun()
if ops.empty:
    st.info(t("resp_no_operations"), icon=":material/info:")
    st.stop()
labels = {
    int(o.id): ("【演练】" if o.exercise else "") + f"#{o.id} {o.name} · {names.get(o.lead_city)} · "
    + t(f"resp_my_{o.my_status}")
    for o in ops.itertuples()
}  # fmt: skip
ids = list(labels)
select_linked("operation", "resp_op", ids)  # a notice's link opens its operation
if st.session_state.get("resp_op") not in ids:
    st.session_state["resp_op"] = ids[0]
op_id = top[0].selectbox(t("resp_operation"), ids, format_func=labels.get, key="resp_op")


@st.fragment(run_every=REFRESH_SECONDS)
def live_board() -> None:
    hub.exercise_tick()
    b = ui_resp.attempt(lambda: hub.operation_board(principal, op_id))
    if b is None:
        return
    ui_resp.exercise_banner(b.exercise)
    op = b.operation
    if b.my_status == "invited":
        st.info(t("resp_invited", lead=names.get(op["lead_city"])), icon=":material/mail:")
        c = st.columns(6)
        if c[0].button(t("resp_accept"), type="primary", key="resp_accept"):
            ui_resp.attempt(lambda: hub.respond_invitation(principal, op_id, accept=True))
            st.rerun(scope="fragment")
        if c[1].button(t("resp_decline"), key="resp_decline"):
            ui_resp.attempt(lambda: hub.respond_invitation(principal, op_id, accept=False))
            st.rerun()
    m = st.columns(5)
    m[0].metric(t("resp_lead"), names.get(op["lead_city"], op["lead_city"]))
    m[1].metric(t("resp_units_in_reach"), len(b.units))
    m[2].metric(
        t("resp_available"), int((b.units.status == "available").sum()) if len(b.units) else 0
    )
    deployed = b.requests.status.isin(["dispatched", "en_route", "on_scene"]).sum()
    m[3].metric(t("resp_deployed"), int(deployed))
    m[4].metric(t("resp_open_requests"), int((b.requests.status == "requested").sum()))
    if b.incident_hidden:
        st.caption(t("resp_incident_hidden"))
    left, right = st.columns([3, 2])
    with left:
        st.pydeck_chart(ui_resp.board_deck(b, names, hub.settings.map_style), height=520,
                        key="resp_map")  # fmt: skip
        st.caption(t("resp_legend"))
    with right:
        st.subheader(t("resp_units"))
        if b.units.empty:
            st.info(t("resp_no_units", km=op["radius_m"] / 1000 + 40), icon=":material/info:")
        else:  # an empty table would say "empty" in Streamlit's English
            st.dataframe(ui_resp.units_table(b, names), hide_index=True, height=460)
    if op["status"] == "active":
        ui_resp.unit_picker(hub, principal, b, names)
    st.subheader(t("resp_requests"))
    ui_resp.request_rows(hub, principal, b, names)
    c1, c2 = st.columns([3, 2])
    with c1:
        st.subheader(t("resp_timeline"))
        ui_resp.timeline(hub, principal, b, names)
    with c2:
        st.subheader(t("resp_participants"))
        rows = [(names.get(op["lead_city"]), t("resp_my_lead"))] + [
            (names.get(p.city_code, p.city_code), t(f"resp_my_{p.status}"))
            for p in b.participants.itertuples()
        ]
        st.table(
            {t("resp_col_city"): [r[0] for r in rows], t("resp_col_status"): [r[1] for r in rows]}
        )
        if op["objectives"]:
            st.markdown(f"**{t('resp_objectives')}**: {plain(op['objectives'])}")
        ui_resp.briefing_downloads(hub, principal, op_id, names)
        lead = b.my_status == "lead" and op["status"] == "active"
        if lead and st.button(t("resp_close"), icon=":material/flag:", key="resp_close"):
            ui_resp.attempt(lambda: hub.close_operation(principal, op_id), t("resp_done"))
            st.rerun()


live_board()
ui_resp.eido_import(hub, principal)
