"""Refusals from the hub shown as one translated sentence, never a stack trace."""

from __future__ import annotations

import streamlit as st

from hub.security.errors import HubError
from ui.i18n import t


def error_text(exc: HubError) -> str:
    """`err_<code>` from the catalogue, filled with the refusal's parameters."""
    try:
        return t(f"err_{exc.code}", **exc.params)
    except KeyError:  # a code or parameter the catalogue does not know yet
        return t("err_generic", code=exc.code)


def show_error(exc: HubError) -> None:
    st.error(error_text(exc), icon=":material/block:")
