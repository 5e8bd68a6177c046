"""Pieces of the alerts & assists page: the alert list with acknowledgement, the manual
alert form, CAP export, and the assistance requests (协查) with their subject view."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from hub.security.errors import HubError
from ui.errors import error_text
from ui.i18n import t
from ui.reason import reason_form
from ui.response import attempt, level_label, risk_levels
from ui.tables import local_time, localise, record_table
from ui.text import plain

LEVEL_BADGE = {"high": "red", "medium": "orange", "low": "blue"}


def alert_rows(hub, principal, frame: pd.DataFrame, names: dict[str, str]) -> int | None:
    """One line per alert; acknowledge buttons; returns the alert chosen for details."""
    chosen = None
    for a in frame.itertuples():
        c = st.columns([7, 2, 1], vertical_alignment="center")
        badge = f":{LEVEL_BADGE.get(a.level, 'gray')}-badge[{level_label(a.level)}]"
        tags = (" :violet-badge[" + t("al_exercise") + "]") if a.exercise else ""
        tags += (" :red-badge[" + t("al_escalated") + "]") if a.escalated and pd.isna(
            a.acknowledged_at) else ""  # fmt: skip
        c[0].markdown(f"{badge}{tags} **{plain(a.title)}** · {names.get(a.city_code, a.city_code)} · "
                      f"{local_time(a.ts)} · {t('al_acks', n=a.acknowledged, total=a.recipients)}")  # fmt: skip
        if pd.isna(a.acknowledged_at):
            if c[1].button(t("al_ack"), key=f"ack-{a.id}", type="primary",
                           icon=":material/done_all:"):  # fmt: skip
                attempt(lambda a=a: hub.acknowledge_alert(principal, int(a.id)), t("al_acked"))
                st.rerun(scope="fragment")
        else:
            c[1].caption(t("al_acked_at", at=local_time(a.acknowledged_at)))
        if c[2].button(t("al_details"), key=f"al-more-{a.id}"):
            st.session_state["al_chosen"] = int(a.id)
    chosen = st.session_state.get("al_chosen")
    return chosen if chosen in set(frame["id"]) else None


def alert_detail(hub, principal, alert_id: int, frame: pd.DataFrame, names) -> None:
    a = frame[frame.id == alert_id].iloc[0]
    st.markdown(f"**{plain(a.title)}**")
    if a.body:
        st.caption(plain(a.body))
    who = attempt(lambda: hub.alert_recipients(principal, alert_id))
    if who is not None:
        who = who.assign(city_code=who.city_code.map(names))
        st.dataframe(localise(who), hide_index=True)
    if st.button(t("al_cap"), icon=":material/ios_share:", key=f"cap-{alert_id}"):
        cap = attempt(lambda: hub.alert_cap(principal, alert_id))
        if cap is not None:
            st.session_state["al_cap"] = (alert_id, json.dumps(cap, ensure_ascii=False, indent=2))
    kept = st.session_state.get("al_cap")
    if kept and kept[0] == alert_id:
        st.download_button(t("al_cap_download"), kept[1], file_name=f"CAP-alert-{alert_id}.json",
                           mime="application/json", key=f"cap-dl-{alert_id}")  # fmt: skip


def raise_form(hub, principal) -> None:
    with st.form("al_raise", clear_on_submit=True):
        c = st.columns([5, 2, 2])
        title = c[0].text_input(t("al_title"), max_chars=200)
        level = c[1].selectbox(t("al_level"), risk_levels(), format_func=level_label, index=1)
        kinds = {"manual": t("al_kind_manual"), "fraud_wave": t("al_kind_fraud_wave")}
        kind = c[2].selectbox(t("al_kind"), list(kinds), format_func=kinds.get)
        body = st.text_area(t("al_body"), max_chars=1000, height=70)
        whole = st.checkbox(t("al_whole_city"), value=True)
        c = st.columns(3)
        lon = c[0].number_input(t("resp_lon"), 114.5, 120.0, 117.27, format="%.5f")
        lat = c[1].number_input(t("resp_lat"), 29.0, 35.5, 31.86, format="%.5f")
        radius = c[2].number_input(t("resp_radius_km"), 0.1, 50.0, 3.0, step=0.5)
        if st.form_submit_button(t("al_raise"), type="primary"):
            place = {} if whole else {"lon": lon, "lat": lat, "radius_m": radius * 1000}
            done = attempt(lambda: hub.raise_alert(principal, title=title, level=level, kind=kind,
                                                   body=body, **place))  # fmt: skip
            if done is not None:
                st.success(t("al_raised", n=len(done[1])), icon=":material/campaign:")


def assist_rows(hub, principal, frame: pd.DataFrame, names: dict[str, str]) -> None:
    if frame.empty:
        st.caption(t("as_none"))
        return
    for a in frame.itertuples():
        head = t("as_out" if a.outgoing else "as_in", city=names.get(a.from_city, a.from_city))
        tag = f" :violet-badge[{t('al_exercise')}]" if a.exercise else ""
        with st.expander(f"#{a.id} · {head} · {plain(a.case_no)} · {t('as_subject_' + a.subject_kind)}"
                         f" · {t('as_status_' + a.status)} ({a.responses}/{a.recipients})"):  # fmt: skip
            st.markdown(f"{tag} {plain(a.asked)}")
            history = attempt(lambda a=a: hub.assist_timeline(principal, int(a.id)))
            if history is not None:
                st.dataframe(localise(history.assign(city_code=history.city_code.map(names))),
                             hide_index=True)  # fmt: skip
            if not a.outgoing and a.my_status == "pending" and a.status == "open":
                text = st.text_input(t("as_response"), key=f"as-resp-{a.id}", max_chars=1000)
                c = st.columns(4)
                if c[0].button(t("as_respond"), key=f"as-ok-{a.id}", type="primary"):
                    attempt(
                        lambda a=a, x=text: hub.respond_assist(principal, int(a.id), x),
                        t("resp_done"),
                    )
                if c[1].button(t("as_decline"), key=f"as-no-{a.id}"):
                    attempt(lambda a=a, x=text: hub.respond_assist(principal, int(a.id), x, decline=True),
                            t("resp_done"))  # fmt: skip
            if a.outgoing and a.status == "open" and st.button(t("as_close"), key=f"as-x-{a.id}"):
                attempt(lambda a=a: hub.close_assist(principal, int(a.id)), t("resp_done"))
            if st.toggle(t("as_open_subject"), key=f"as-subj-{a.id}"):
                subject_view(hub, principal, int(a.id))


def subject_view(hub, principal, assist_id: int) -> None:
    """The subject behind a reason: opened, masked or a pointer, as the policy says."""
    reason = reason_form()
    if reason is None or not st.button(t("as_show_subject"), key=f"as-show-{assist_id}"):
        return
    try:
        view = hub.assist_subject(principal, assist_id, reason)
    except HubError as exc:
        st.error(error_text(exc), icon=":material/block:")
        return
    if view.record.rows:
        record_table(hub, principal, localise(pd.DataFrame(view.record.rows)), transpose=True)
    for p in view.record.pointers:
        st.warning(t("pointer_line", n=p.count, city=p.city_code, level=t("level_" + p.level)))


def new_assist_form(hub, principal, names: dict[str, str]) -> None:
    with st.form("as_new", clear_on_submit=False):
        c = st.columns([3, 2, 2])
        case_no = c[0].text_input(t("case_no"), max_chars=32)
        kinds = {"person": t("as_subject_person"), "vehicle": t("as_subject_vehicle")}
        kind = c[1].selectbox(t("as_subject_kind"), list(kinds), format_func=kinds.get)
        subject = c[2].number_input(t("as_subject_id"), min_value=1, step=1)
        asked = st.text_area(t("as_asked"), max_chars=1000, height=70)
        everyone = st.checkbox(t("as_all_cities"))
        cities = st.multiselect(t("as_to"), [c for c in names if c != principal.city_code],
                                format_func=names.get, placeholder=t("pick_cities"))  # fmt: skip
        if st.form_submit_button(t("as_send"), type="primary"):
            attempt(lambda: hub.create_assist(
                principal, case_no=case_no, subject_kind=kind, subject_id=int(subject),
                asked=asked, to_cities="all" if everyone else cities,
            ), t("as_sent"))  # fmt: skip
