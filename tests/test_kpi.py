"""KPI arithmetic on a fixture whose answers were worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from hub.kpi import PROVINCE, incidents_vs_week, median_decision_time

TODAY = date(2026, 11, 22)
HF, CZ, WH, AQ = "340100", "341100", "340200", "340800"


def _rows(city: str, counts: dict[str, int]) -> list[dict]:
    return [{"city_code": city, "day": day, "count": n} for day, n in counts.items()]


DAILY = pd.DataFrame(
    # 合肥: 10 + 12 + 0 (17th missing) + 8 + 6 + 14 + 6 = 56 over the 7 days: mean 8;
    # today 7 + 5 = 12 (two rows): +50 %. The 14th is outside the window, the 23rd after today.
    _rows(HF, {"2026-11-14": 100, "2026-11-15": 10, "2026-11-16": 12, "2026-11-18": 8,
               "2026-11-19": 6, "2026-11-20": 14, "2026-11-21": 6, "2026-11-23": 99})
    + _rows(HF, {"2026-11-22": 7})
    + _rows(HF, {"2026-11-22": 5})
    # 滁州: only today, 3: mean 0, no change to speak of.
    + _rows(CZ, {"2026-11-22": 3})
    # 芜湖: 7 yesterday: mean 1; nothing today: -100 %.
    + _rows(WH, {"2026-11-21": 7})
)  # fmt: skip


@pytest.fixture(scope="module")
def kpis() -> pd.DataFrame:
    return incidents_vs_week(DAILY, TODAY, cities=[AQ])


def test_city_with_a_gap_in_the_week(kpis):
    row = kpis.loc[HF]
    assert (row["today"], row["mean_7d"], row["change_pct"]) == (12, 8.0, 50.0)


def test_mean_of_zero_gives_no_change(kpis):
    assert kpis.loc[CZ, "today"] == 3 and kpis.loc[CZ, "mean_7d"] == 0.0
    assert kpis.loc[CZ, "change_pct"] is None


def test_nothing_today_is_minus_one_hundred_percent(kpis):
    assert (kpis.loc[WH, "today"], kpis.loc[WH, "mean_7d"]) == (0, 1.0)
    assert kpis.loc[WH, "change_pct"] == -100.0


def test_a_named_city_without_rows_is_listed_as_zeros(kpis):
    assert (kpis.loc[AQ, "today"], kpis.loc[AQ, "mean_7d"], kpis.loc[AQ, "change_pct"]) == (
        0,
        0.0,
        None,
    )


def test_province_is_the_sum_of_the_cities(kpis):
    # Window 56 + 0 + 7 = 63, mean 9; today 12 + 3 + 0 = 15: (15 - 9) / 9 = +66.7 %.
    row = kpis.loc[PROVINCE]
    assert (row["today"], row["mean_7d"]) == (15, 9.0)
    assert row["change_pct"] == pytest.approx(200 / 3)
    assert list(kpis.index) == sorted([HF, CZ, WH, AQ]) + [PROVINCE]


def test_dates_as_date_objects_and_empty_input():
    frame = DAILY.assign(day=pd.to_datetime(DAILY["day"]).dt.date)
    assert incidents_vs_week(frame, TODAY).loc[HF, "today"] == 12
    empty = incidents_vs_week(pd.DataFrame(columns=["city_code", "day", "count"]), TODAY)
    assert list(empty.index) == [PROVINCE] and empty.loc[PROVINCE, "change_pct"] is None


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="count"):
        incidents_vs_week(DAILY.drop(columns="count"), TODAY)
    with pytest.raises(ValueError, match="negative"):
        incidents_vs_week(DAILY.assign(count=-1), TODAY)
    aware = DAILY.assign(day=pd.to_datetime(DAILY["day"]).dt.tz_localize("UTC"))
    with pytest.raises(ValueError, match="local calendar dates"):
        incidents_vs_week(aware, TODAY)


T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _after(hours: float | None):
    return (T0, None if hours is None else T0 + timedelta(hours=hours))


def test_median_decision_time():
    assert median_decision_time([_after(1), _after(3), _after(None), _after(2)]) == timedelta(
        hours=2
    )
    # Even count: the mean of the middle two.
    assert median_decision_time([_after(h) for h in (1, 2, 3, 4)]) == timedelta(hours=2.5)
    assert median_decision_time([]) is None
    assert median_decision_time([_after(None)]) is None
    with pytest.raises(ValueError, match="before"):
        median_decision_time([_after(-1)])
