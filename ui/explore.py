"""Explore's filter bar and its labelled tables (codes shown as names)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from hub.analytics import DIMENSIONS, ExploreQuery
from hub.codes import label
from ui.i18n import lang, t
from ui.situation import districts_of, kind_filters, place_filters
from ui.tables import LOCAL_TZ

WINDOWS = {"7d": 7, "30d": 30, "90d": 90}


def query_bar(names: dict[str, str], now: datetime) -> ExploreQuery | None:
    """The selection and the grouping; None (with an inline message) for a bad window."""
    tz = ZoneInfo(LOCAL_TZ)
    c = st.columns([3, 3, 3, 3])
    kinds = {**{k: t(f"ex_window_{k}") for k in WINDOWS}, "custom": t("sit_window_custom")}
    kind = c[0].segmented_control(t("sit_window"), list(kinds), format_func=kinds.get,
                                  default="30d", key="ex_window") or "30d"  # fmt: skip
    cities, districts = place_filters(c[1], c[2], names, "ex")
    with c[3].expander(t("ex_more_filters")):
        types, sev = kind_filters("ex")
    dims = {d: t(f"ex_dim_{d}") for d in DIMENSIONS}
    g = st.columns([4, 2, 6])
    rows = g[0].multiselect(t("ex_rows"), list(dims), format_func=dims.get, default=["city"],
                            max_selections=2, placeholder=t("pick_dims"), key="ex_rows")  # fmt: skip
    col = g[1].selectbox(t("ex_columns"), [None, *dims], format_func=lambda d: dims.get(d, "—"),
                         key="ex_col")  # fmt: skip
    if kind == "custom":
        d = st.columns(2)
        start = d[0].date_input(t("sit_from"), now.astimezone(tz).date() - timedelta(days=30))
        end = d[1].date_input(t("sit_to"), now.astimezone(tz).date())
        start_at = datetime.combine(start, time(0), tz)
        end_at = min(datetime.combine(end + timedelta(days=1), time(0), tz), now)
        if start_at >= end_at:
            st.error(t("err_window_order"), icon=":material/event_busy:")
            return None
    else:
        start_at, end_at = now - timedelta(days=WINDOWS[kind]), now
    if not rows:
        st.info(t("ex_pick_rows"))
        return None
    return ExploreQuery(start_at, end_at, tuple(cities), tuple(districts), tuple(types),
                        tuple(sev), tuple(rows), col if col not in rows else None)  # fmt: skip


def readable(frame: pd.DataFrame, names: dict[str, str], column: str | None = None) -> pd.DataFrame:
    """Codes as names and labels, columns titled in the current language.

    Parameters
    ----------
    column
        The dimension spread across the columns (its values are the column headers, which
        are labelled as well: "盗窃", not `theft`).
    """
    out = frame.copy()
    districts = districts_of([])
    maps = {
        "city": lambda c: names.get(c, c), "district": lambda c: districts.get(c, c),
        "type": lambda c: label("incident_type", c, lang()),
        "severity": lambda c: label("severity", str(c), lang()),
        "weekday": lambda d: t(f"weekday_{('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')[d]}"),
    }  # fmt: skip
    for dim, fn in maps.items():
        if dim in out:
            out[dim] = out[dim].map(fn)
    renamed = {d: t(f"ex_dim_{d}") for d in DIMENSIONS if d in out}
    if column in maps:
        renamed |= {c: str(maps[column](c)) for c in out.columns if c not in renamed}
    elif column:
        renamed |= {c: str(c) for c in out.columns if c not in renamed}
    out.columns.name = None
    return out.rename(columns={**renamed, "count": t("chart_incidents")})
