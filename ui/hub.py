"""The one Hub (engine, settings) per process, shared by every page and session."""

from __future__ import annotations

import gc

import streamlit as st

from geo.boundaries import display_features
from hub.service import Hub

_settled = False
# The display shapes the maps draw (geo.layers): read from their cache file, or made once.
MAP_SHAPES = (("city", 0.005), ("district", 0.003))


@st.cache_resource(show_spinner=False)
def get_hub() -> Hub:
    hub = Hub.from_settings()
    settle_heap()
    return hub


def settle_heap() -> None:
    """Once per process, after start-up: load what every map needs, then move all that is
    alive into the collector's permanent generation (`gc.freeze`).

    Libraries, boundaries and code tables live as long as the process, yet a full
    collection would walk all of them again whenever a rerun allocates many small
    objects (a query of tens of thousands of rows does): on the province store that
    added 0.1 s to one situation-map rerun in three. Frozen objects are never scanned;
    garbage made later is collected as before.
    """
    global _settled
    if _settled:  # a cleared resource cache opens a new Hub; the heap is settled already
        return
    for level, tolerance in MAP_SHAPES:
        display_features(level, tolerance_deg=tolerance)
    # The young generations only: a full collection here walks the whole start-up heap
    # (0.1-0.2 s of the first visit) to find a few dozen unreachable objects, which the
    # freeze then keeps; start-up's short-lived garbage is young and collected.
    gc.collect(1)
    gc.freeze()
    _settled = True
