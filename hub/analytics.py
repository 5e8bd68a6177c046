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

from hub import hourly as hourly_counts
from hub import kpi, situation
from hub import models as m
from hub.codes import label
from hub.security.errors import InputError
from hub.selection import check_selection

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


# Explore's dimensions as columns of the rollups (hub/hourly.py); day, weekday and hour
# are the local ones of the UTC `hour` (Asia/Shanghai is a whole number of hours ahead).
_COLUMN = {"city": "city_code", "district": "district_code", "type": "type_code",
           "severity": "severity"}  # fmt: skip
_SERIES = {"city": "city", "district": "district", "type": "type"}
_TIME = ("day", "weekday", "hour")


def _counted(session: Session, q: ExploreQuery, plain: list[str], by_hour: bool,
             count_secret: bool) -> pd.DataFrame:  # fmt: skip
    """Counts of the selection by the dimensions `plain` (and the UTC hour): from the
    one-dimension series when nothing is filtered and one series holds them all (the
    default view: a few thousand rows for a month of the province), else from the full
    hourly rollup; the part-hours at the window's ends from the incidents either way."""
    filtered = q.cities or q.districts or q.types or q.severities
    columns = [_COLUMN[d] for d in plain]
    if not filtered and len(plain) <= 1 and all(d in _SERIES for d in plain):
        name = _SERIES[plain[0]] if plain else "city"
        frame = hourly_counts.series(session, name, q.start, q.end, by_hour=by_hour,
                                     count_secret=count_secret)  # fmt: skip
        return frame[[*columns, *(["hour"] if by_hour else []), "count"]]
    by = [*columns, *(["hour"] if by_hour else [])]
    return hourly_counts.counts(session, q, by, count_secret=count_secret)


def _by_local(frame: pd.DataFrame, plain: list[str], dims: list[str]) -> pd.DataFrame:
    """`frame` (dimension columns, `hour`, `count`) grouped by `dims` with local time."""
    frame = frame.rename(columns={_COLUMN[d]: d for d in plain})
    if any(d in _TIME for d in dims):
        local = frame["hour"] + pd.Timedelta(hours=8)  # Asia/Shanghai: UTC+8 all year
        frame = frame.assign(day=local.dt.strftime("%Y-%m-%d"), weekday=local.dt.day_of_week,
                             hour=local.dt.hour)  # fmt: skip
    if frame.empty:
        return pd.DataFrame({**{d: [] for d in dims}, "count": []}).astype({"count": "int64"})
    keyed = frame[dims].astype(object).where(frame[dims].notna(), None)
    table = (frame.assign(**{d: keyed[d] for d in dims})
             .groupby(dims, as_index=False, dropna=False)["count"].sum())  # fmt: skip
    for d in ("weekday", "hour", "severity"):
        if d in table:
            table[d] = table[d].astype("int64")
    table["count"] = table["count"].astype("int64")
    return table.sort_values(dims).reset_index(drop=True)


def explore(session: Session, q: ExploreQuery, *, count_secret: bool) -> Exploration:
    """The pivot, the daily series, the hour-of-week grid and the H3 cells of a selection.

    Counted from the rollups the triggers keep (hub/rollup.py, hub/hourly.py) and the
    part-hours at the window's ends from the incidents, never a scan of the window's
    incidents: a month of the province is a million of them.

    Raises
    ------
    InputError
        `bad_filter`, `window_order` or `window_too_long`.
    """
    _check(q)
    dims = [*q.rows, *([q.columns] if q.columns else [])]
    plain = [d for d in dims if d not in _TIME]
    timed = len(plain) < len(dims)
    table = _by_local(_counted(session, q, plain, timed, count_secret), plain, dims)
    hours = _counted(session, q, [], True, count_secret)
    daily = _by_local(hours, [], ["day"])
    how = _by_local(hours, [], ["weekday", "hour"])
    province = len(q.cities) != 1 and not q.districts
    cell = "h3_r6" if province else "h3_r7"  # the province's cells are coarser
    if province and not q.types:
        cells = hourly_counts.province_cells(session, q, count_secret=count_secret)
    else:
        cells = hourly_counts.counts(session, q, [cell], count_secret=count_secret)
    cells = cells.rename(columns={cell: "h3"}).sort_values("h3").reset_index(drop=True)
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


def feed_validity(session: Session) -> pd.Series:
    """Per city: the mean over its feeds (dataset x spec) of the share of valid rows, as
    the quality scorecard (hub/quality.py) computes it, but counted in one grouped query
    instead of building the whole scorecard (every batch's statistics) on a first visit."""
    b = m.FeedBatch
    ok = b.status.in_(("done", "unchanged"))  # the batches `quality._feed_row` weighs
    considered = func.sum(case((ok, b.rows_read - b.rows_duplicate), else_=0))
    rows = session.execute(
        select(b.city_code, considered, func.sum(case((ok, b.rows_rejected), else_=0)))
        .where(b.status != "running")
        .group_by(b.city_code, b.dataset, func.coalesce(b.spec_name, ""))
    ).all()  # fmt: skip
    feeds = pd.DataFrame(
        [(c, (int(n) - int(r)) / int(n) if n else None) for c, n, r in rows],
        columns=["city_code", "validity"],
    )
    feeds["validity"] = pd.to_numeric(feeds["validity"]).astype("float64")
    return feeds.groupby("city_code")["validity"].mean() if len(feeds) else pd.Series(dtype=float)


def overview(session: Session, *, now: datetime, count_secret: bool) -> Overview:
    """KPIs per city and for the province, and the charts of the last 30 days."""
    tz = ZoneInfo(LOCAL_TZ)
    today = now.astimezone(tz).date()
    day0 = datetime.combine(today - timedelta(days=29), datetime.min.time(), tz)
    # The 30 days' counts by city and UTC hour, and by type (the whole hours from the
    # series the triggers keep, hub/rollup.py; the part of the current hour from the
    # incidents): the trend, the hour of week and the KPI derive from the first.
    hourly = hourly_counts.series(
        session, "city", day0, now, by_hour=True, count_secret=count_secret
    )
    local = hourly["hour"] + pd.Timedelta(hours=8)  # Asia/Shanghai: UTC+8 all year
    trend = (hourly.assign(day=local.dt.strftime("%Y-%m-%d"))
             .groupby(["city_code", "day"], as_index=False)["count"].sum())  # fmt: skip
    type_mix = (
        hourly_counts.series(session, "type", day0, now, by_hour=False, count_secret=count_secret)
        .rename(columns={"type_code": "type"}).sort_values("type").reset_index(drop=True)
    )  # fmt: skip
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
    into_hour = cut - cut.replace(minute=0, second=0, microsecond=0)
    ranges = [
        and_(i.ts >= start, i.ts < start + into_hour)
        for d in range(8)
        for start in [datetime.combine(first + timedelta(days=d), cut.time(), tz).replace(
            minute=0, second=0, microsecond=0)]
    ]  # fmt: skip
    local_day = _local(session, i.ts, "day")
    # Only the time ranges (all inside the window) in the WHERE: each is one index range,
    # where with the window's bounds beside them the planner reads the whole month.
    partial = [] if not into_hour else session.execute(
        select(i.city_code, local_day, func.count())
        .where(or_(*ranges), true() if count_secret else i.classification != "secret")
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
    districts = hourly_counts.series(
        session, "district", last7, now, by_hour=False, count_secret=count_secret
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
    validity = feed_validity(session)
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
