"""Hotspot detection: the Poisson tail against independent sums, BH, flags."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from hub.hotspots import (
    FLOOR_PER_DAY,
    benjamini_hochberg,
    detect_hotspots,
    poisson_upper_tail,
)


def tail_by_summation(k: int, lam: int | Fraction) -> float:
    """P(X >= k) as exact rational arithmetic on the truncated series, e^-lam apart.

    Independent of the module: no lgamma, no recursion direction, no cancellation
    (the lower sum is subtracted as an exact fraction, then scaled once).
    """
    lam = Fraction(lam)
    lower = sum(lam**i / math.factorial(i) for i in range(k))
    e_lam = Fraction(math.exp(float(lam))).limit_denominator(10**30)
    return float((e_lam - lower) / e_lam) if lower < e_lam else 0.0


def upper_by_direct_sum(k: int, lam: float, terms: int = 400) -> float:
    """The tail as a plain forward sum of the pmf (each term in logs to avoid overflow)."""
    return math.fsum(
        math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1)) for i in range(k, k + terms)
    )


def test_known_value_ten_given_three():
    # P(X >= 10 | 3) = 1 - e^-3 sum_{i<10} 3^i / i! = 0.00110248813...
    expected = 1 - math.exp(-3) * math.fsum(3**i / math.factorial(i) for i in range(10))
    assert expected == pytest.approx(0.00110248813, rel=1e-9)
    assert poisson_upper_tail(10, 3.0) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("k", "lam"),
    [(1, 0.5), (3, 1 / 28), (5, 2.0), (2, 2.0), (4, 7.0), (30, 10.0), (60, 20.0), (15, 15.0)],
)
def test_matches_independent_summation(k, lam):
    assert poisson_upper_tail(k, lam) == pytest.approx(upper_by_direct_sum(k, lam), rel=1e-10)


@pytest.mark.parametrize(("k", "lam"), [(3, 5), (7, 12), (20, 30), (1, 1)])
def test_large_tails_match_exact_rationals(k, lam):
    assert poisson_upper_tail(k, float(lam)) == pytest.approx(tail_by_summation(k, lam), rel=1e-12)


def test_extreme_tail_keeps_precision():
    # 1 - cdf would round to 0 here; the direct tail keeps all digits.
    got = poisson_upper_tail(50, 1.0)
    expected = upper_by_direct_sum(50, 1.0)
    assert 0 < got < 1e-60
    assert got == pytest.approx(expected, rel=1e-10)
    assert poisson_upper_tail(1100, 1000.0) == pytest.approx(
        upper_by_direct_sum(1100, 1000.0, terms=2000), rel=1e-9
    )


def test_tail_edges_and_bad_input():
    assert poisson_upper_tail(0, 4.0) == 1.0
    assert poisson_upper_tail(1, 1e4) == 1.0
    with pytest.raises(ValueError):
        poisson_upper_tail(-1, 1.0)
    with pytest.raises(ValueError):
        poisson_upper_tail(1, 0.0)


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 -> x4/1, x4/2, x4/3, x4/4 = 0.04, 0.06, 0.0533, 0.5;
    # running minimum from the top: 0.04, 0.0533, 0.0533, 0.5.
    np.testing.assert_allclose(benjamini_hochberg(p), [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert benjamini_hochberg(np.array([])).size == 0


def _baseline(per_area_daily: dict, days: int = 28) -> pd.DataFrame:
    day0 = pd.Timestamp("2026-10-01")
    rows = [
        {"area": area, "day": day0 + pd.Timedelta(days=d), "count": count}
        for area, count in per_area_daily.items()
        for d in range(days)
    ]
    return pd.DataFrame(rows, columns=["area", "day", "count"])


def test_synthetic_spike_is_flagged_and_baseline_level_is_not():
    areas = {f"cell{i:03d}": 2 for i in range(200)}
    baseline = _baseline(areas)
    counts = dict.fromkeys(areas, 2)
    counts["cell007"] = 14  # P(X >= 14 | 2) ~ 3e-8: survives BH over 200 areas
    counts["cell008"] = 5  # P(X >= 5 | 2) ~ 0.05: ordinary noise
    result = detect_hotspots(counts, baseline).set_index("area")
    assert result.index[result["flagged"]].tolist() == ["cell007"]
    assert result.loc["cell007", "expected"] == pytest.approx(2.0)
    assert result.loc["cell007", "p_value"] == pytest.approx(upper_by_direct_sum(14, 2.0))
    assert len(result) == 200


def test_bh_correction_matters():
    # p ~ 0.001 alone passes 0.01, but not once 500 quiet areas are tested too.
    lone = detect_hotspots({"a": 8}, _baseline({"a": 2}))
    assert lone["flagged"].tolist() == [True]
    crowd = detect_hotspots({"a": 8}, _baseline({"a": 2, **{f"q{i}": 2 for i in range(500)}}))
    assert not crowd["flagged"].any()


def test_floor_and_minimum_count():
    # No baseline at all: the floor stands in for the mean.
    two = detect_hotspots({"new": 2}, _baseline({}))
    assert two.loc[0, "expected"] == pytest.approx(FLOOR_PER_DAY)
    assert two.loc[0, "p_value"] < 0.01 and not two.loc[0, "flagged"]  # below 3 events
    three = detect_hotspots({"new": 3}, _baseline({}))
    assert three["flagged"].tolist() == [True]
    single = detect_hotspots({"new": 1}, pd.DataFrame(columns=["area", "day", "count"]))
    assert not single["flagged"].any()


def test_missing_baseline_days_count_as_zero():
    # 28 events in one of 28 days is a mean of 1 per day, not 28.
    baseline = pd.DataFrame({"area": ["a"], "day": ["2026-10-05"], "count": [28]})
    result = detect_hotspots({"a": 4}, baseline)
    assert result.loc[0, "expected"] == pytest.approx(1.0)


def test_areas_only_in_baseline_count_zero_and_integer_ids_work():
    result = detect_hotspots({101: 9}, _baseline({101: 1, 202: 1})).set_index("area")
    assert result.loc[202, "count"] == 0 and result.loc[202, "p_value"] == 1.0
    assert bool(result.loc[101, "flagged"])


def test_empty_input():
    result = detect_hotspots({}, pd.DataFrame(columns=["area", "day", "count"]))
    assert result.empty
    assert list(result.columns) == ["area", "count", "expected", "p_value", "q_value", "flagged"]


@pytest.mark.parametrize(
    ("counts", "baseline", "match"),
    [
        ({"a": -1}, _baseline({"a": 1}), "non-negative"),
        ({"a": 1.5}, _baseline({"a": 1}), "integers"),
        ({"a": 1}, pd.DataFrame({"area": ["a"], "count": [1]}), "missing columns"),
        ({"a": 1}, _baseline({"a": 1}, days=30), "distinct days"),
    ],
)
def test_malformed_input_is_refused(counts, baseline, match):
    with pytest.raises(ValueError, match=match):
        detect_hotspots(counts, baseline)
