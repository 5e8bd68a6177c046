"""Refusals from the hub shown as one translated sentence, never a stack trace."""

from __future__ import annotations

import streamlit as st

from hub.security.errors import HubError
from ui.i18n import t
from ui.text import plain


def error_text(exc: HubError) -> str:
    """`err_<code>` from the catalogue, filled with the refusal's parameters (text ones,
    which may echo what was typed, shown as text)."""
    params = {k: plain(v) if isinstance(v, str) else v for k, v in exc.params.items()}
    try:
        return t(f"err_{exc.code}", **params)
    except KeyError:  # a code or parameter the catalogue does not know yet
        return t("err_generic", code=exc.code)


def show_error(exc: HubError) -> None:
    """Show a refusal; a session the hub found ended signs the person out instead."""
    if exc.code == "session_ended":
        from ui.auth import end_session  # ui.auth shows sign-in errors through this module

        end_session(str(exc.params.get("why", "access_changed")))
        st.rerun()
    st.error(error_text(exc), icon=":material/block:")
