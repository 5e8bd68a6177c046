"""The map widget: pydeck on the offline boundary base layer, or a LAN style if set."""

from __future__ import annotations

import json

import pydeck as pdk
import streamlit as st
from pydeck.bindings.json_tools import default_serialize

from geo.layers import PROVINCE_VIEW


class CompactDeck(pdk.Deck):
    """A Deck whose JSON has no indentation: pydeck indents by two spaces, which for
    boundary coordinates nearly triples what every rerun sends to the browser. Chinese
    text stays UTF-8 (3 bytes a character) instead of `\\uXXXX` escapes (6)."""

    def to_json(self) -> str:
        return json.dumps(
            self, sort_keys=True, default=default_serialize, separators=(",", ":"),
            ensure_ascii=False,
        )  # fmt: skip


def deck(
    layers: list[pdk.Layer],
    *,
    map_style: str | None,
    tooltip: dict | None = None,
    view: pdk.ViewState = PROVINCE_VIEW,
) -> pdk.Deck:
    """A Deck with no external basemap unless `map_style` (HUB_MAP_STYLE) names one."""
    if map_style:
        # A MapLibre style.json served on the LAN; Carto is pydeck's MapLibre provider.
        return CompactDeck(
            layers=layers,
            initial_view_state=view,
            map_provider="carto",
            map_style=map_style,
            tooltip=tooltip,
        )
    # map_style is left at pydeck's sentinel on purpose: with map_provider=None it tells
    # Streamlit's frontend "no basemap", whereas map_style=None makes it load Carto's.
    return CompactDeck(layers=layers, initial_view_state=view, map_provider=None, tooltip=tooltip)


def show(d: pdk.Deck, *, height: int = 620, key: str | None = None) -> None:
    st.pydeck_chart(d, height=height, key=key)
