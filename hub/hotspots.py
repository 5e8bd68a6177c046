"""Hotspot detection: areas whose last-24-hour count is far above their 28-day baseline.

The test, per area (an H3 cell or a risk zone id):

- Null hypothesis: the area's 24-hour count ``n`` is Poisson with mean
  ``expected = max(baseline_total / baseline_days, FLOOR_PER_DAY)``.
- One-sided p-value: ``P(X >= n | expected)`` (:func:`poisson_upper_tail`, exact).
- Multiple testing: Benjamini-Hochberg across every area passed in, at
  ``alpha`` = 0.01. A scan tests thousands of cells; Bonferroni would ask a
  quiet cell for ~10 events before it could ever alert, while BH controls the
  share of false alarms among the alerts raised, which is what a commander's
  trust in the alert list depends on. BH is valid here because counts of
  different areas are independent (or positively dependent) under the null.
- Flag: BH-adjusted p (q) < ``alpha`` and ``n >= MIN_COUNT`` (3).

Why the floor and the minimum: an area with no events in 28 days has an
empirical mean of 0, under which any single event is "impossible" (p = 0).
``FLOOR_PER_DAY = 1/28`` treats an empty baseline as if one event had happened
in the window (a conventional pseudo-count); the minimum count keeps one or
two incidents from ever alerting on their own, whatever the baseline.

Not modelled: weekly and daily rhythm (the baseline is a flat 28-day mean,
four whole weeks, so weekdays average out; a busy Saturday still looks a little
high, which the minimum count and the 0.01 level absorb) and over-dispersion
(real counts vary more than Poisson; the test is therefore somewhat liberal,
which suits an alert that a human confirms). The baseline should be the 28 days
before the 24-hour window, not overlapping it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

import numpy as np
import pandas as pd

BASELINE_DAYS = 28
ALPHA = 0.01
MIN_COUNT = 3
FLOOR_PER_DAY = 1.0 / BASELINE_DAYS
RESULT_COLUMNS = ("area", "count", "expected", "p_value", "q_value", "flagged")
# Series terms below this share of the running sum no longer change a float64.
_REL_EPS = 1e-17
_MAX_TERMS = 100_000


def poisson_upper_tail(k: int, lam: float) -> float:
    """``P(X >= k)`` for ``X ~ Poisson(lam)``, without scipy.

    Summed in the direction where the terms shrink, starting from the pmf at
    the boundary computed in log space (``math.lgamma``), so it neither
    overflows for large ``k`` nor loses the small tail to ``1 - cdf``
    cancellation: for ``k > lam`` the tail ``sum_{i>=k}`` is added directly; for
    ``k <= lam`` the tail is at least about one half and ``1 - sum_{i<k}`` is
    exact to float precision.

    Parameters
    ----------
    k : int
        Observed count, ``k >= 0``.
    lam : float
        Poisson mean, ``lam > 0``.

    Returns
    -------
    float
        The upper tail probability in [0, 1]; 1 for ``k == 0``.

    Raises
    ------
    ValueError
        If ``k`` is negative or ``lam`` is not a positive finite number.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if not (math.isfinite(lam) and lam > 0):
        raise ValueError(f"lam must be a positive finite number, got {lam}")
    if k == 0:
        return 1.0
    if k > lam:
        term = math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1))
        total, i = term, k
        while term > total * _REL_EPS and i < k + _MAX_TERMS:
            i += 1
            term *= lam / i
            total += term
        return min(total, 1.0)
    # Lower part sum_{i<k}, from i = k-1 downwards (the terms shrink that way).
    i = k - 1
    term = math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1))
    lower = term
    while i > 0 and term > lower * _REL_EPS:
        term *= i / lam
        i -= 1
        lower += term
    return max(0.0, 1.0 - lower)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values).

    Parameters
    ----------
    p_values : numpy.ndarray
        Raw p-values, one per hypothesis.

    Returns
    -------
    numpy.ndarray
        Adjusted values in the same order: ``q_i = min_{j >= rank(i)} p_(j) m / j``,
        capped at 1. Rejecting ``q < alpha`` is the BH step-up procedure at
        level ``alpha``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    # Running minimum from the largest p down makes the adjustment monotone.
    q_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


def _counts_series(counts_24h: Mapping[Hashable, int] | pd.Series) -> pd.Series:
    series = (
        counts_24h if isinstance(counts_24h, pd.Series) else pd.Series(counts_24h, dtype="float64")
    )
    if series.index.has_duplicates:
        raise ValueError("counts_24h: an area appears twice")
    values = series.to_numpy(dtype=np.float64)
    if not (
        np.isfinite(values).all() and (values >= 0).all() and (values == np.round(values)).all()
    ):
        raise ValueError("counts_24h: counts must be non-negative integers")
    return series.astype("int64")


def _baseline_totals(baseline: pd.DataFrame, baseline_days: int) -> pd.Series:
    missing = {"area", "day", "count"} - set(baseline.columns)
    if missing:
        raise ValueError(f"baseline: missing columns {sorted(missing)}; need area, day, count")
    if baseline.empty:
        return pd.Series(dtype="float64")
    counts = baseline["count"].to_numpy(dtype=np.float64)
    if not (np.isfinite(counts).all() and (counts >= 0).all()):
        raise ValueError("baseline: counts must be non-negative")
    days = pd.to_datetime(baseline["day"]).dt.normalize().nunique()
    if days > baseline_days:
        raise ValueError(f"baseline: covers {days} distinct days, more than {baseline_days}")
    return baseline.groupby("area", sort=False)["count"].sum().astype("float64")


def detect_hotspots(
    counts_24h: Mapping[Hashable, int] | pd.Series,
    baseline: pd.DataFrame,
    *,
    baseline_days: int = BASELINE_DAYS,
    alpha: float = ALPHA,
    min_count: int = MIN_COUNT,
    floor_per_day: float = FLOOR_PER_DAY,
) -> pd.DataFrame:
    """Test every area's last-24-hour count against its baseline.

    Parameters
    ----------
    counts_24h : Mapping or pandas.Series
        Area (H3 cell, risk zone id, ...) to its count in the last 24 hours.
        Areas absent here and present in the baseline count 0.
    baseline : pandas.DataFrame
        Daily counts of the ``baseline_days`` days before the window: columns
        ``area``, ``day`` (date-like), ``count``. Days without events may be left
        out; the mean divides by ``baseline_days``, not by the rows present.
    baseline_days : int, default 28
        Length of the baseline window in days.
    alpha : float, default 0.01
        Level of the Benjamini-Hochberg procedure.
    min_count : int, default 3
        Smallest 24-hour count that may be flagged.
    floor_per_day : float, default 1/28
        Smallest expected count per day (see the module notes).

    Returns
    -------
    pandas.DataFrame
        One row per area in either input, columns ``area``, ``count``,
        ``expected`` (per 24 h), ``p_value``, ``q_value`` (BH-adjusted) and
        ``flagged``; flagged areas first, then by p-value.

    Raises
    ------
    ValueError
        If counts are negative or not integers, an area repeats in
        ``counts_24h``, the baseline lacks a column or spans too many days, or
        a parameter is out of range.
    """
    if baseline_days < 1:
        raise ValueError(f"baseline_days must be >= 1, got {baseline_days}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    if not floor_per_day > 0:
        raise ValueError(f"floor_per_day must be > 0, got {floor_per_day}")
    counts = _counts_series(counts_24h)
    totals = _baseline_totals(baseline, baseline_days)
    areas = counts.index.union(totals.index, sort=False)
    if len(areas) == 0:
        return pd.DataFrame(
            {
                "area": pd.Series(dtype="object"),
                "count": pd.Series(dtype="int64"),
                "expected": pd.Series(dtype="float64"),
                "p_value": pd.Series(dtype="float64"),
                "q_value": pd.Series(dtype="float64"),
                "flagged": pd.Series(dtype="bool"),
            }
        )
    n = counts.reindex(areas, fill_value=0).to_numpy(dtype=np.int64)
    expected = np.maximum(
        totals.reindex(areas, fill_value=0.0).to_numpy() / baseline_days, floor_per_day
    )
    # Most areas are quiet; a count of 0 has p = 1 without any work.
    p = np.ones(len(areas))
    for i in np.flatnonzero(n > 0):
        p[i] = poisson_upper_tail(int(n[i]), float(expected[i]))
    q = benjamini_hochberg(p)
    result = pd.DataFrame(
        {
            "area": areas.to_numpy(dtype=object),
            "count": n,
            "expected": expected,
            "p_value": p,
            "q_value": q,
            "flagged": (q < alpha) & (n >= min_count),
        }
    )
    return result.sort_values(
        ["flagged", "p_value", "count"], ascending=[False, True, False], kind="stable"
    ).reset_index(drop=True)
