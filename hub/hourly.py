"""Incident counts of a selection grouped by any columns of the hourly rollup: the whole
hours of the window from `incident_hourly` (hub/rollup.py), the part-hours at its two
ends from the incidents. `series` counts the whole window by one dimension (city, type
or district) from `incident_series` instead, a table thousands of rows long where
`incident_hourly` has one row per incident or so: the overview's 30-day charts and
district counts read those on a first visit instead of a month of rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from hub import models as m
from hub.rollup import SERIES, incident_cells, incident_series, parent_r6
from hub.selection import Selection, in_list, incident_where, parse_utc_hours, utc_hour

COLUMNS = ("hour", "city_code", "district_code", "classification", "type_code", "severity",
           "h3_r7", "h3_r6")  # fmt: skip


def _key(session: Session, model, name: str):
    """The grouping key `name` over `model` (the incidents or the hourly rollup)."""
    if name == "hour" and model is m.Incident:
        return utc_hour(session, model.ts)
    if name == "h3_r6":  # grouped in the store: a few thousand rows, not tens of thousands
        return parent_r6(model.h3_r7)
    return getattr(model, name)


def whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """[first, last): the whole UTC hours inside [start, end), None if there are none."""
    first = start.replace(minute=0, second=0, microsecond=0)
    first += timedelta(hours=1) if first < start else timedelta(0)
    last = end.replace(minute=0, second=0, microsecond=0)
    return (first, last) if first < last else None


def counts(session: Session, sel: Selection, by: list[str], *, count_secret: bool) -> pd.DataFrame:
    """Matching incidents per `by` (names from `COLUMNS`; `hour` is the UTC hour, as
    aware timestamps), with a `count` column; no district is None. An aggregate: the
    row filter is not applied (DESIGN §4), secret ones only with `count_secret`."""
    whole = whole_hours(sel.start, sel.end)
    edges = [(sel.start, sel.end)] if whole is None else [
        (a, b) for a, b in ((sel.start, whole[0]), (whole[1], sel.end)) if a < b]  # fmt: skip
    parts = [_raw(session, replace(sel, start=a, end=b), by, count_secret) for a, b in edges]
    if whole is not None:
        parts.append(_rolled(session, sel, *whole, by, count_secret))
    return _combined(parts, by)


@dataclass(frozen=True)
class _Window:
    """A selection of every incident of [start, end)."""

    start: datetime
    end: datetime
    cities: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    severities: tuple[int, ...] = ()


def series(
    session: Session, name: str, start: datetime, end: datetime, *, by_hour: bool,
    count_secret: bool,
) -> pd.DataFrame:  # fmt: skip
    """Every incident of [start, end) counted by one dimension: `name` is ``city``,
    ``type`` or ``district`` (columns city_code, type_code or district_code, no district
    being None), then `hour` (UTC, aware) when `by_hour`, then `count`. The whole hours
    come from `incident_series`, the part-hours at the ends from the incidents. An
    aggregate, as `counts`."""
    by = [SERIES[name], *(["hour"] if by_hour else [])]
    window = _Window(start, end)
    whole = whole_hours(start, end)
    edges = [(start, end)] if whole is None else [
        (a, b) for a, b in ((start, whole[0]), (whole[1], end)) if a < b]  # fmt: skip
    parts = [_raw(session, replace(window, start=a, end=b), by, count_secret) for a, b in edges]
    if whole is not None:
        s = incident_series.c
        # The hour as the driver returns it (text on SQLite), converted once per column
        # below instead of once per row.
        keys = [s.key, *([type_coerce(s.hour, String)] if by_hour else [])]
        where = [s.series == name, s.hour >= whole[0], s.hour < whole[1]]
        if not count_secret:
            where.append(s.classification != "secret")
        rows = session.execute(select(*keys, func.sum(s.n)).where(*where).group_by(*keys)).all()
        frame = pd.DataFrame(
            dict(zip([*by, "count"], zip(*rows, strict=True), strict=True)) if rows
            else {c: [] for c in [*by, "count"]}
        )  # fmt: skip
        if by_hour:
            frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
        if name == "district":  # kept as '' for "no district"
            frame["district_code"] = frame["district_code"].replace("", None)
        parts.append(frame)
    return _combined(parts, by)


def whole_days(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """[first, last): the whole UTC days inside [start, end), None if there are none."""
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    first += timedelta(days=1) if first < start else timedelta(0)
    last = end.replace(hour=0, minute=0, second=0, microsecond=0)
    return (first, last) if first < last else None


def province_cells(session: Session, sel: Selection, *, count_secret: bool) -> pd.DataFrame:
    """Matching incidents per H3 r6 cell (columns h3_r6, count), for a selection without
    an incident type filter: the whole UTC days from `incident_cells` (a month of the
    province is ~300k rows there, a million in `incident_hourly`), the rest of the
    window as `counts` does it."""
    if sel.types:
        raise ValueError("incident_cells has no incident type: use counts")
    days = whole_days(sel.start, sel.end)
    if days is None:
        return counts(session, sel, ["h3_r6"], count_secret=count_secret)
    parts = [counts(session, replace(sel, start=a, end=b), ["h3_r6"], count_secret=count_secret)
             for a, b in ((sel.start, days[0]), (days[1], sel.end)) if a < b]  # fmt: skip
    c = incident_cells.c
    where = [c.day >= days[0], c.day < days[1], in_list(c.city_code, sel.cities),
             in_list(c.district_code, sel.districts), in_list(c.severity, sel.severities)]  # fmt: skip
    if not count_secret:
        where.append(c.classification != "secret")
    rows = session.execute(select(c.h3_r6, func.sum(c.n)).where(*where).group_by(c.h3_r6)).all()
    parts.append(pd.DataFrame(rows, columns=["h3_r6", "count"]))
    return _combined(parts, ["h3_r6"])


def _combined(parts: list[pd.DataFrame], by: list[str]) -> pd.DataFrame:
    """The parts' counts added up per `by` (a key missing from a part counts zero)."""
    frame = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    if frame.empty:
        return frame.astype({"count": "int64"})
    keyed = frame[by].astype(object).where(frame[by].notna(), None) if by else frame
    return (frame.assign(**{c: keyed[c] for c in by}).groupby(by, as_index=False, dropna=False)
            ["count"].sum().astype({"count": "int64"}))  # fmt: skip


def _raw(session: Session, sel: Selection, by: list[str], count_secret: bool) -> pd.DataFrame:
    i = m.Incident
    keys = [_key(session, i, c) for c in by]
    stmt = (
        select(*keys, func.count()).where(incident_where(sel)).group_by(*keys)
        .execution_options(policy="aggregate")
    )  # fmt: skip
    if not count_secret:
        stmt = stmt.where(i.classification != "secret")
    frame = pd.DataFrame(session.execute(stmt).all(), columns=[*by, "count"])
    if "hour" in by:
        frame["hour"] = parse_utc_hours(frame["hour"])
    return frame


def _rolled(session, sel, start, end, by, count_secret) -> pd.DataFrame:
    h = m.IncidentHourly
    keys = [_key(session, h, c) for c in by]
    where = [h.hour >= start, h.hour < end, in_list(h.city_code, sel.cities),
             in_list(h.district_code, sel.districts), in_list(h.type_code, sel.types),
             in_list(h.severity, sel.severities)]  # fmt: skip
    if not count_secret:
        where.append(h.classification != "secret")
    rows = session.execute(select(*keys, func.sum(h.n)).where(*where).group_by(*keys)).all()
    frame = pd.DataFrame(rows, columns=[*by, "count"])
    if "hour" in by:
        frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    if "district_code" in by:  # the rollup keeps '' for "no district"
        frame["district_code"] = frame["district_code"].replace("", None)
    return frame
