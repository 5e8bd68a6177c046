"""The one Hub (engine, settings) per process, shared by every page and session."""

from __future__ import annotations

import streamlit as st

from hub.service import Hub


@st.cache_resource(show_spinner=False)
def get_hub() -> Hub:
    return Hub.from_settings()
