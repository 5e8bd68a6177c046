"""Incident counts of a selection grouped by any columns of the hourly rollup: the whole
hours of the window from `incident_hourly` (hub/rollup.py), the part-hours at its two
ends from the incidents. The overview's 30-day charts and district counts read this
instead of aggregating a month of incidents on every visit."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub import models as m
from hub.selection import Selection, in_list, incident_where, parse_utc_hours, utc_hour

COLUMNS = ("hour", "city_code", "district_code", "classification", "type_code", "severity",
           "h3_r7")  # fmt: skip


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
    frame = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    if frame.empty:
        return frame.astype({"count": "int64"})
    keyed = frame[by].astype(object).where(frame[by].notna(), None) if by else frame
    return (frame.assign(**{c: keyed[c] for c in by}).groupby(by, as_index=False, dropna=False)
            ["count"].sum().astype({"count": "int64"}))  # fmt: skip


def _raw(session: Session, sel: Selection, by: list[str], count_secret: bool) -> pd.DataFrame:
    i = m.Incident
    keys = [utc_hour(session, i.ts) if c == "hour" else getattr(i, c) for c in by]
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
    keys = [getattr(h, c) for c in by]
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
