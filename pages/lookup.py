"""Lookup: persons and vehicles across all 16 cities, under a reason; hidden records as pointers."""

import pandas as pd
import streamlit as st

from hub.security.errors import HubError
from ui.auth import guard
from ui.errors import show_error
from ui.frame import city_names, hub_or_stop
from ui.i18n import t
from ui.pointers import await_decisions, pointer_card, request_all
from ui.reason import reason_form
from ui.tables import localise, record_table

principal = guard("lookup")
hub = hub_or_stop()
names = city_names()
st.title(t("lookup_heading"))

reason = reason_form()
kinds = {
    "plate": t("kind_plate"),
    "id_number": t("kind_id_number"),
    "phone": t("kind_phone"),
    "name": t("kind_name"),
    "case": t("kind_case"),
    "text": t("kind_text"),
}
with st.form("lookup"):
    c1, c2 = st.columns([1, 3])
    kind = c1.selectbox(t("search_by"), list(kinds), format_func=kinds.__getitem__)
    value = c2.text_input(t("search_value"), max_chars=64)
    go = st.form_submit_button(t("search"), type="primary", disabled=reason is None)


def search(kind: str, value: str, reason) -> None:
    """Run the lookup and keep it (with what was asked, so an approval can re-run it)."""
    try:
        if kind == "plate":
            st.session_state["lookup_result"] = hub.search_plate(principal, value, reason)
        elif kind == "case":
            st.session_state["lookup_result"] = hub.search_case(principal, value, reason)
        elif kind == "text":
            st.session_state["lookup_result"] = hub.search_text(principal, value, reason)
        else:
            st.session_state["lookup_result"] = hub.search_person(principal, kind, value, reason)
        st.session_state["lookup_asked"] = (kind, value, reason)
    except HubError as exc:
        st.session_state.pop("lookup_result", None)
        show_error(exc)


if go and reason is not None:
    search(kind, value, reason)

result = st.session_state.get("lookup_result")
if result is not None:
    st.caption(
        t("lookup_counts", rows=len(result.rows), hidden=sum(p.count for p in result.pointers))
    )
    if result.grants_used:
        st.info(t("opened_with_grant", grants=", ".join(f"#{g}" for g in result.grants_used)))
    frame = pd.DataFrame(result.rows)
    if not frame.empty:
        for city, rows in frame.groupby("city_code", sort=False):
            st.subheader(names.get(city, city))
            record_table(hub, principal, localise(rows.drop(columns=["city_code"])))
    elif not result.pointers:
        st.info(t("no_results"))
    asked = st.session_state.get("lookup_asked")
    if result.pointers and asked is not None:  # one click: every hidden city at once
        request_all(hub, principal, result.pointers, names=names, reason=asked[2],
                    scope=asked[:2], key="lookup-")  # fmt: skip
    for p in result.pointers:
        pointer_card(hub, principal, p, names=names, reason=reason, scope=(kind, value))
if st.session_state.get("lookup_asked") is not None:
    await_decisions(hub, principal, names=names, key="lookup-",
                    reopen=lambda: search(*st.session_state["lookup_asked"]))  # fmt: skip

if result is not None and result.dataset in ("persons", "cases", "vehicles") and result.rows:
    st.divider()
    with st.form("detail"):
        chosen = st.selectbox(t("open_record"), [r["id"] for r in result.rows])
        if st.form_submit_button(t("show_detail")) and reason is not None:
            try:
                st.session_state["record_view"] = hub.view_record(
                    principal, result.dataset, int(chosen), reason
                )
            except HubError as exc:
                show_error(exc)
    view = st.session_state.get("record_view")
    if view is not None:
        record_table(hub, principal, localise(pd.DataFrame(view.record.rows)))
        for linked, res in view.links.items():
            st.markdown(
                f"**{t('linked_' + linked)}** · {t('lookup_counts', rows=len(res.rows), hidden=sum(p.count for p in res.pointers))}"
            )
            if res.rows:
                record_table(hub, principal, localise(pd.DataFrame(res.rows).head(50)))
            for p in res.pointers:
                st.caption(
                    ":material/lock: "
                    + t(
                        "pointer_line",
                        n=p.count,
                        city=names.get(p.city_code, p.city_code),
                        level=t("level_" + p.level),
                    )
                )
