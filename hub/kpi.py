"""KPI arithmetic for the leadership overview (DESIGN §5 "Overview"). Pure: the caller
counts incidents per city and local day through the aggregate service and passes them in.

Incidents today against the 7-day mean: the mean is over the seven calendar days before
today (today - 7 to today - 1), days without a row counting as zero, always divided by
seven; today is not part of it. The change is (today - mean) / mean in percent, and
None when the mean is zero (nothing to compare with, rather than an infinite rise).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd

WINDOW_DAYS = 7
PROVINCE = "province"


@dataclass(frozen=True)
class IncidentKpi:
    """Incidents today, the mean of the 7 days before, and the change in percent."""

    today: int
    mean_7d: float
    change_pct: float | None


def _kpi(per_day: pd.Series, today: date) -> IncidentKpi:
    """From counts indexed by day (dates, possibly with gaps)."""
    window = [today - timedelta(days=n) for n in range(WINDOW_DAYS, 0, -1)]
    past = per_day.reindex(window, fill_value=0)
    mean = float(past.sum()) / WINDOW_DAYS
    now = int(per_day.get(today, 0))
    change = None if mean == 0 else (now - mean) / mean * 100.0
    return IncidentKpi(today=now, mean_7d=mean, change_pct=change)


def _days(daily: pd.DataFrame) -> pd.DataFrame:
    missing = {"city_code", "day", "count"} - set(daily.columns)
    if missing:
        raise ValueError(f"daily counts lack columns {sorted(missing)}")
    days = pd.to_datetime(daily["day"])
    if getattr(days.dt, "tz", None) is not None:
        # A UTC timestamp names a different local day for 8 hours of each day: the
        # caller buckets by local day, this module never guesses the zone.
        raise ValueError("days must be local calendar dates, not time zone aware timestamps")
    counts = pd.to_numeric(daily["count"])
    if (counts < 0).any():
        raise ValueError("incident counts cannot be negative")
    return pd.DataFrame(
        {"city_code": daily["city_code"], "day": days.dt.date, "count": counts.astype("int64")}
    )


def incidents_vs_week(
    daily: pd.DataFrame, today: date, *, cities: Iterable[str] = ()
) -> pd.DataFrame:
    """Per city and for the province: incidents today against the 7-day mean.

    Parameters
    ----------
    daily
        Columns ``city_code``, ``day`` (a local calendar date) and ``count``; several rows
        for one city and day are added up; days after `today` are ignored.
    today
        The local calendar date that counts as today.
    cities
        Cities to list even without a single row (all zeros, change None).

    Returns
    -------
    pandas.DataFrame
        Index ``city_code`` (cities in code order, then ``"province"``, the sum of all
        cities); columns ``today`` (int), ``mean_7d`` (float) and ``change_pct``
        (float, or None when the mean is zero).

    Raises
    ------
    ValueError
        For missing columns, negative counts or time zone aware days.
    """
    days = _days(daily)
    per_city = days.groupby(["city_code", "day"])["count"].sum()
    names = sorted(set(days["city_code"]) | set(cities))
    rows = {}
    for city in names:
        known = city in per_city.index.get_level_values(0)
        rows[city] = _kpi(per_city.loc[city] if known else pd.Series(dtype="int64"), today)
    rows[PROVINCE] = _kpi(days.groupby("day")["count"].sum(), today)
    index = pd.Index(list(rows), name="city_code")
    return pd.DataFrame(
        {
            "today": pd.Series([k.today for k in rows.values()], index=index, dtype="int64"),
            "mean_7d": pd.Series([k.mean_7d for k in rows.values()], index=index, dtype="float64"),
            # Object, so that "no comparison" stays None instead of becoming NaN.
            "change_pct": pd.Series(
                [k.change_pct for k in rows.values()], index=index, dtype="object"
            ),
        }
    )


def median_decision_time(
    pairs: Iterable[tuple[datetime, datetime | None]],
) -> timedelta | None:
    """Median time from request to decision.

    Parameters
    ----------
    pairs
        ``(requested_at, decided_at)``; pairs not yet decided (``decided_at`` None) are
        left out, since their time is not known yet.

    Returns
    -------
    datetime.timedelta or None
        The median (the mean of the middle two for an even count); None without any
        decided pair.

    Raises
    ------
    ValueError
        When a decision is before its request: a clock or data error to surface, not
        average away.
    """
    waits = []
    for requested_at, decided_at in pairs:
        if decided_at is None:
            continue
        if decided_at < requested_at:
            raise ValueError(f"decided at {decided_at} before requested at {requested_at}")
        waits.append(decided_at - requested_at)
    return statistics.median(waits) if waits else None
