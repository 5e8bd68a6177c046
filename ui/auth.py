"""Sign-in, idle sign-out and the page guard. The guard is UI hygiene (a page left out of
navigation cannot be opened by URL); access to records is enforced in the hub."""

from __future__ import annotations

import time

import streamlit as st

from hub.security.errors import HubError
from hub.security.identity import IDLE_MINUTES
from hub.security.policy import Principal
from ui.errors import show_error
from ui.frame import hub_or_stop
from ui.i18n import t
from ui.registry import PAGES_BY_KEY

_KEY = "principal"
_SEEN = "last_seen"


def current_principal() -> Principal | None:
    """The signed-in principal, or None; signs out (audited) after 30 idle minutes."""
    principal = st.session_state.get(_KEY)
    if principal is None:
        return None
    seen = st.session_state.get(_SEEN, time.time())
    if time.time() - seen > IDLE_MINUTES * 60:
        hub_or_stop().sign_out(principal, idle=True)
        st.session_state.pop(_KEY, None)
        st.session_state["signed_out_idle"] = True
        return None
    st.session_state[_SEEN] = time.time()
    return principal


def sign_in_form() -> None:
    st.title(t("app_title"))
    if st.session_state.pop("signed_out_idle", False):
        st.info(t("signed_out_idle", minutes=IDLE_MINUTES))
    with st.form("sign_in", border=True, width=420):
        st.subheader(t("sign_in"))
        username = st.text_input(t("username"), max_chars=64)
        password = st.text_input(t("password"), type="password", max_chars=256)
        submitted = st.form_submit_button(t("sign_in"), type="primary")
    if submitted:
        try:
            principal = hub_or_stop().sign_in(username, password)
        except HubError as exc:
            show_error(exc)
            return
        st.session_state[_KEY] = principal
        st.session_state[_SEEN] = time.time()
        st.rerun()


def sign_out() -> None:
    principal = st.session_state.pop(_KEY, None)
    if principal is not None:
        hub_or_stop().sign_out(principal)


def guard(page_key: str) -> Principal:
    """First line of every page: stop unless a principal is signed in and may see it."""
    principal = current_principal()
    spec = PAGES_BY_KEY[page_key]
    if principal is None:
        st.warning(t("please_sign_in"))
        st.stop()
    if principal.role not in spec.roles:
        st.error(t("page_not_allowed"))
        st.stop()
    return principal


def identity_sidebar(principal: Principal, city_names: dict[str, str]) -> None:
    with st.sidebar:
        st.markdown(f"**{principal.display_name}**")
        home = city_names.get(principal.city_code or "", t("province_level"))
        st.caption(f"{t('role_' + principal.role)} · {home}")
        if st.button(t("sign_out"), icon=":material/logout:"):
            sign_out()
            st.rerun()
