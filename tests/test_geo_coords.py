"""Coordinate-system conversions (geo.coords) and metric helpers (geo.distance)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import LineString, Point

from geo.coords import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geo.distance import buffer_m, haversine_m, project_xy, utm_crs_for

PEER_DIR = Path(__file__).resolve().parents[2] / "shared/testdata/peer"
COORDS_JSON = PEER_DIR / "coords.json"

# Outside the GCJ-02 rectangle, WGS84 and GCJ-02 must coincide.
ABROAD = {
    "london": (-0.1276, 51.5072),
    "tokyo": (139.6917, 35.6895),
    "new-york": (-74.006, 40.7128),
    "sydney": (151.2093, -33.8688),
}
HEFEI = (117.2272, 31.8206)


def _vector_id(index: int, vector: dict) -> str:
    # Notes are free text and often empty; the first clause names the place or
    # the caveat, otherwise fall back to the source repository.
    tag = (
        re.split(r"[;(]", vector["note"])[0].strip()
        or vector["source"].split(":")[0].split("/")[-1]
    )
    tag = re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")[:40]
    return f"{index:02d}-{vector['from']}-{vector['to']}-{tag}"


def _peer_vectors() -> list:
    # A missing peer directory must fail loudly, never skip: one failing
    # placeholder case carries the message.
    if not COORDS_JSON.is_file():
        return [pytest.param(None, id="coords-json-missing")]
    vectors = json.loads(COORDS_JSON.read_text(encoding="utf-8"))
    return [pytest.param(v, id=_vector_id(i, v)) for i, v in enumerate(vectors)]


@pytest.mark.parametrize("vector", _peer_vectors())
def test_peer_vector_within_tolerance(vector: dict | None) -> None:
    if vector is None:
        pytest.fail(
            f"peer test vectors not found at {COORDS_JSON}; the repository must sit beside shared/"
        )
    lon, lat = convert(*vector["in"], vector["from"], vector["to"])
    error = haversine_m(lon, lat, *vector["out"])
    assert error <= vector["tolerance_m"], (
        f"{error:.4f} m > {vector['tolerance_m']} m ({vector['note']})"
    )


def test_peer_vector_count() -> None:
    assert COORDS_JSON.is_file(), f"peer test vectors not found at {COORDS_JSON}"
    assert len(json.loads(COORDS_JSON.read_text(encoding="utf-8"))) == 94


@pytest.fixture(scope="module")
def china_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    return rng.uniform(73.5, 134.8, 20_000), rng.uniform(18.0, 53.5, 20_000)


def test_round_trip_gcj02(china_points: tuple[np.ndarray, np.ndarray]) -> None:
    lon, lat = china_points
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    # The iterative inverse converges far below the 0.01 m promise.
    assert haversine_m(*back, lon, lat).max() < 0.01


def test_round_trip_bd09(china_points: tuple[np.ndarray, np.ndarray]) -> None:
    lon, lat = china_points
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    # Bounded by Baidu's own closed-form BD->GCJ approximation (~0.2 m).
    assert haversine_m(*back, lon, lat).max() < 1.0


def test_offsets_are_hundreds_of_metres_in_china() -> None:
    gcj = wgs84_to_gcj02(*HEFEI)
    bd = wgs84_to_bd09(*HEFEI)
    assert 100 < haversine_m(*HEFEI, *gcj) < 1000
    assert 500 < haversine_m(*HEFEI, *bd) < 2000


@pytest.mark.parametrize("place", ABROAD)
def test_identity_outside_china(place: str) -> None:
    lon, lat = ABROAD[place]
    assert out_of_china(lon, lat) is True
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_out_of_china_rectangle() -> None:
    assert out_of_china(*HEFEI) is False
    mask = out_of_china(np.array([HEFEI[0], 139.6917]), np.array([HEFEI[1], 35.6895]))
    assert mask.tolist() == [False, True]


def test_gcj_bd_closed_forms_are_near_inverses() -> None:
    lon, lat = bd09_to_gcj02(*gcj02_to_bd09(*HEFEI))
    assert haversine_m(lon, lat, *HEFEI) < 1.0


def test_scalars_and_arrays() -> None:
    lon, lat = wgs84_to_gcj02(*HEFEI)
    assert isinstance(lon, float) and isinstance(lat, float)
    xs = np.array([[HEFEI[0], 118.0], [116.5, 117.0]])
    ys = np.array([[HEFEI[1], 31.0], [33.0, 30.5]])
    original = xs.copy()
    out_lon, out_lat = convert(xs, ys, "wgs84", "bd09")
    assert out_lon.shape == out_lat.shape == (2, 2)
    np.testing.assert_array_equal(xs, original)  # inputs untouched
    assert out_lon[0, 0] == pytest.approx(wgs84_to_bd09(*HEFEI)[0], abs=1e-12)


def test_convert_systems() -> None:
    assert convert(*HEFEI, "cgcs2000", "gcj02") == wgs84_to_gcj02(*HEFEI)
    assert convert(*HEFEI, "WGS84", "cgcs2000") == HEFEI
    assert convert(*HEFEI, "bd09", "bd09") == HEFEI
    assert convert(*HEFEI, "bd09", "wgs84") == bd09_to_wgs84(*HEFEI)


@pytest.mark.parametrize(
    ("src", "dst", "bad"), [("utm50", "wgs84", "utm50"), ("wgs84", "gcj-02", "gcj-02")]
)
def test_convert_unknown_system(src: str, dst: str, bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        convert(*HEFEI, src, dst)


def test_nan_propagates() -> None:
    lon, lat = gcj02_to_wgs84(np.array([np.nan, HEFEI[0]]), np.array([31.0, HEFEI[1]]))
    # A NaN coordinate poisons its own point only, and does not stall the
    # iterative inverse.
    assert np.isnan([lon[0], lat[0]]).all() and np.isfinite([lon[1], lat[1]]).all()


def test_haversine_known_distances() -> None:
    # One degree of latitude on the mean sphere, and Hefei-Nanjing (~150 km).
    assert haversine_m(117.0, 31.0, 117.0, 32.0) == pytest.approx(111_195, rel=1e-4)
    assert haversine_m(117.2272, 31.8206, 118.7969, 32.0603) == pytest.approx(150_400, rel=0.01)
    assert haversine_m(np.zeros(3), np.zeros(3), np.ones(3), np.zeros(3)).shape == (3,)


def test_utm_crs_for() -> None:
    assert utm_crs_for(*HEFEI) == 32650
    assert utm_crs_for(120.5, 31.0) == 32651
    assert utm_crs_for(151.2, -33.9) == 32756
    assert utm_crs_for(180.0, 10.0) == 32660
    with pytest.raises(ValueError):
        utm_crs_for(200.0, 0.0)


def test_project_xy_and_buffer() -> None:
    x, y = project_xy(np.array([117.0, 117.0]), np.array([31.0, 32.0]), 32650)
    assert np.hypot(np.diff(x), np.diff(y))[0] == pytest.approx(110_900, rel=0.005)
    circle = buffer_m(Point(HEFEI), 1000)
    ring_x, ring_y = np.asarray(circle.exterior.coords.xy)
    radii = haversine_m(ring_x, ring_y, *HEFEI)
    assert radii.min() > 990 and radii.max() < 1010
    assert buffer_m(LineString([HEFEI, (117.3, 31.9)]), 50).geom_type == "Polygon"
