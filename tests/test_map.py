"""The map widget draws the boundaries as its base layer and names no tile server unless
HUB_MAP_STYLE points at one on the LAN."""

from __future__ import annotations

import json

from geo.layers import city_layer, district_layer, label_layer
from ui.map import deck


def _spec(map_style):
    return json.loads(
        deck([city_layer(), district_layer(), label_layer("city")], map_style=map_style).to_json()
    )


def test_offline_by_default():
    spec = _spec(None)
    text = json.dumps(spec)
    assert "http" not in text, "no URL of any tile or style server"
    assert spec.get("mapStyle") == "__MAP_STYLE__"  # Streamlit's "no basemap" marker
    assert [layer["@@type"] for layer in spec["layers"]] == [
        "GeoJsonLayer",
        "GeoJsonLayer",
        "TextLayer",
    ]


def test_lan_style_when_configured():
    spec = _spec("http://tiles.lan/styles/basic/style.json")
    assert spec["mapStyle"] == "http://tiles.lan/styles/basic/style.json"
    assert spec["mapProvider"] == "carto"


def test_labels_are_chinese_with_auto_character_set():
    spec = _spec(None)
    labels = spec["layers"][2]
    assert labels["characterSet"] == "auto"
    assert "合肥市" in {row["name"] for row in labels["data"]}
    assert labels["fontFamily"].startswith("Noto Sans CJK SC")


def test_boundaries_payload_is_small():
    assert len(deck([city_layer(), district_layer()], map_style=None).to_json()) < 600_000
