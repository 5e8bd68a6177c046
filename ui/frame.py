"""Shared page furniture: the hub handle, the production gate, public reference data."""

from __future__ import annotations

import streamlit as st

from hub.security.policy import Principal
from hub.service import Hub
from hub.settings import SettingsError
from hub.store import StoreError
from ui.hub import get_hub
from ui.i18n import lang, t
from ui.notices import notice_badge
from ui.text import plain


def hub_or_stop() -> Hub:
    """The process's Hub; a one-line message instead of a traceback if the store is down."""
    try:
        return get_hub()
    except (StoreError, SettingsError) as exc:
        st.error(t("store_unavailable", reason=str(exc)))
        st.stop()


@st.cache_resource(show_spinner=False)
def _startup_problems() -> list[str]:
    return get_hub().startup_problems()


def production_gate(hub: Hub) -> None:
    """With HUB_ENV=production, refuse to run while demo keys or passwords are in use."""
    problems = _startup_problems() if hub.settings.is_production else []
    if problems:
        st.error(t("production_refused"))
        for p in problems:
            st.markdown(f"- {plain(p)}")
        st.stop()


@st.cache_data(show_spinner=False)
def _cities() -> dict[str, tuple[str, str]]:
    # Public reference data: safe in the cross-user data cache.
    return get_hub().cities()


def city_names() -> dict[str, str]:
    """adcode -> city name in the current language."""
    i = 0 if lang() == "zh" else 1
    return {code: names[i] for code, names in _cities().items()}


def page_furniture(principal: Principal) -> None:
    """What every signed-in page shows around itself: the notification badge (a fragment
    refreshed every few seconds, with a toast for each new item) at the top of the
    sidebar. app.py calls it once per run, before the page."""
    with st.sidebar:
        notice_badge(principal)
