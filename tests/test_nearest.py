"""Nearest units with ETA: ranking against brute-force haversine, ETA arithmetic, filters."""

from __future__ import annotations

import numpy as np
import pytest

from geo.distance import haversine_m
from geo.nearest import ROAD_FACTOR, TURNOUT_MIN, UnitIndex, bench_nearest, unit_speeds_kmh
from hub.codes import codes

# UTM 50N against a sphere: the projection's scale error in the province (< 0.1 %) plus
# the sphere's (< 0.5 %) bound how far the two distance measures may disagree.
REL_TOL = 0.006


@pytest.fixture(scope="module")
def random_units():
    rng = np.random.default_rng(42)
    n = 3000
    lon = rng.uniform(114.9, 119.6, n)
    lat = rng.uniform(29.4, 34.6, n)
    kind = rng.choice(["patrol_car", "swat", "fire_engine", "ambulance", "hospital"], n)
    ids = np.array([f"U{i:05d}" for i in range(n)])
    return ids, lon, lat, kind, UnitIndex(ids, lon, lat, kind)


def test_ranking_agrees_with_brute_force_haversine(random_units):
    ids, lon, lat, _, index = random_units
    rng = np.random.default_rng(7)
    k = 10
    for qlon, qlat in zip(rng.uniform(115, 119.5, 50), rng.uniform(29.6, 34.4, 50), strict=True):
        got = index.nearest(qlon, qlat, k)
        truth = haversine_m(qlon, qlat, lon, lat)
        order = np.argsort(truth)
        kth = truth[order[k - 1]]
        assert len(got) == k
        assert got["distance_m"].is_monotonic_increasing
        found = truth[np.searchsorted(ids, got["id"].to_numpy())]
        # Same units up to near-ties: nothing returned lies beyond the true k-th
        # distance by more than the metric disagreement, and distances agree.
        assert (found <= kth * (1 + REL_TOL)).all()
        np.testing.assert_allclose(got["distance_m"], found, rtol=REL_TOL)
        # The nearest unit is unambiguous often enough to require an exact match.
        if truth[order[1]] > truth[order[0]] * (1 + 2 * REL_TOL):
            assert got["id"].iloc[0] == ids[order[0]]


def test_nearest_many_matches_single_queries(random_units):
    *_, index = random_units
    rng = np.random.default_rng(3)
    qlon, qlat = rng.uniform(115, 119.5, 20), rng.uniform(29.6, 34.4, 20)
    many = index.nearest_many(qlon, qlat, k=4, kinds=["swat"], max_km=60)
    for q in range(20):
        single = index.nearest(qlon[q], qlat[q], k=4, kinds=["swat"], max_km=60)
        part = many[many["query"] == q]
        assert part["rank"].tolist() == list(range(len(single)))
        assert part["id"].tolist() == single["id"].tolist()
        np.testing.assert_allclose(part["eta_min"], single["eta_min"])


def test_eta_hand_example():
    # A patrol car 10 km due north of the incident: 10 km x 1.3 road factor = 13 km at
    # the table's 60 km/h is 13 min, plus the 1-minute turn-out = 14 min.
    assert unit_speeds_kmh()["patrol_car"] == 60
    lat0 = 31.86
    dlat = 10_000.0 / 110_900.0  # about 10 km of latitude at 32 N; measured below
    index = UnitIndex(["P1"], [117.28], [lat0 + dlat], ["patrol_car"])
    row = index.nearest(117.28, lat0, k=1).iloc[0]
    expected = row["distance_m"] * 1.3 / (60_000 / 60) + 1.0
    assert row["eta_min"] == pytest.approx(expected)
    assert row["distance_m"] == pytest.approx(10_000, rel=0.01)
    assert row["eta_min"] == pytest.approx(14.0, abs=0.15)
    assert (ROAD_FACTOR, TURNOUT_MIN) == (1.3, 1.0)


def test_eta_parameters_and_immobile_kinds():
    index = UnitIndex(
        ["A", "H"],
        [117.28, 117.28],
        [31.95, 31.95],
        ["ambulance", "hospital"],
        road_factor=1.0,
        turnout_min=0.0,
    )
    got = index.nearest(117.28, 31.86, k=2).set_index("id")
    d = got.loc["A", "distance_m"]
    assert got.loc["A", "eta_min"] == pytest.approx(d / (55_000 / 60))
    assert np.isnan(got.loc["H", "eta_min"])  # hospitals are destinations, not responders


def test_speeds_come_from_the_code_table():
    table = {c.code: c.attrs for c in codes("unit_kind")}
    speeds = unit_speeds_kmh()
    assert set(speeds) == set(table)
    for code, attrs in table.items():
        assert speeds[code] == (attrs["speed_kmh"] if attrs["mobile"] else 0)


def test_kinds_filter(random_units):
    _, _, _, kind, index = random_units
    got = index.nearest(117.0, 32.0, k=8, kinds=["fire_engine", "ambulance"])
    assert len(got) == 8
    assert set(got["kind"]) <= {"fire_engine", "ambulance"}
    only_swat = index.nearest(117.0, 32.0, k=5000, kinds=["swat"])
    assert len(only_swat) == int((kind == "swat").sum())
    assert index.nearest(117.0, 32.0, k=3, kinds=["traffic"]).empty  # known, none indexed
    assert index.nearest(117.0, 32.0, k=3, kinds="swat")["kind"].eq("swat").all()
    with pytest.raises(ValueError, match="unknown unit kinds"):
        index.nearest(117.0, 32.0, kinds=["swar"])


def test_max_km(random_units):
    _, lon, lat, _, index = random_units
    got = index.nearest(117.0, 32.0, k=3000, max_km=25)
    truth = haversine_m(117.0, 32.0, lon, lat)
    assert (got["distance_m"] <= 25_000).all()
    # Every unit clearly inside 25 km is found, none clearly outside.
    assert len(got) >= int((truth < 25_000 * (1 - REL_TOL)).sum())
    assert len(got) <= int((truth < 25_000 * (1 + REL_TOL)).sum())
    assert index.nearest(117.0, 32.0, k=5, max_km=0).empty


def test_empty_index():
    index = UnitIndex([], [], [], [])
    assert len(index) == 0
    got = index.nearest(117.0, 32.0, k=5)
    assert got.empty and list(got.columns) == ["id", "kind", "distance_m", "eta_min"]
    many = index.nearest_many([117.0, 118.0], [32.0, 31.0], k=5)
    assert many.empty and list(many.columns) == [
        "query",
        "rank",
        "id",
        "kind",
        "distance_m",
        "eta_min",
    ]


def test_k_larger_than_index():
    index = UnitIndex([1, 2], [117.0, 117.1], [32.0, 32.0], ["swat", "swat"])
    assert index.nearest(117.0, 32.0, k=10)["id"].tolist() == [1, 2]


@pytest.mark.parametrize(
    ("ids", "lon", "lat", "kind", "match"),
    [
        ([1, 2], [117.0], [32.0], ["swat"], "equal length"),
        ([1, 1], [117.0, 117.1], [32.0, 32.0], ["swat", "swat"], "unique"),
        ([1], [32.0], [117.0], ["swat"], "swapped"),  # lat/lon swapped
        ([1], [float("nan")], [32.0], ["swat"], "outside"),
        ([1], [117.0], [32.0], ["tank"], "unknown unit kinds"),
    ],
)
def test_wrong_input_is_refused(ids, lon, lat, kind, match):
    with pytest.raises(ValueError, match=match):
        UnitIndex(ids, lon, lat, kind)


def test_wrong_parameters_are_refused(random_units):
    *_, index = random_units
    with pytest.raises(ValueError, match="k must be"):
        index.nearest(117.0, 32.0, k=0)
    with pytest.raises(ValueError, match="max_km"):
        index.nearest(117.0, 32.0, max_km=-1)
    with pytest.raises(ValueError, match="swapped"):
        index.nearest(32.0, 117.0)
    with pytest.raises(ValueError, match="road_factor"):
        UnitIndex([1], [117.0], [32.0], ["swat"], road_factor=0.5)


def test_bench_returns_figures():
    figures = bench_nearest(n_units=200, n_queries=20, k=3)
    assert set(figures) == {
        "build_ms",
        "single_us_per_query",
        "single_search_us_per_query",
        "many_us_per_query",
    }
    assert all(v > 0 for v in figures.values())
