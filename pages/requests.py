"""Requests: my requests, the approver's inbox (urgent first) with decide-with-note, grants in force."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from hub.security.errors import HubError
from ui.auth import guard
from ui.errors import show_error
from ui.frame import city_names, hub_or_stop
from ui.i18n import t
from ui.text import plain

principal = guard("requests")
hub = hub_or_stop()
names = city_names()
st.title(t("requests_heading"))


def table(views) -> pd.DataFrame:
    return pd.DataFrame(
        [{t("col_id"): v.id, t("col_requester"): v.requester, t("col_owner_city"): names.get(v.owner_city, v.owner_city),
          t("col_level"): t("level_" + v.level), t("col_scope"): f"{v.scope_kind}: {v.scope_value}",
          t("purpose"): v.purpose, t("case_no"): v.case_no, t("col_status"): t("status_" + v.status),
          t("col_created"): v.created_at, t("col_note"): v.decision_note or ""} for v in views]
    )  # fmt: skip


if principal.role in ("city_approver", "province_approver"):
    st.subheader(t("inbox"))
    pending = hub.inbox(principal)
    if not pending:
        st.info(t("inbox_empty"))
    for v in pending:
        urgent = "🔴 " if v.urgent else ""
        with st.container(border=True):
            st.markdown(f"{urgent}**#{v.id}** {plain(v.requester)} · {names.get(v.requester_city or '', '')} → "
                        f"{names.get(v.owner_city, v.owner_city)} · {t('level_' + v.level)} · {v.scope_kind}: {plain(v.scope_value)}")  # fmt: skip
            st.caption(
                f"{t('purpose')}: {plain(v.purpose)} · {t('case_no')}: {plain(v.case_no)} · "
                f"{plain(v.justification)}"
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
mine = hub.my_requests(principal)
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
                       t("col_level"): t("level_" + g.level), t("col_scope"): f"{g.scope_kind}: {g.scope_value}",
                       t("col_expires_in"): str(g.expires_at - now).split(".")[0]} for g in grants]),
        hide_index=True, width="stretch",
    )  # fmt: skip
else:
    st.caption(t("no_grants"))
