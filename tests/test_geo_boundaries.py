"""Boundary loading (geo.boundaries) and city relations (geo.adjacency)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from shapely.geometry import LineString, Point

from geo import boundaries as geo_boundaries
from geo.adjacency import cities_within, city_adjacency
from geo.boundaries import (
    DEFAULT_PATH,
    LEVELS,
    Boundaries,
    display_features,
    label_points,
    load_boundaries,
)
from geo.distance import to_metric

HEFEI, LUAN, HUAINAN, HUANGSHAN = "340100", "341500", "340400", "341000"
# Districts were simplified independently of their cities and stick out of
# them by up to ~225 m (measured); anything beyond that is a data error.
DISTRICT_OVERHANG_M = 300.0
DISPLAY_LIMIT_BYTES = 300_000


@pytest.fixture(scope="module")
def boundaries() -> Boundaries:
    return load_boundaries()


def test_counts_and_columns(boundaries: Boundaries) -> None:
    assert len(boundaries.cities) == 16
    assert len(boundaries.districts) == 104
    assert list(boundaries.cities.columns) == ["adcode", "name", "name_en", "geometry"]
    assert list(boundaries.districts.columns) == [
        "adcode",
        "name",
        "parent_adcode",
        "geometry",
    ]
    assert boundaries.cities.crs.to_epsg() == 4326 and boundaries.districts.crs.to_epsg() == 4326
    assert boundaries.cities["adcode"].is_unique and boundaries.districts["adcode"].is_unique
    assert boundaries.cities["name_en"].notna().all()
    assert boundaries.province_adcode == "340000"


def test_geometry_valid(boundaries: Boundaries) -> None:
    assert boundaries.province.is_valid
    assert boundaries.cities.geometry.is_valid.all()
    assert boundaries.districts.geometry.is_valid.all()


def test_cities_tile_province(boundaries: Boundaries) -> None:
    union = boundaries.cities.geometry.union_all()
    assert union.symmetric_difference(boundaries.province).area / boundaries.province.area < 0.005


def test_districts_inside_parent_city(boundaries: Boundaries) -> None:
    cities = to_metric(boundaries.cities).set_index("adcode").geometry
    districts = to_metric(boundaries.districts)
    for district in districts.itertuples():
        city = cities[district.parent_adcode]
        label = f"{district.name} ({district.adcode})"
        assert city.buffer(DISTRICT_OVERHANG_M).covers(district.geometry), label
        assert district.geometry.intersection(city).area / district.geometry.area > 0.99, label
        assert city.contains(district.geometry.representative_point()), label


def test_loader_is_cached_per_path(boundaries: Boundaries) -> None:
    assert load_boundaries(DEFAULT_PATH) is boundaries
    assert load_boundaries(Path(str(DEFAULT_PATH))) is boundaries


def _feature(level: str, adcode: str, parent: str | None, ring: list) -> dict:
    return {
        "type": "Feature",
        "properties": {
            "adcode": adcode,
            "name": adcode,
            "level": level,
            "parent_adcode": parent,
        },
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


SQUARE = [[117.0, 31.0], [118.0, 31.0], [118.0, 32.0], [117.0, 32.0], [117.0, 31.0]]
# Self-intersecting "bow tie": invalid, must be repaired on load.
BOW_TIE = [[117.0, 31.0], [118.0, 32.0], [118.0, 31.0], [117.0, 32.0], [117.0, 31.0]]


def _write(tmp_path: Path, features: list[dict]) -> Path:
    path = tmp_path / "b.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}),
        encoding="utf-8",
    )
    return path


def test_missing_level_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [_feature("province", "1", None, SQUARE), _feature("city", "2", "1", SQUARE)],
    )
    with pytest.raises(ValueError, match="district"):
        load_boundaries(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_boundaries(tmp_path / "nope.geojson")


def test_invalid_geometry_is_repaired(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            _feature("province", "1", None, SQUARE),
            _feature("city", "2", "1", SQUARE),
            _feature("district", "3", "2", BOW_TIE),
        ],
    )
    loaded = load_boundaries(path)
    district = loaded.districts.geometry.iloc[0]
    assert district.is_valid and district.area == pytest.approx(0.5)
    assert loaded.cities["name_en"].isna().all()


def test_orphan_district_rejected(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            _feature("province", "1", None, SQUARE),
            _feature("city", "2", "1", SQUARE),
            _feature("district", "3", "9", SQUARE),
        ],
    )
    with pytest.raises(ValueError, match="parent"):
        load_boundaries(path)


@pytest.mark.parametrize(("level", "count"), [("province", 1), ("city", 16), ("district", 104)])
def test_display_features_small_and_valid(boundaries: Boundaries, level: str, count: int) -> None:
    collection = display_features(level)
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == count
    assert len(json.dumps(collection, ensure_ascii=False).encode("utf-8")) < DISPLAY_LIMIT_BYTES
    for feature in collection["features"]:
        assert {"adcode", "name"} <= feature["properties"].keys()
        assert shapely.geometry.shape(feature["geometry"]).is_valid
    if level == "city":
        assert all("name_en" in f["properties"] for f in collection["features"])
    if level == "district":
        assert not any("name_en" in f["properties"] for f in collection["features"])


def test_display_features_are_simplified_once_and_each_caller_gets_a_copy() -> None:
    first = display_features("city")
    first["features"][0]["properties"]["fill"] = [1, 2, 3, 4]  # as city_layer decorates
    again = display_features("city")
    assert "fill" not in again["features"][0]["properties"]
    assert again == display_features("city")


def test_display_features_rejects_unknown_level() -> None:
    with pytest.raises(ValueError, match="county"):
        display_features("county")


@pytest.fixture
def display_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty display cache directory; the in-process caches cleared around the test."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(geo_boundaries, "CACHE_DIR", cache)
    geo_boundaries._stored_display_json.cache_clear()
    yield cache
    geo_boundaries._stored_display_json.cache_clear()


def _restart() -> None:
    """What a new process starts with: no display shapes in memory."""
    geo_boundaries._stored_display_json.cache_clear()


def test_a_restarted_process_draws_the_same_shapes_without_loading_the_boundaries(
    display_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = {level: display_features(level, tolerance_deg=0.003) for level in LEVELS}
    simplified_here = {
        level: json.loads(geo_boundaries._display_json(level, 0.003, load_boundaries()))
        for level in LEVELS
    }
    assert made == simplified_here
    assert (display_cache / ".gitignore").read_text() == "*\n"  # generated, never committed
    _restart()

    def no_loading(path: Path) -> Boundaries:
        raise AssertionError("the display shapes were rebuilt instead of read back")

    monkeypatch.setattr(geo_boundaries, "_load", no_loading)
    assert {level: display_features(level, tolerance_deg=0.003) for level in LEVELS} == made
    with pytest.raises(ValueError, match="county"):
        display_features("county")


def test_an_edited_boundary_file_is_never_drawn_from_an_old_cache(
    display_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = display_features("city")
    assert {f["properties"]["name"] for f in before["features"]} >= {"合肥市"}
    collection = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    for feature in collection["features"]:
        if feature["properties"]["adcode"] == HEFEI:
            feature["properties"]["name"] = "合肥（更正）"
    edited = tmp_path / "edited" / DEFAULT_PATH.name  # the same name, other contents
    edited.parent.mkdir()
    edited.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(geo_boundaries, "DEFAULT_PATH", edited)
    _restart()
    after = {f["properties"]["adcode"]: f for f in display_features("city")["features"]}
    assert after[HEFEI]["properties"]["name"] == "合肥（更正）"
    assert after[HEFEI]["geometry"] == next(
        f["geometry"] for f in before["features"] if f["properties"]["adcode"] == HEFEI
    )


@pytest.mark.parametrize("level", ["city", "district"])
def test_label_points_inside(boundaries: Boundaries, level: str) -> None:
    labels = label_points(level)
    frame = boundaries.level(level)
    assert list(labels.columns) == ["adcode", "name", "lon", "lat"]
    assert labels["adcode"].tolist() == frame["adcode"].tolist()
    for geometry, lon, lat in zip(frame.geometry, labels["lon"], labels["lat"], strict=True):
        assert geometry.contains(Point(lon, lat))


def test_city_adjacency(boundaries: Boundaries) -> None:
    adjacency = city_adjacency()
    assert set(adjacency) == set(boundaries.cities["adcode"])
    for city, neighbours in adjacency.items():
        assert city not in neighbours
        assert neighbours, f"{city} has no neighbours"
        for other in neighbours:
            assert city in adjacency[other], f"{city}-{other} not symmetric"
    assert LUAN in adjacency[HEFEI] and HUAINAN in adjacency[HEFEI]
    assert HUANGSHAN not in adjacency[HEFEI]


def test_city_adjacency_tolerance_only_adds() -> None:
    strict, loose = city_adjacency(tolerance_m=0), city_adjacency(tolerance_m=20_000)
    assert all(strict[c] <= loose[c] for c in strict)
    # Hefei and Huangshan are ~70 km apart at their closest.
    assert HUANGSHAN not in loose[HEFEI]
    assert HUANGSHAN in city_adjacency(tolerance_m=80_000)[HEFEI]


def test_cities_within() -> None:
    hefei_centre = Point(117.2272, 31.8206)
    assert cities_within(hefei_centre, 0) == [HEFEI]
    near = cities_within(hefei_centre, 60_000)
    assert HEFEI in near and HUAINAN in near and HUANGSHAN not in near
    assert near == sorted(near)
    # A route from Hefei to Huangshan crosses at least the cities in between.
    route = LineString([(117.2272, 31.8206), (118.3375, 29.7147)])
    assert {HEFEI, HUANGSHAN} <= set(cities_within(route, 0))
    assert cities_within(Point(-0.1276, 51.5072), 10_000) == []
    with pytest.raises(ValueError):
        cities_within(hefei_centre, -1)
