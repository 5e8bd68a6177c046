"""Requests: my requests, the approver's inbox (urgent first) with decide-with-note, grants in force."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from hub.security.errors import HubError
from ui.auth import guard
from ui.errors import show_error
from ui.frame import city_names, hub_or_stop
from ui.i18n import label, t
from ui.notices import linked_first, linked_item
from ui.tables import EMPTY, duration_text, local_time
from ui.text import plain

principal = guard("requests")
hub = hub_or_stop()
names = city_names()
st.title(t("requests_heading"))


def scope(kind: str, value: str) -> str:
    """What a request covers, its kind labelled (车牌：皖A…)."""
    return t("req_scope", kind=label("kind", kind), value=value)


def table(views) -> pd.DataFrame:
    return pd.DataFrame(
        [{t("col_id"): v.id, t("col_requester"): v.requester, t("col_owner_city"): names.get(v.owner_city, v.owner_city),
          t("col_level"): label("classification", v.level), t("col_scope"): scope(v.scope_kind, v.scope_value),
          t("purpose"): label("purpose", v.purpose), t("case_no"): v.case_no or EMPTY, t("col_status"): t("status_" + v.status),
          t("col_created"): local_time(v.created_at, "%Y-%m-%d %H:%M"), t("col_note"): v.decision_note or ""} for v in views]
    )  # fmt: skip


if principal.role in ("city_approver", "province_approver"):
    st.subheader(t("inbox"))
    linked = linked_item("request")  # a notice's link: that request on top, marked
    pending = linked_first(hub.inbox(principal), linked, lambda v: v.id)
    if not pending:
        st.info(t("inbox_empty"))
    for v in pending:
        urgent = "🔴 " if v.urgent else ""
        with st.container(border=True):
            if v.id == linked:
                st.badge(t("linked_opened"), icon=":material/link:", color="blue")
            st.markdown(f"{urgent}**#{v.id}** {plain(v.requester)} · {names.get(v.requester_city or '', '')} → "
                        f"{names.get(v.owner_city, v.owner_city)} · {t('level_' + v.level)} · {plain(scope(v.scope_kind, v.scope_value))}")  # fmt: skip
            st.caption(
                f"{t('purpose')}: {label('purpose', v.purpose)} · {t('case_no')}: "
                f"{plain(v.case_no or EMPTY)} · {plain(v.justification)}"
            )
            st.caption(
                t(
                    "requester_activity",
                    lookups=v.recent_lookups,
                    refusals=v.recent_refusals,
                    alarms=v.open_alarms,
                )
            )
            with st.form(f"decide-{v.id}"):
                note = st.text_input(t("decision_note"), max_chars=1000)
                c1, c2 = st.columns(2)
                approve = c1.form_submit_button(t("approve"), type="primary")
                deny = c2.form_submit_button(t("deny"))
            if approve or deny:
                try:
                    status = hub.decide_request(principal, v.id, approve=approve, note=note)
                    st.success(t("decided", id=v.id, status=t("status_" + status)))
                except HubError as exc:
                    show_error(exc)

st.subheader(t("my_requests"))
mine = linked_first(hub.my_requests(principal), linked_item("request"), lambda v: v.id)
if mine:
    st.dataframe(table(mine), hide_index=True, width="stretch")
else:
    st.caption(t("no_requests"))

st.subheader(t("grants_in_force"))
grants = hub.grants(principal)
now = datetime.now(UTC)
if grants:
    st.dataframe(
        pd.DataFrame([{t("col_id"): g.grant_id, t("col_owner_city"): names.get(g.owner_city, g.owner_city),
                       t("col_level"): label("classification", g.level), t("col_scope"): scope(g.scope_kind, g.scope_value),
                       t("col_expires_in"): duration_text((g.expires_at - now).total_seconds())} for g in grants]),
        hide_index=True, width="stretch",
    )  # fmt: skip
else:
    st.caption(t("no_grants"))
