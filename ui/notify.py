"""A toast when a decision on one of my requests arrives (checked on every rerun)."""

from __future__ import annotations

import streamlit as st

from hub.security.access import REQUESTER_ROLES
from hub.security.policy import Principal
from hub.service import Hub
from ui.i18n import t

_KEY = "request_status_seen"


def decisions_toast(hub: Hub, principal: Principal) -> None:
    if principal.role not in REQUESTER_ROLES:
        return
    seen: dict[int, str] = dict(st.session_state.get(_KEY, {}))
    for r in hub.my_requests(principal):
        before = seen.get(r.id)
        if before == "pending" and r.status != "pending":
            st.toast(
                t("decision_arrived", id=r.id, status=t("status_" + r.status)),
                icon=":material/approval:",
            )
        seen[r.id] = r.status
    st.session_state[_KEY] = seen
