"""Shared page furniture: the store handle with a clear message when it is down."""

from __future__ import annotations

import streamlit as st

from hub.service import Hub
from hub.store import StoreError
from ui.hub import get_hub
from ui.i18n import t


def hub_or_stop() -> Hub:
    """The process's Hub; a one-line message instead of a traceback if the store is down."""
    try:
        return get_hub()
    except StoreError as exc:
        st.error(t("store_unavailable", reason=str(exc)))
        st.stop()
