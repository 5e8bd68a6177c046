"""The incident selection the situation map and Explore both filter by: a UTC window,
cities, districts, incident types and severities (an empty filter means all). One check,
one SQL condition and one hour key serve both, so the two pages cannot disagree about
which incidents a selection holds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol

import pandas as pd
from sqlalchemy import ColumnElement, and_, func, literal, true
from sqlalchemy.orm import Session

from hub import models as m
from hub.codes import code_values
from hub.security.errors import InputError


class Selection(Protocol):
    start: object
    end: object
    cities: tuple[str, ...]
    districts: tuple[str, ...]
    types: tuple[str, ...]
    severities: tuple[int, ...]


def check_selection(sel: Selection, *, max_window: timedelta) -> None:
    """Refuse a selection that names unknown codes or has no sensible window.

    Raises
    ------
    InputError
        `bad_filter` (unknown incident type, severity outside 1-4), `window_order` (a
        naive time, or start not before end), `window_too_long` (past `max_window`).
    """
    unknown_types = set(sel.types) - set(code_values("incident_type"))
    if unknown_types:
        raise InputError("bad_filter", "unknown incident type", value=sorted(unknown_types)[0])
    if set(sel.severities) - {1, 2, 3, 4}:
        raise InputError("bad_filter", "severity is 1 to 4", value=str(sel.severities))
    if sel.start.tzinfo is None or sel.end.tzinfo is None:
        raise InputError("window_order", "window times need a time zone")
    if sel.start >= sel.end:
        raise InputError("window_order", "start must be before end")
    if sel.end - sel.start > max_window:
        raise InputError("window_too_long", "window too long", days=max_window.days)


def in_list(column, values: Iterable) -> ColumnElement[bool]:
    """`column IN values`, or always true for an empty filter."""
    values = list(values)
    return column.in_(values) if values else true()


def incident_where(sel: Selection) -> ColumnElement[bool]:
    """SQL condition: the incidents of the selection (no policy: callers add it)."""
    i = m.Incident
    return and_(
        i.ts >= sel.start,
        i.ts < sel.end,
        in_list(i.city_code, sel.cities),
        in_list(i.district_code, sel.districts),
        in_list(i.type_code, sel.types),
        in_list(i.severity, sel.severities),
    )


def utc_hour(session: Session, column):
    """The UTC hour a timestamp falls in, as the backend can group by it cheaply."""
    if session.get_bind().dialect.name == "sqlite":
        return func.substr(column, 1, 13)  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)
    return func.date_trunc(literal("hour"), column)


def parse_utc_hours(values: pd.Series) -> pd.Series:
    """`utc_hour` values as aware UTC timestamps."""
    if values.empty:
        return pd.Series([], dtype="datetime64[us, UTC]")
    if isinstance(values.iloc[0], str):
        return pd.to_datetime(values, format="%Y-%m-%d %H", utc=True)
    return pd.to_datetime(values, utc=True)
