"""Point-in-polygon assignment (geo.assign)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon, box

from geo.assign import PointAssigner, assign_city_district, random_points_in
from geo.boundaries import Boundaries, load_boundaries


@pytest.fixture(scope="module")
def boundaries() -> Boundaries:
    return load_boundaries()


@pytest.fixture(scope="module")
def district_assigner(boundaries: Boundaries) -> PointAssigner:
    return PointAssigner(list(boundaries.districts["adcode"]), list(boundaries.districts.geometry))


def _naive(codes: list[str], polygons: list, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    # Reference: unindexed covers test per polygon, first polygon wins (walk in
    # reverse so earlier polygons overwrite later ones).
    out = np.full(lon.size, None, dtype=object)
    for code, polygon in reversed(list(zip(codes, polygons, strict=True))):
        out[shapely.intersects_xy(polygon, lon, lat)] = code
    return out


def test_agrees_with_naive_loop(boundaries: Boundaries, district_assigner: PointAssigner) -> None:
    rng = np.random.default_rng(7)
    x0, y0, x1, y1 = boundaries.province.bounds
    lon = rng.uniform(x0 - 0.2, x1 + 0.2, 5_000)
    lat = rng.uniform(y0 - 0.2, y1 + 0.2, 5_000)
    # Polygon vertices lie exactly on (often shared) borders: the hardest case.
    vertices = shapely.get_coordinates(boundaries.districts.geometry.values)[::5]
    lon = np.concatenate([lon, vertices[:, 0]])
    lat = np.concatenate([lat, vertices[:, 1]])
    codes, polygons = (
        list(boundaries.districts["adcode"]),
        list(boundaries.districts.geometry),
    )
    expected = _naive(codes, polygons, lon, lat)
    got = district_assigner.assign(lon, lat)
    assert got.dtype == object
    mismatch = np.flatnonzero(got != expected)
    assert mismatch.size == 0, (
        f"{mismatch.size} mismatches, e.g. at {lon[mismatch[:3]]}, {lat[mismatch[:3]]}"
    )
    assert any(code is None for code in got) and any(code is not None for code in got)


def test_representative_points(boundaries: Boundaries, district_assigner: PointAssigner) -> None:
    points = shapely.point_on_surface(boundaries.districts.geometry.values)
    got = district_assigner.assign(shapely.get_x(points), shapely.get_y(points))
    # Overlap slivers could in principle capture a label point; none do.
    assert got.tolist() == boundaries.districts["adcode"].tolist()


def test_outside_and_invalid_points(district_assigner: PointAssigner) -> None:
    got = district_assigner.assign(
        [-0.1276, 139.69, np.nan, 117.2272], [51.5072, 35.69, 31.8, np.nan]
    )
    assert got.tolist() == [None, None, None, None]
    assert district_assigner.assign(np.array([]), np.array([])).shape == (0,)
    with pytest.raises(ValueError):
        district_assigner.assign([1.0, 2.0], [1.0])


def test_shared_border_gets_one_deterministic_code() -> None:
    left, right = box(0, 0, 1, 1), box(1, 0, 2, 1)
    on_border = ([1.0, 1.0, 1.0], [0.0, 0.5, 1.0])
    assert PointAssigner(["L", "R"], [left, right]).assign(*on_border).tolist() == [
        "L",
        "L",
        "L",
    ]
    # The order of the polygons, not geometry, breaks the tie.
    assert PointAssigner(["R", "L"], [right, left]).assign(*on_border).tolist() == [
        "R",
        "R",
        "R",
    ]
    # Outer boundary points belong to their polygon; just outside to none.
    assigner = PointAssigner(["L", "R"], [left, right])
    assert assigner.assign([0.0, 2.0, 2.0 + 1e-9], [0.0, 1.0, 0.5]).tolist() == [
        "L",
        "R",
        None,
    ]


def test_overlap_and_hole() -> None:
    ring = Polygon(box(0, 0, 4, 4).exterior.coords, [box(1, 1, 3, 3).exterior.coords])
    inner = box(1.5, 1.5, 2.5, 2.5)
    big = box(3, 3, 6, 6)  # overlaps ring's corner
    assigner = PointAssigner(["ring", "inner", "big"], [ring, inner, big])
    lon = np.array([0.5, 2.0, 1.2, 3.5, 5.0])
    lat = np.array([0.5, 2.0, 1.2, 3.5, 5.0])
    assert assigner.assign(lon, lat).tolist() == ["ring", "inner", None, "ring", "big"]


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        PointAssigner(["a"], [])
    with pytest.raises(ValueError):
        PointAssigner([], [])
    with pytest.raises(ValueError, match="positions"):
        PointAssigner(["a"], [shapely.Point(0, 0)])


def test_assign_city_district(boundaries: Boundaries) -> None:
    labels = shapely.point_on_surface(boundaries.districts.geometry.values)
    lon = np.append(shapely.get_x(labels), -0.1276)
    lat = np.append(shapely.get_y(labels), 51.5072)
    cities, districts = assign_city_district(lon, lat)
    assert districts[:-1].tolist() == boundaries.districts["adcode"].tolist()
    assert cities[:-1].tolist() == boundaries.districts["parent_adcode"].tolist()
    assert cities[-1] is None and districts[-1] is None


def test_assign_city_district_consistent(boundaries: Boundaries) -> None:
    rng = np.random.default_rng(3)
    lon, lat = random_points_in(boundaries.province, 20_000, rng)
    cities, districts = assign_city_district(lon, lat, boundaries)
    parent = dict(
        zip(
            boundaries.districts["adcode"],
            boundaries.districts["parent_adcode"],
            strict=True,
        )
    )
    has_district = np.array([d is not None for d in districts])
    has_city = np.array([c is not None for c in cities])
    assert all(
        parent[d] == c for c, d in zip(cities[has_district], districts[has_district], strict=True)
    )
    # The three levels were simplified separately, so ~0.1 % of the province
    # falls between districts (cities still answer) or outside every city.
    assert has_district.mean() > 0.995 and has_city.mean() > 0.995
    assert has_city[~has_district].any()


def test_random_points_in(boundaries: Boundaries) -> None:
    city = boundaries.cities.geometry.iloc[0]
    lon, lat = random_points_in(city, 3_000, np.random.default_rng(11))
    assert lon.shape == lat.shape == (3_000,)
    assert shapely.contains_xy(city, lon, lat).all()
    again = random_points_in(city, 3_000, np.random.default_rng(11))
    np.testing.assert_array_equal(lon, again[0])
    assert random_points_in(city, 0, np.random.default_rng(0))[0].shape == (0,)
    with pytest.raises(ValueError):
        random_points_in(city, -1, np.random.default_rng(0))


def test_random_points_uniform_by_area() -> None:
    # A band from 0 to 60 degrees N: equal-area sampling puts fewer points per
    # degree of latitude near 60 N (cos 60 = 0.5) than near the equator.
    _, lat = random_points_in(box(0, 0, 1, 60), 100_000, np.random.default_rng(5))
    low, high = np.sum(lat < 10), np.sum(lat > 50)
    # Expected 0.576 (uniform in degrees would give 1.0); sampling noise ~1 %.
    expected = (np.sin(np.radians(60)) - np.sin(np.radians(50))) / np.sin(np.radians(10))
    assert high / low == pytest.approx(expected, rel=0.05)
