"""Shared caches for province-wide aggregates that every viewer of a role sees alike.

A wall screen refreshes every minute and a dozen command rooms watch the same overview:
computing it once per minute for all of them is the difference between one scan of the
incidents and a dozen. The cache key is the viewer's role and the question, never the
user: the answers below depend on nothing else (aggregates are the same for every user
of a role, DESIGN §4), and the hub checks the role of whoever fills an entry. The
principal is passed with a leading underscore, so it is left out of the key on purpose.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from hub.analytics import Exploration, ExploreQuery, Overview
from hub.overview import ProvinceOverview
from hub.security.policy import Principal
from ui.hub import get_hub


@st.cache_data(ttl=60, show_spinner=False, max_entries=16)
def _overview(role: str, minute: str, _principal: Principal) -> Overview:
    return get_hub().overview(_principal, now=datetime.fromisoformat(minute))


def overview(principal: Principal) -> Overview:
    """The leadership overview, at most a minute old."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    return _overview(principal.role, minute, principal)


@st.cache_data(ttl=300, show_spinner=False, max_entries=256)
def _explore(role: str, query: ExploreQuery, _principal: Principal) -> Exploration:
    return get_hub().explore(_principal, query)


def explore(principal: Principal, query: ExploreQuery) -> Exploration:
    """An Explore pivot; the same selection asked again within 5 minutes is not recounted."""
    return _explore(principal.role, query, principal)


@st.cache_data(ttl=300, show_spinner=False, max_entries=16)
def _province(role: str, _principal: Principal) -> ProvinceOverview:
    return get_hub().province_overview(_principal)


def province_overview(principal: Principal) -> ProvinceOverview:
    """Records per city and data class (counting 10M plate reads takes seconds)."""
    return _province(principal.role, principal)
