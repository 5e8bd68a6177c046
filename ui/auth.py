"""Sign-in, the end of a session (idle, too old, or its access changed), its resumption
after a reload (from the HttpOnly cookie of `ui.session_route`) and the page guard. The guard is UI hygiene (a page left out of navigation cannot be opened by URL);
access to records, and whether a session is still current, are enforced in the hub."""

from __future__ import annotations

import json
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
from ui.session_route import COOKIE, HEADER, PATH, mounted
from ui.text import plain

_KEY = "principal"
_SEEN = "last_seen"
# This tab's web-session token (kept in the server's memory, never sent to the page), and
# the cookie already tried on this tab (an ended one is not asked about on every rerun).
_TOKEN = "web_session"
_TRIED = "cookie_tried"
# Why the last session ended, shown on the sign-in form until the next sign-in.
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
    token = st.session_state.pop(_TOKEN, None)
    if principal is not None:
        hub_or_stop().sign_out(
            principal, why="idle" if why == "idle" else "session_ended", web_session=token
        )
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
    principal = st.session_state.get(_KEY) or _resume()
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
        hub_or_stop().check_session(principal, web_session=st.session_state.get(_TOKEN))
    except HubError as exc:
        if exc.code != "session_ended":
            raise
        end_session(str(exc.params.get("why", "access_changed")))
        return None
    st.session_state[_SEEN] = time.time()
    return principal


def _resume() -> Principal | None:
    """The principal of this browser's session cookie (a reload, a second tab, a deep
    link opened while signed in), or None; if it has ended, why is kept for
    the sign-in form."""
    token = st.context.cookies.get(COOKIE) if mounted() else None
    if not token or st.session_state.get(_TRIED) == token:
        return None
    st.session_state[_TRIED] = token
    try:
        principal = hub_or_stop().resume_web_session(token, source=st.context.ip_address)
    except HubError as exc:
        if exc.code != "session_ended":
            raise
        if exc.params.get("why") in _MESSAGES:
            st.session_state[_ENDED] = exc.params["why"]
        return None
    st.session_state[_KEY] = principal
    st.session_state[_TOKEN] = token
    st.session_state[_SEEN] = time.time()
    return principal


def _hand_off(code: str) -> None:
    """Give the sign-in's one-time code to the cookie route, then reload: the reload
    resumes the session from the cookie, at the address the person opened (a deep link
    opened while signed out is still there: app.py keeps every page's path)."""
    st.caption(t("session_signing_in"))
    st.html(
        f"""<script>
fetch({json.dumps(PATH)}, {{method: "POST", credentials: "same-origin",
  headers: {{{json.dumps(HEADER)}: "1"}}, body: {json.dumps(code)}}})
  .finally(() => window.location.reload());
</script>""",
        unsafe_allow_javascript=True,
    )


def _ended_message() -> None:
    # Kept until the next sign-in: a rerun of the form (a language switch) still says why.
    why = st.session_state.get(_ENDED)
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
        st.session_state.pop(_ENDED, None)
        if mounted():
            # A session that survives a reload: the cookie is set over HTTP, then reload.
            _hand_off(hub_or_stop().open_web_session(principal))
            return
        st.session_state[_KEY] = principal
        st.session_state[_SEEN] = time.time()
        st.rerun()


def sign_out() -> None:
    """Sign out this browser: its session cookie no longer resumes, in any tab."""
    principal = st.session_state.pop(_KEY, None)
    token = st.session_state.pop(_TOKEN, None)
    if principal is not None:
        hub_or_stop().sign_out(principal, web_session=token)


def guard(page_key: str) -> Principal:
    """First line of every page: stop unless a principal is signed in and may see it."""
    principal = current_principal()
    spec = PAGES_BY_KEY[page_key]
    if principal is None:
        # A page run without app.py's navigation (the first request after a restart when
        # started from app.py) signs in right here, keeping the deep link it was opened at.
        st.warning(t("please_sign_in"))
        sign_in_form()
        st.stop()
    if principal.role not in spec.roles:
        st.error(t("page_not_allowed"))
        st.stop()
    return principal


# Roles whose reach is the whole province (DESIGN §4: the province approver, the analyst and
# the leader see every city alike): their home city (the department sits in Hefei) plays no
# part in what they may see, so they read as the provincial department, not as a city.
PROVINCE_LEVEL = frozenset({"province_approver", "analyst", "leader"})


def home_label(principal: Principal, city_names: dict[str, str]) -> str:
    """Where the signed-in person works, as the sidebar names it: the provincial department
    for province-level roles, else the home city (an account with none: the province)."""
    if principal.role in PROVINCE_LEVEL:
        return t("frame_province_dept")
    return city_names.get(principal.city_code or "", t("province_level"))


def identity_sidebar(principal: Principal, city_names: dict[str, str]) -> None:
    with st.sidebar:
        st.markdown(f"**{plain(principal.display_name)}**")  # an admin typed it: text only
        home = home_label(principal, city_names)
        st.caption(plain(f"{t('role_' + principal.role)} · {home}"))
        if st.button(t("sign_out"), icon=":material/logout:"):
            sign_out()
            st.rerun()
