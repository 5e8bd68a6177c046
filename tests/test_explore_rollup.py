"""Explore counted from the rollups (hub/hourly.py, `incident_series` and `incident_hourly`)
equals counting the incidents themselves, on both backends: the pivot, the daily series,
the hour-of-week grid and the map's cells, for windows that do not start or end on the
hour or the day, with and without filters, with and without secret incidents."""

from __future__ import annotations

from datetime import timedelta

import h3
import pandas as pd
import pytest
from sqlalchemy import select

from hub import analytics
from hub import models as m
from hub.store import session_factory
from tests.conftest import ANCHOR, BACKENDS
from tests.security_support import seeded_copy

TZ = "Asia/Shanghai"
END = ANCHOR - timedelta(hours=2, minutes=17)
QUERIES = {
    # the page's default: the province's month by city (one-dimension series, r6 by day)
    "default": analytics.ExploreQuery(END - timedelta(days=30, minutes=41), END),
    "severity x hour": analytics.ExploreQuery(END - timedelta(days=9, hours=5), END,
                                              rows=("severity",), columns="hour"),
    "one city, district x day": analytics.ExploreQuery(
        END - timedelta(days=7), END, cities=("340100",), rows=("district", "day")),
    "filtered types, weekday": analytics.ExploreQuery(
        END - timedelta(days=20, minutes=5), END, types=("theft", "fraud"), severities=(2, 3),
        rows=("type",), columns="weekday"),
    "districts named": analytics.ExploreQuery(
        END - timedelta(days=3), END, districts=("340102", "340104"), rows=("district",)),
}  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    yield engine
    engine.dispose()


def _raw(engine, q: analytics.ExploreQuery, count_secret: bool) -> pd.DataFrame:
    i = m.Incident
    with session_factory(engine)() as s:
        rows = s.execute(
            select(i.ts, i.city_code, i.district_code, i.type_code, i.severity,
                   i.classification, i.h3_r7)
            .where(i.ts >= q.start, i.ts < q.end).execution_options(policy="validation")
        ).all()  # fmt: skip
    f = pd.DataFrame(rows, columns=["ts", "city", "district", "type", "severity", "cls", "h3"])
    keep = pd.Series(True, index=f.index)
    for column, values in (("city", q.cities), ("district", q.districts), ("type", q.types),
                           ("severity", q.severities)):  # fmt: skip
        if values:
            keep &= f[column].isin(values)
    if not count_secret:
        keep &= f.cls != "secret"
    f = f[keep]
    local = pd.to_datetime(f.ts, utc=True).dt.tz_convert(TZ)
    return f.assign(day=local.dt.strftime("%Y-%m-%d"), weekday=local.dt.day_of_week,
                    hour=local.dt.hour)  # fmt: skip


def _sizes(frame: pd.DataFrame, dims: list[str]) -> dict:
    grouped = frame.groupby(dims, dropna=False).size()
    return {k if isinstance(k, tuple) else (k,): int(v) for k, v in grouped.items()}


def _got(table: pd.DataFrame, dims: list[str]) -> dict:
    table = table.astype(object).where(table.notna(), float("nan"))
    return {tuple(r[d] for d in dims): int(r["count"]) for _, r in table.iterrows()}


@pytest.mark.parametrize("count_secret", [False, True])
@pytest.mark.parametrize("name", list(QUERIES))
def test_explore_equals_counting_the_incidents(engine, name, count_secret) -> None:
    q = QUERIES[name]
    with session_factory(engine)() as s:
        found = analytics.explore(s, q, count_secret=count_secret)
    raw = _raw(engine, q, count_secret)
    assert len(raw) > 0 and found.total == len(raw)
    dims = [*q.rows, *([q.columns] if q.columns else [])]
    assert _got(found.table, dims) == _sizes(raw, dims)
    assert _got(found.daily, ["day"]) == _sizes(raw, ["day"])
    assert _got(found.hour_of_week, ["weekday", "hour"]) == _sizes(raw, ["weekday", "hour"])
    province = len(q.cities) != 1 and not q.districts
    cells = raw.h3.map(lambda c: h3.cell_to_parent(c, 6)) if province else raw.h3
    assert dict(zip(found.cells.h3, found.cells["count"], strict=True)) == cells.value_counts(
    ).to_dict()  # fmt: skip
