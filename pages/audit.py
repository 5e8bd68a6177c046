"""Audit: the log, the chain check, alarms to close with a note, and the owner's view."""

import streamlit as st

from hub.security.errors import HubError
from ui import audit as ui_audit
from ui.auth import guard
from ui.errors import show_error
from ui.frame import city_names, hub_or_stop
from ui.i18n import label, t
from ui.tables import local_time, localise

principal = guard("audit")
hub = hub_or_stop()
names = city_names()
st.title(t("audit_heading"))

tabs = [t("tab_log"), t("tab_chain"), t("tab_alarms"), t("tab_transparency")]
if principal.role == "city_approver":
    tabs.append(t("tab_owner_view"))
if principal.role == "auditor":
    tabs += [t("tab_leak"), t("tab_exports")]
sections = dict(zip(tabs, st.tabs(tabs), strict=True))

with sections[t("tab_log")]:
    c1, c2, c3, c4 = st.columns(4)
    username = c1.text_input(t("filter_username"), max_chars=64)
    actions = {"": t("sit_all"), **{a: label("action", a) for a in ui_audit.audit_actions()}}
    action = c2.selectbox(t("filter_action"), list(actions), format_func=actions.get)
    cities = {"": t("sit_all"), **names}
    city = c3.selectbox(t("city"), list(cities), format_func=cities.get)
    subject = c4.text_input(t("filter_subject"), max_chars=64, help=t("filter_subject_help"))
    log = hub.audit_log(principal, username=username, action=action, city=city, subject=subject)
    st.caption(t("rows_shown", n=len(log)))
    st.dataframe(localise(log), hide_index=True, width="stretch")

with sections[t("tab_chain")]:
    st.caption(t("chain_explained"))
    if st.button(t("verify_chain"), type="primary"):
        ui_audit.chain_result(hub.verify_audit_chain(principal))

with sections[t("tab_alarms")]:
    alarms = hub.alarms(principal)
    if not alarms:
        st.info(t("no_open_alarms"))
    else:
        st.dataframe(
            [{t("col_time"): local_time(a.ts, "%Y-%m-%d %H:%M"), t("col_rule"): t("rule_" + a.rule), t("col_severity"): label("alarm_severity", a.severity),
              t("col_user"): a.username, t("col_city"): names.get(a.city_code or "", a.city_code or "—"), t("col_detail"): ui_audit.alarm_detail(a.detail)}
             for a in alarms],
            hide_index=True, width="stretch",
        )  # fmt: skip
        with st.form("close_alarm"):
            shown = {a.id: f"#{a.id} {t('rule_' + a.rule)} · {a.username}" for a in alarms}
            chosen = st.selectbox(t("alarm_to_close"), list(shown), format_func=shown.get)
            note = st.text_area(t("close_note"), max_chars=1000)
            if st.form_submit_button(t("close_alarm")):
                try:
                    hub.close_alarm(principal, chosen, note)
                    st.success(t("alarm_closed_ok"))
                    st.rerun()
                except HubError as exc:
                    show_error(exc)

if principal.role == "city_approver":
    with sections[t("tab_owner_view")]:
        st.caption(t("owner_view_explained"))
        st.dataframe(localise(hub.owner_view(principal)), hide_index=True, width="stretch")
        with st.form("flag_access"):
            c1, c2 = st.columns([1, 3])
            seq = c1.number_input(t("flag_seq"), min_value=1, step=1)
            note = c2.text_input(t("flag_note"), max_chars=1000)
            if st.form_submit_button(t("flag_for_review")):
                try:
                    st.success(t("flagged_ok", id=hub.flag_access(principal, int(seq), note)))
                except HubError as exc:
                    show_error(exc)
        st.subheader(t("reviews_open"))
        reviews = hub.reviews(principal)
        if reviews.empty:
            st.caption(t("no_reviews"))
        else:
            st.dataframe(localise(reviews), hide_index=True, width="stretch")
            with st.form("close_review"):
                rid = st.selectbox(t("review_to_close"), list(reviews["id"]))
                note = st.text_input(t("close_note"), max_chars=1000)
                outcomes = {o: t(f"review_outcome_{o}") for o in ("accept", "reject")}
                outcome = st.radio(t("review_outcome"), list(outcomes), horizontal=True,
                                   format_func=outcomes.get)  # fmt: skip
                if st.form_submit_button(t("close_review")):
                    try:
                        hub.close_review(principal, int(rid), note, outcome=outcome)
                        st.success(t("review_closed_ok"))
                    except HubError as exc:
                        show_error(exc)
        with st.form("revoke_grant"):
            st.markdown(f"**{t('revoke_grant')}**")
            c1, c2 = st.columns([1, 3])
            gid = c1.number_input(t("revoke_grant_id"), min_value=1, step=1)
            why = c2.text_input(t("revoke_grant_note"), max_chars=1000)
            if st.form_submit_button(t("revoke_grant")):
                try:
                    hub.revoke_grant(principal, int(gid), why)
                    st.success(t("revoke_grant_ok", id=int(gid)))
                except HubError as exc:
                    show_error(exc)

with sections[t("tab_transparency")]:
    ui_audit.transparency_section(hub, principal, names)
if principal.role == "auditor":
    with sections[t("tab_leak")]:
        ui_audit.leak_section(hub, principal)
    with sections[t("tab_exports")]:
        ui_audit.exports_section(hub, principal)
