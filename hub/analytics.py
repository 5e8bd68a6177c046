"""Aggregates for analysts and leadership: the Explore pivot and the Overview KPIs.

Everything here is a count. Counts may include records the viewer cannot open (DESIGN
§4), so every query bypasses the row filter on purpose (`policy="aggregate"`), reads
only grouping columns, and leaves secret records out unless the viewer may count them.
Times are grouped by local (Asia/Shanghai, UTC+8 all year) hour, weekday and day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, true
from sqlalchemy.orm import Session

from geo.cells import text_parents
from hub import hourly as hourly_counts
from hub import kpi, quality, situation
from hub import models as m
from hub.codes import label
from hub.security.errors import InputError
from hub.selection import check_selection, incident_where

LOCAL_TZ = "Asia/Shanghai"
DIMENSIONS = ("city", "district", "type", "severity", "day", "weekday", "hour")
MAX_WINDOW = timedelta(days=366)
EXPLORE_ROLES = frozenset({"analyst"})
OVERVIEW_ROLES = frozenset({"leader", "commander"})


# --- local time in SQL --------------------------------------------------------------------


def _local(session: Session, column, part: str) -> ColumnElement:
    """`part` (hour 0-23, weekday 0=Monday..6, day 'YYYY-MM-DD', time 'HH:MM:SS') of a UTC timestamp, in
    local time, as the backend computes it."""
    if session.get_bind().dialect.name == "sqlite":
        # Stored as naive UTC text; SQLite's date functions take a '+8 hours' modifier.
        if part == "hour":
            return func.cast(func.strftime("%H", column, "+8 hours"), m.Integer)
        if part == "weekday":  # %w is 0=Sunday; shift so 0=Monday like Python
            return (func.cast(func.strftime("%w", column, "+8 hours"), m.Integer) + 6) % 7
        if part == "time":
            return func.strftime("%H:%M:%S", column, "+8 hours")
        return func.date(column, "+8 hours")
    local = func.timezone(literal(LOCAL_TZ), column)
    if part == "time":
        return func.to_char(local, literal("HH24:MI:SS"))
    if part == "hour":
        return func.cast(func.extract("hour", local), m.Integer)
    if part == "weekday":
        return func.cast(func.extract("isodow", local), m.Integer) - 1
    return func.to_char(local, literal("YYYY-MM-DD"))


# --- Explore ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExploreQuery:
    start: datetime
    end: datetime
    cities: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    severities: tuple[int, ...] = ()
    rows: tuple[str, ...] = ("city",)  # group by these (the pivot's rows)
    columns: str | None = None  # and spread this one across columns

    def as_audit(self) -> dict:
        return {
            "kind": "explore",
            "value": f"{self.start:%Y-%m-%dT%H:%M}/{self.end:%Y-%m-%dT%H:%M}",
            "cities": list(self.cities), "districts": list(self.districts),
            "types": list(self.types), "severities": list(self.severities),
            "rows": list(self.rows), "columns": self.columns,
        }  # fmt: skip


@dataclass(frozen=True)
class Exploration:
    query: ExploreQuery
    table: pd.DataFrame  # one row per group: the dimensions asked, then `count`
    total: int
    daily: pd.DataFrame  # day, count
    hour_of_week: pd.DataFrame  # weekday, hour, count
    cells: pd.DataFrame  # h3 (r7, or r6 for the province), count

    @property
    def pivot(self) -> pd.DataFrame:
        """`table` with `columns` spread across (zeros where a combination has none)."""
        q = self.query
        if not q.columns or self.table.empty:
            return self.table
        return (
            self.table.pivot_table(index=list(q.rows), columns=q.columns, values="count",
                                   aggfunc="sum", fill_value=0)
            .reset_index()
        )  # fmt: skip


def _check(q: ExploreQuery) -> None:
    dims = [*q.rows, *([q.columns] if q.columns else [])]
    if not q.rows or len(q.rows) > 2 or len(set(dims)) != len(dims):
        raise InputError("bad_filter", "pick one or two different groupings", value=",".join(dims))
    bad = [d for d in dims if d not in DIMENSIONS]
    if bad:
        raise InputError("bad_filter", "unknown grouping", value=bad[0])
    check_selection(q, max_window=MAX_WINDOW)


def _where(q: ExploreQuery, *, count_secret: bool) -> ColumnElement[bool]:
    if count_secret:
        return incident_where(q)
    return and_(incident_where(q), m.Incident.classification != "secret")


def _dimension(session: Session, name: str) -> ColumnElement:
    i = m.Incident
    return {
        "city": lambda: i.city_code, "district": lambda: i.district_code,
        "type": lambda: i.type_code, "severity": lambda: i.severity,
        "day": lambda: _local(session, i.ts, "day"),
        "weekday": lambda: _local(session, i.ts, "weekday"),
        "hour": lambda: _local(session, i.ts, "hour"),
    }[name]()  # fmt: skip


def _grouped(session: Session, dims: list[str], where) -> pd.DataFrame:
    keys = [_dimension(session, d) for d in dims]
    stmt = (
        select(*keys, func.count()).where(where).group_by(*keys)
        .execution_options(policy="aggregate")
    )  # fmt: skip
    frame = pd.DataFrame(session.execute(stmt).all(), columns=[*dims, "count"])
    for d in ("weekday", "hour", "severity"):
        if d in frame:
            frame[d] = frame[d].astype("int64")
    return frame.sort_values(dims).reset_index(drop=True) if len(frame) else frame


def explore(session: Session, q: ExploreQuery, *, count_secret: bool) -> Exploration:
    """The pivot, the daily series, the hour-of-week grid and the H3 cells of a selection.

    Raises
    ------
    InputError
        `bad_filter`, `window_order` or `window_too_long`.
    """
    _check(q)
    where = _where(q, count_secret=count_secret)
    dims = [*q.rows, *([q.columns] if q.columns else [])]
    table = _grouped(session, dims, where)
    daily = _grouped(session, ["day"], where)
    how = _grouped(session, ["weekday", "hour"], where)
    i = m.Incident
    cells = pd.DataFrame(
        session.execute(
            select(i.h3_r7, func.count()).where(where).group_by(i.h3_r7)
            .execution_options(policy="aggregate")
        ).all(),
        columns=["h3", "count"],
    )  # fmt: skip
    if len(cells) and len(q.cities) != 1 and not q.districts:  # province: coarser cells
        parents = text_parents(cells.h3.to_numpy(dtype=object), 6)
        cells = cells.assign(h3=parents).groupby("h3", as_index=False)["count"].sum()
    return Exploration(q, table, int(table["count"].sum()) if len(table) else 0, daily, how, cells)


def labelled(session: Session, found: Exploration, lang: str = "zh") -> pd.DataFrame:
    """The pivot as people read it: names for cities and districts, labels for types and
    severities (an exported file is read without the code tables at hand)."""
    names = {
        "city": dict(session.execute(select(m.City.adcode, m.City.name)).all()),
        "district": dict(session.execute(select(m.District.adcode, m.District.name)).all()),
    }
    table = found.table.copy()
    for dim in table.columns.drop("count"):
        if dim in names:
            table[dim] = table[dim].map(names[dim]).fillna(table[dim])
        elif dim in ("type", "severity"):
            code_table = "incident_type" if dim == "type" else "severity"
            table[dim] = table[dim].map(lambda v, t=code_table: label(t, str(v), lang))
    q = found.query
    if not q.columns or table.empty:
        return table
    return table.pivot_table(index=list(q.rows), columns=q.columns, values="count",
                             aggfunc="sum", fill_value=0).reset_index()  # fmt: skip


# --- Overview -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    today: date
    incidents: (
        pd.DataFrame
    )  # index cities + "province": today (so far), mean_7d (same time), change_pct
    open_cases: pd.Series  # per city
    active_alerts: pd.Series  # per city
    trend: pd.DataFrame  # city_code, day, count — last 30 local days
    type_mix: pd.DataFrame  # type, count — last 30 days
    hour_of_week: pd.DataFrame  # weekday, hour, count — last 30 days
    districts: pd.DataFrame  # district_code, count — last 7 days
    cross_city_lookups: pd.Series  # per requesting city, today
    decisions_today: int
    median_decision: timedelta | None
    stale_feeds: pd.Series  # per city: map layers whose feed is overdue
    validity: pd.Series  # per city: share of valid rows in the recent feed batches
    unacknowledged: pd.Series  # per recipient city: alerts pushed and not acknowledged
    escalated: pd.Series  # per recipient city: of those, escalated (overdue)
    operations: int  # joint operations running (exercises excluded)

    @property
    def province(self) -> dict:
        return self.incidents.loc[kpi.PROVINCE].to_dict()


def _per_city(session: Session, model, where) -> pd.Series:
    rows = session.execute(
        select(model.city_code, func.count()).where(where).group_by(model.city_code)
        .execution_options(policy="aggregate")
    ).all()  # fmt: skip
    return pd.Series(dict(rows), dtype="int64")


def overview(session: Session, *, now: datetime, count_secret: bool) -> Overview:
    """KPIs per city and for the province, and the charts of the last 30 days."""
    tz = ZoneInfo(LOCAL_TZ)
    today = now.astimezone(tz).date()
    day0 = datetime.combine(today - timedelta(days=29), datetime.min.time(), tz)
    # The 30 days' counts by city, type and UTC hour (from the hourly rollup, the part
    # of the current hour from the incidents); every chart and the KPI derive from it.
    hourly = hourly_counts.counts(
        session, ExploreQuery(day0, now), ["city_code", "type_code", "hour"],
        count_secret=count_secret,
    )  # fmt: skip
    local = hourly["hour"] + pd.Timedelta(hours=8)  # Asia/Shanghai: UTC+8 all year
    trend = (hourly.assign(day=local.dt.strftime("%Y-%m-%d"))
             .groupby(["city_code", "day"], as_index=False)["count"].sum())  # fmt: skip
    type_mix = (hourly.groupby("type_code", as_index=False)["count"].sum()
                .rename(columns={"type_code": "type"}))  # fmt: skip
    hour_of_week = (hourly.assign(weekday=local.dt.day_of_week, hour=local.dt.hour)
                    .groupby(["weekday", "hour"], as_index=False)["count"].sum())  # fmt: skip
    # Today so far against the 7 days before up to the same local time of day: at 09:00
    # a full day's mean would make every morning look like a fall. Whole hours come from
    # the hourly counts; the part of the current hour from one small range query per day.
    cut = now.astimezone(tz)
    first = today - timedelta(days=7)
    days = local.dt.date
    whole = hourly[(days >= first) & (local.dt.hour < cut.hour)]
    week = whole.assign(day=days[whole.index]).groupby(["city_code", "day"])["count"].sum()
    i = m.Incident
    ranges = [
        and_(i.ts >= start, i.ts < start + (cut - cut.replace(minute=0, second=0, microsecond=0)))
        for d in range(8)
        for start in [datetime.combine(first + timedelta(days=d), cut.time(), tz).replace(
            minute=0, second=0, microsecond=0)]
    ]  # fmt: skip
    local_day = _local(session, i.ts, "day")
    partial = session.execute(
        select(i.city_code, local_day, func.count())
        .where(or_(*ranges), _where(ExploreQuery(day0, now), count_secret=count_secret))
        .group_by(i.city_code, local_day)
        .execution_options(policy="aggregate")
    ).all()  # fmt: skip
    for city, day, n in partial:
        key = (city, date.fromisoformat(str(day)))
        week[key] = week.get(key, 0) + n
    week = week.rename("count").reset_index()
    cities = [c for (c,) in session.execute(select(m.City.adcode).order_by(m.City.adcode))]
    incidents = kpi.incidents_vs_week(week, today, cities=cities)
    secret_ok = true() if count_secret else m.Case.classification != "secret"
    open_cases = _per_city(session, m.Case, and_(m.Case.status == "open", secret_ok))
    alert_ok = true() if count_secret else m.Alert.classification != "secret"
    active = _per_city(session, m.Alert, and_(m.Alert.status == "active", alert_ok))
    last7 = datetime.combine(today - timedelta(days=6), datetime.min.time(), tz)
    districts = hourly_counts.counts(
        session, ExploreQuery(last7, now), ["district_code"], count_secret=count_secret
    )
    districts = districts.sort_values("district_code", na_position="last").reset_index(drop=True)
    # Cross-city cooperation today: lookups that touched another city's records, by the
    # looker's city; access decisions today and how long they waited.
    start_today = datetime.combine(today, datetime.min.time(), tz)
    a = m.AuditEntry
    looked = session.execute(
        select(a.city_code, a.owner_cities)
        .where(a.ts >= start_today, a.action.in_(("search", "view", "map_view")),
               a.owner_cities.is_not(None))
    ).all()  # fmt: skip
    cross: dict[str, int] = {}
    for city, owners in looked:
        if city and any(o != city for o in owners.split(",")):
            cross[city] = cross.get(city, 0) + 1
    r = m.AccessRequest
    decided = session.execute(
        select(r.created_at, r.decided_at).where(r.decided_at >= start_today)
    ).all()
    fresh = situation.freshness(session, now)
    stale = fresh[fresh.stale].groupby("city_code").size().reindex(cities, fill_value=0)
    card = quality.scorecard(session, now=now)
    validity = card.groupby("city_code")["validity"].mean() if len(card) else pd.Series(dtype=float)
    ar = m.AlertRecipient
    pending = session.execute(
        select(ar.city_code, func.count(), func.sum(case((ar.escalated, 1), else_=0)))
        .where(ar.acknowledged_at.is_(None)).group_by(ar.city_code)
    ).all()  # fmt: skip
    running = session.scalar(
        select(func.count()).select_from(m.Operation)
        .where(m.Operation.status == "active", m.Operation.exercise_run_id.is_(None))
    )  # fmt: skip
    return Overview(
        unacknowledged=pd.Series({c: n for c, n, _ in pending}, dtype="int64"),
        escalated=pd.Series({c: int(e or 0) for c, _, e in pending}, dtype="int64"),
        operations=int(running or 0),
        stale_feeds=stale.astype("int64"), validity=validity,
        today=today, incidents=incidents, open_cases=open_cases, active_alerts=active,
        trend=trend, type_mix=type_mix, hour_of_week=hour_of_week, districts=districts,
        cross_city_lookups=pd.Series(cross, dtype="int64"), decisions_today=len(decided),
        median_decision=kpi.median_decision_time(decided),
    )  # fmt: skip
