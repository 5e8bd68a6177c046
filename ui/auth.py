"""Sign-in, the end of a session (idle, too old, or its access changed) and the page
guard. The guard is UI hygiene (a page left out of navigation cannot be opened by URL);
access to records, and whether a session is still current, are enforced in the hub."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import streamlit as st

from hub.security.errors import HubError
from hub.security.policy import Principal
from ui.errors import show_error
from ui.frame import hub_or_stop
from ui.i18n import t
from ui.registry import PAGES_BY_KEY
from ui.text import plain

_KEY = "principal"
_SEEN = "last_seen"
# Why the last session ended, shown once on the sign-in form.
_ENDED = "session_ended_why"
_MESSAGES = {
    "idle": "signed_out_idle",
    "too_long": "id_session_too_long",
    "access_changed": "id_session_access_changed",
}


def end_session(why: str) -> None:
    """Sign the person out (audited with `why`) and say why on the sign-in form.

    `why` is ``idle``, ``too_long`` or ``access_changed`` (the hub's ``session_ended``).
    """
    principal = st.session_state.pop(_KEY, None)
    if principal is not None:
        hub_or_stop().sign_out(principal, why="idle" if why == "idle" else "session_ended")
    st.session_state[_ENDED] = why if why in _MESSAGES else "access_changed"


@contextmanager
def session_guard() -> Iterator[None]:
    """Around a signed-in run: a hub call that finds the session ended (locked, role
    changed, password reset, too old) and that no page caught signs the person out."""
    try:
        yield
    except HubError as exc:
        if exc.code != "session_ended":
            raise
        end_session(str(exc.params.get("why", "access_changed")))
        st.rerun()


def current_principal() -> Principal | None:
    """The signed-in principal, or None: a session idle too long, or older than the
    longest allowed, is signed out (audited) first."""
    principal = st.session_state.get(_KEY)
    if principal is None:
        return None
    settings = hub_or_stop().settings
    seen = st.session_state.get(_SEEN, time.time())
    if time.time() - seen > settings.session_idle_minutes * 60:
        end_session("idle")
        return None
    began = principal.signed_in_at
    if began is not None and (datetime.now(UTC) - began).total_seconds() > (
        settings.session_max_hours * 3600
    ):
        end_session("too_long")
        return None
    try:
        # Locked, role changed, password reset? Asked on every rerun: pages cache results.
        hub_or_stop().check_session(principal)
    except HubError as exc:
        if exc.code != "session_ended":
            raise
        end_session(str(exc.params.get("why", "access_changed")))
        return None
    st.session_state[_SEEN] = time.time()
    return principal


def _ended_message() -> None:
    why = st.session_state.pop(_ENDED, None)
    if why is None:
        return
    settings = hub_or_stop().settings
    st.info(
        t(
            _MESSAGES[why],
            minutes=f"{settings.session_idle_minutes:g}",
            hours=f"{settings.session_max_hours:g}",
        )
    )


def sign_in_form() -> None:
    st.title(t("app_title"))
    _ended_message()
    with st.form("sign_in", border=True, width=420):
        st.subheader(t("sign_in"))
        username = st.text_input(t("username"), max_chars=64)
        password = st.text_input(t("password"), type="password", max_chars=256)
        submitted = st.form_submit_button(t("sign_in"), type="primary")
    if submitted:
        try:
            # The client's address drives the per-source throttle (None on localhost).
            principal = hub_or_stop().sign_in(username, password, source=st.context.ip_address)
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
        _ended_message()  # a page left open when its session ended says why
        st.warning(t("please_sign_in"))
        st.stop()
    if principal.role not in spec.roles:
        st.error(t("page_not_allowed"))
        st.stop()
    return principal


def identity_sidebar(principal: Principal, city_names: dict[str, str]) -> None:
    with st.sidebar:
        st.markdown(f"**{plain(principal.display_name)}**")  # an admin typed it: text only
        home = city_names.get(principal.city_code or "", t("province_level"))
        st.caption(plain(f"{t('role_' + principal.role)} · {home}"))
        if st.button(t("sign_out"), icon=":material/logout:"):
            sign_out()
            st.rerun()
