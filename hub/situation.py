"""The situation map's one question: what is happening where, for this viewer.

Two kinds of answer leave this module, and the policy treats them differently:

- **Counts** (incident hexagons per hour, hidden-record counts) are aggregates. They may
  include records the viewer cannot open (DESIGN §4), read nothing but cell, hour,
  count and highest severity, and leave secret records out unless the viewer may count
  secrets.
- **Features** (incident points, cameras, risk zones, help requests, units) are records.
  They are read through the viewer's row filter only, expose a short list of fields (no
  narratives, no personal fields), and one `map_view` audit entry per answer names how
  many of each were shown and whose they were.

Incident points are sent only when at most `POINT_LIMIT` openable incidents match: past
that, a map of dots says nothing a hexagon does not, and the browser would be sent
megabytes on every rerun.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import h3
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    func,
    literal_column,
    not_,
    select,
)
from sqlalchemy.orm import Session

from geo.cells import text_parents
from hub import models as m
from hub.hourly import whole_days, whole_hours
from hub.rollup import incident_cells, parent_r6
from hub.security import audit
from hub.security.backstop import row_filter
from hub.security.errors import InputError
from hub.security.policy import Principal, openable_clause
from hub.selection import check_selection, in_list, incident_where, parse_utc_hours, utc_hour

# DESIGN §5: the operational picture is for commanders, investigators and analysts.
SITUATION_ROLES = frozenset({"commander", "investigator", "analyst"})
LAYERS = ("incidents", "cameras", "risk_zones", "help_requests", "units")
# Cameras and units are there when asked for: thousands of dots would hide the incidents.
DEFAULT_LAYERS = frozenset({"incidents", "risk_zones", "help_requests"})
POINT_LIMIT = 20_000
MAX_WINDOW = timedelta(days=31)
# Hexagon resolution by how much of the province is selected: ~36 km² cells for the
# province, ~5 km² for one city, ~0.7 km² for districts (H3 average cell areas).
RESOLUTION = {"province": 6, "city": 7, "district": 8}
# A feed is stale when nothing arrived for longer than this (per layer; operational
# feeds arrive continuously, reference feeds such as cameras and zones rarely).
STALE_AFTER = {
    "incidents": timedelta(hours=2),
    "help_requests": timedelta(hours=2),
    "sightings": timedelta(hours=1),
    "units": timedelta(hours=6),
    "cameras": timedelta(days=7),
    "risk_zones": timedelta(days=30),
}
FRESHNESS_DATASETS = tuple(STALE_AFTER)


@dataclass(frozen=True)
class SituationQuery:
    """What the viewer asked to see. Empty filters mean "all"."""

    start: datetime
    end: datetime
    cities: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    severities: tuple[int, ...] = ()
    layers: frozenset[str] = DEFAULT_LAYERS
    points: bool = True  # incident points wanted (else hexagons only, nothing opened)
    by_hour: bool = False  # hexagon counts per hour, for playback

    @property
    def scale(self) -> str:
        """province / city / district: what the selection zooms to."""
        if self.districts:
            return "district"
        return "city" if len(self.cities) == 1 else "province"

    @property
    def resolution(self) -> int:
        return RESOLUTION[self.scale]

    def as_audit(self) -> dict:
        return {
            "kind": "situation",
            "value": f"{self.start:%Y-%m-%dT%H:%M}/{self.end:%Y-%m-%dT%H:%M}",
            "cities": list(self.cities),
            "districts": list(self.districts),
            "types": list(self.types),
            "severities": list(self.severities),
            "layers": sorted(self.layers),
        }


@dataclass(frozen=True)
class Situation:
    """The answer: aggregates for everyone allowed, features the viewer may open."""

    query: SituationQuery
    hexes: pd.DataFrame  # h3, hour (UTC), count, max_severity — counts, policy-aggregate
    points: pd.DataFrame | None  # openable incidents; None when more than POINT_LIMIT
    openable_incidents: int  # counted (total minus hidden) when points is None
    cameras: pd.DataFrame
    risk_zones: pd.DataFrame
    help_requests: pd.DataFrame
    units: pd.DataFrame
    hidden: dict[str, int]  # per layer: matching records the viewer may not open
    freshness: pd.DataFrame  # city_code, dataset, last_arrival, stale
    now: datetime
    audit_seq: int | None = None

    @property
    def total_incidents(self) -> int:
        return int(self.hexes["count"].sum()) if len(self.hexes) else 0

    @property
    def hours(self) -> list[datetime]:
        """Every hour of the window, for playback (including hours with nothing)."""
        first = self.query.start.replace(minute=0, second=0, microsecond=0)
        n = int((self.query.end - first) / timedelta(hours=1))
        return [first + timedelta(hours=i) for i in range(max(n, 1))]


# --- input ---------------------------------------------------------------------------

WINDOWS = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24),
           "7d": timedelta(days=7)}  # fmt: skip


def window(
    kind: str, now: datetime, start: datetime | None = None, end: datetime | None = None
) -> tuple[datetime, datetime]:
    """The UTC window for a preset (`1h` … `7d`) or a custom start and end.

    Raises
    ------
    InputError
        `bad_filter` for an unknown preset; for a custom window, `window_missing`,
        `window_order` (start not before end), `window_future` or `window_too_long`.
    """
    if kind in WINDOWS:
        return now - WINDOWS[kind], now
    if kind != "custom":
        raise InputError("bad_filter", f"unknown window {kind!r}", value=kind)
    if start is None or end is None:
        raise InputError("window_missing", "custom window needs a start and an end")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start >= end:
        raise InputError("window_order", "start must be before end")
    if end > now + timedelta(minutes=5):
        raise InputError("window_future", "the window ends in the future")
    if end - start > MAX_WINDOW:
        raise InputError("window_too_long", "window too long", days=MAX_WINDOW.days)
    return start, end


def _check(query: SituationQuery) -> None:
    unknown_layers = set(query.layers) - set(LAYERS)
    if unknown_layers:
        raise InputError("bad_filter", "unknown layer", value=sorted(unknown_layers)[0])
    check_selection(query, max_window=MAX_WINDOW)


# --- SQL pieces ------------------------------------------------------------------------


def _place(model, query: SituationQuery) -> ColumnElement[bool]:
    clauses = [in_list(model.city_code, query.cities)]
    if query.districts and hasattr(model, "district_code"):
        clauses.append(model.district_code.in_(query.districts))
    return and_(*clauses)


def _to_resolution(frame: pd.DataFrame, column: str, resolution: int) -> pd.Series:
    """Cells of the stored resolution mapped to a coarser one (parents are exact in H3)."""
    cells = frame[column]
    if cells.empty or h3.get_resolution(cells.iloc[0]) == resolution:
        return cells
    return pd.Series(text_parents(cells.to_numpy(dtype=object), resolution), index=cells.index)


def _cell(cell, resolution: int):
    """The cell column to group by: the province's r6 cells are grouped in the store, so a
    week of the province sends a few thousand rows instead of tens of thousands."""
    return parent_r6(cell) if resolution == 6 else cell


def _frame(session: Session, stmt, columns: list[str]) -> pd.DataFrame:
    """Rows as a DataFrame built column-wise (pandas inspects every Row object otherwise,
    which costs more than the query)."""
    rows = session.execute(stmt).all()
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(dict(zip(columns, zip(*rows, strict=True), strict=True)))


# --- the answer ---------------------------------------------------------------------------


def incident_hexes(
    session: Session, query: SituationQuery, *, count_secret: bool,
    viewer: Principal | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Incident counts per H3 cell (and hour, for playback) — an aggregate over every
    matching incident.

    The row filter is bypassed on purpose (DESIGN §4: counts may include what the viewer
    cannot open); only cell, hour, count and the highest severity leave the store.
    Columns: h3, count, max_severity, and hour (UTC) when `query.by_hour`; with `viewer`
    also `hidden`, the count of matching incidents that viewer may not open.

    The whole hours of the window are read from `incident_hourly` (kept current by
    triggers, hub/rollup.py), the part-hours at its ends from the incidents themselves;
    a district selection (resolution 8, finer than the rollup's cells) reads incidents.
    """
    start, end = query.start, query.end
    # The province's cells without playback or a type filter: whole UTC days from
    # `incident_cells` (r6 by day, a third of the hourly rollup's rows for a week).
    days = None
    if query.resolution == 6 and not query.by_hour and not query.types:
        days = whole_days(start, end)
    if days is None:
        parts = _hour_parts(session, query, start, end, count_secret, viewer)
    else:
        parts = [_cells_hexes(session, query, *days, count_secret, viewer)]
        for a, b in ((start, days[0]), (days[1], end)):
            if a < b:
                parts += _hour_parts(session, query, a, b, count_secret, viewer)
    frame = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    values = ["count", "max_severity"] + (["hidden"] if viewer is not None else [])
    names = ["h3", "hour"] if query.by_hour else ["h3"]
    types = dict.fromkeys(values, "int64")
    if frame.empty:
        return frame.astype(types)
    frame["h3"] = _to_resolution(frame, "h3", query.resolution)
    sums = {v: (v, "max" if v == "max_severity" else "sum") for v in values}
    return frame.groupby(names, as_index=False, sort=True).agg(**sums).astype(types)


def _hour_parts(session, query, start, end, count_secret, viewer) -> list[pd.DataFrame]:
    """[start, end): whole hours from `incident_hourly`, the part-hours at its ends (and a
    district selection, finer than the rollup's cells) from the incidents."""
    whole = whole_hours(start, end)
    if query.resolution >= 8 or whole is None:
        return [_raw_hexes(session, query, start, end, count_secret, viewer)]
    parts = [_raw_hexes(session, query, a, b, count_secret, viewer)
             for a, b in ((start, whole[0]), (whole[1], end)) if a < b]  # fmt: skip
    return [*parts, _rollup_hexes(session, query, *whole, count_secret, viewer)]


def _cells_hexes(session, query, start, end, count_secret, viewer) -> pd.DataFrame:
    """The counts of the whole UTC days [start, end) from `incident_cells` (r6, no type
    filter, no playback), with the viewer's hidden count as in `_rollup_hexes`."""
    c = incident_cells.c
    values, aggregates = ["count", "max_severity"], [func.sum(c.n), func.max(c.severity)]
    if viewer is not None:
        values.append("hidden")
        aggregates.append(func.sum(case((openable_clause(viewer, c), 0), else_=c.n)))
    where = [c.day >= start, c.day < end, in_list(c.city_code, query.cities),
             in_list(c.severity, query.severities)]  # fmt: skip
    if not count_secret:
        where.append(c.classification != "secret")
    stmt = select(c.h3_r6, *aggregates).where(*where).group_by(c.h3_r6)
    frame = _frame(session, stmt, ["h3", *values])
    if viewer is None or frame.empty:
        return frame
    granted = _granted_beyond_role(session, viewer, query, start, end, count_secret)
    if len(granted):
        frame = frame.merge(granted, on=["h3"], how="left")
        frame["hidden"] -= frame.pop("granted").fillna(0).astype("int64")
    return frame


def _raw_hexes(session, query, start, end, count_secret, viewer) -> pd.DataFrame:
    """The counts of [start, end) from the incidents (the covering time index)."""
    i = m.Incident
    cell = i.h3_r8 if query.resolution >= 8 else _cell(i.h3_r7, query.resolution)
    keys = [cell, utc_hour(session, i.ts)] if query.by_hour else [cell]
    names = ["h3", "hour"] if query.by_hour else ["h3"]
    values = ["count", "max_severity"]
    aggregates = [func.count(), func.max(i.severity)]
    if viewer is not None:
        values.append("hidden")
        aggregates.append(func.sum(case((_openable(session, viewer, i), 0), else_=1)))
    window = replace(query, start=start, end=end)
    stmt = (
        select(*keys, *aggregates)
        .where(incident_where(window))
        .group_by(*keys)
        .execution_options(policy="aggregate")
    )
    if not count_secret:
        stmt = stmt.where(i.classification != "secret")
    frame = _frame(session, stmt, [*names, *values])
    if query.by_hour:
        frame["hour"] = parse_utc_hours(frame["hour"])
    return frame


def _rollup_hexes(session, query, start, end, count_secret, viewer) -> pd.DataFrame:
    """The counts of the whole hours [start, end) from `incident_hourly`.

    The hidden count is the viewer's role filter over the rollup's columns (data class,
    city, district: all the role part of the policy looks at), less the incidents a
    grant opens beyond the role (a case grant names incidents by their case, which the
    rollup does not carry): those few are counted from the incidents, per cell.
    """
    h = m.IncidentHourly
    cell = _cell(h.h3_r7, query.resolution)
    keys = [cell, h.hour] if query.by_hour else [cell]
    names = ["h3", "hour"] if query.by_hour else ["h3"]
    values = ["count", "max_severity"]
    aggregates = [func.sum(h.n), func.max(h.severity)]
    if viewer is not None:
        values.append("hidden")
        aggregates.append(func.sum(case((openable_clause(viewer, h), 0), else_=h.n)))
    where = [h.hour >= start, h.hour < end, in_list(h.city_code, query.cities),
             in_list(h.district_code, query.districts), in_list(h.type_code, query.types),
             in_list(h.severity, query.severities)]  # fmt: skip
    if not count_secret:
        where.append(h.classification != "secret")
    stmt = select(*keys, *aggregates).where(*where).group_by(*keys)
    frame = _frame(session, stmt, [*names, *values])
    if query.by_hour:
        frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    if viewer is None or frame.empty:
        return frame
    granted = _granted_beyond_role(session, viewer, query, start, end, count_secret)
    if len(granted):
        frame = frame.merge(granted, on=names, how="left")
        frame["hidden"] -= frame.pop("granted").fillna(0).astype("int64")
    return frame


def _granted_beyond_role(session, viewer, query, start, end, count_secret) -> pd.DataFrame:
    """Incidents of [start, end) per cell that the viewer's grants open and the role
    does not (empty without grants; hub/security/policy.py `openable_clause`)."""
    i = m.Incident
    names = ["h3", "hour"] if query.by_hour else ["h3"]
    role = openable_clause(viewer, i)
    grants = session.info.get("grants", ()) if session.info.get("principal") == viewer else ()
    full = _openable(session, viewer, i)
    if not grants or str(full) == str(role):
        return pd.DataFrame(columns=[*names, "granted"])
    cell = _cell(i.h3_r7, query.resolution)
    keys = [cell, utc_hour(session, i.ts)] if query.by_hour else [cell]
    stmt = (
        select(*keys, func.count())
        .where(incident_where(replace(query, start=start, end=end)), full, not_(role))
        .group_by(*keys)
        .execution_options(policy="aggregate")
    )
    if not count_secret:
        stmt = stmt.where(i.classification != "secret")
    frame = _frame(session, stmt, [*names, "granted"])
    if query.by_hour:
        frame["hour"] = parse_utc_hours(frame["hour"])
    return frame


_FEATURES: dict[str, tuple[type[m.Base], tuple[str, ...]]] = {
    "incidents": (m.Incident, ("id", "type_code", "severity", "status", "ts", "lon", "lat",
                               "city_code", "district_code", "classification")),
    "cameras": (m.Camera, ("id", "name", "kind", "status", "at_border", "road", "lon", "lat",
                           "city_code", "district_code", "classification")),
    "risk_zones": (m.RiskZone, ("id", "name", "level", "reason", "geometry", "lon", "lat",
                                "valid_from", "valid_to", "city_code", "district_code",
                                "classification")),
    "help_requests": (m.HelpRequest, ("id", "kind", "status", "ts", "lon", "lat", "city_code",
                                      "district_code", "classification")),
    "units": (m.Unit, ("id", "callsign", "kind", "status", "lon", "lat", "station", "status_at",
                       "city_code", "district_code", "classification")),
}  # fmt: skip


def _layer_filter(layer: str, query: SituationQuery) -> ColumnElement[bool]:
    model, _ = _FEATURES[layer]
    if layer == "incidents":
        return incident_where(query)
    if layer == "help_requests":
        # Who still needs help: every unresolved request raised before the window ends,
        # however old. Closed ones are history (and tens of thousands of dots a week).
        # The value is written into the SQL so the partial index of unresolved requests
        # (`ix_help_requests_unresolved_ts`) can be matched to it.
        unresolved = model.status != literal_column("'closed'")
        return and_(unresolved, model.ts < query.end, _place(model, query))
    if layer == "risk_zones":
        # Zones in force at any moment of the window.
        return and_(
            model.valid_from < query.end,
            (model.valid_to.is_(None)) | (model.valid_to >= query.start),
            _place(model, query),
        )
    return _place(model, query)  # cameras and units: where they are now


def _features(
    session: Session,
    principal: Principal,
    layer: str,
    query: SituationQuery,
    *,
    limit: int | None,
    count_secret: bool,
    counted: tuple[int, int] | None = None,
) -> tuple[pd.DataFrame | None, int, int]:
    """(openable rows or None past `limit`, openable count, hidden count) for one layer.

    `counted` is (total, hidden) of the same selection from the aggregate pass (the
    hexagons), when known: what the viewer may open is then total minus hidden, and
    past the limit no row is read at all.
    """
    model, columns = _FEATURES[layer]
    where = _layer_filter(layer, query)
    allowed = _openable(session, principal, model)
    if counted is not None:
        hidden = counted[1]
    else:
        hidden_stmt = select(func.count()).select_from(model).where(where, not_(allowed))
        if not count_secret:
            hidden_stmt = hidden_stmt.where(model.classification != "secret")
        hidden = session.scalar(hidden_stmt.execution_options(policy="aggregate")) or 0
    if limit is not None and counted is not None and counted[0] - hidden > limit:
        return None, counted[0] - hidden, hidden
    stmt = select(*(getattr(model, c) for c in columns)).where(where, allowed)
    if layer in ("incidents", "help_requests"):
        stmt = stmt.order_by(model.ts)
    if limit is not None:
        stmt = stmt.limit(limit + 1)  # a grant may open a few rows the estimate missed
    frame = _frame(session, stmt, list(columns))
    if limit is not None and len(frame) > limit:
        return None, len(frame), hidden
    return frame, len(frame), hidden


def _openable(session: Session, principal: Principal, model) -> ColumnElement[bool]:
    return row_filter(session, principal, model, session.info.get("grants", ()))


def freshness(session: Session, now: datetime) -> pd.DataFrame:
    """When each city's feed of each map layer last arrived, and whether that is stale.

    Every city appears for every layer; a city with no feed yet has no arrival and is
    stale. Reads only feed batch metadata, no records.
    """
    fb = m.FeedBatch
    arrived = session.execute(
        select(fb.city_code, fb.dataset, func.max(fb.finished_at))
        .where(fb.status == "done", fb.dataset.in_(FRESHNESS_DATASETS))
        .group_by(fb.city_code, fb.dataset)
    ).all()
    last = {(c, d): t for c, d, t in arrived}
    cities = session.scalars(select(m.City.adcode).order_by(m.City.adcode)).all()
    rows = []
    for city in cities:
        for dataset, limit in STALE_AFTER.items():
            t = last.get((city, dataset))
            rows.append((city, dataset, t, t is None or now - t > limit))
    frame = pd.DataFrame(rows, columns=["city_code", "dataset", "last_arrival", "stale"])
    frame["last_arrival"] = pd.to_datetime(frame["last_arrival"], utc=True)
    return frame


def situation(
    session: Session, principal: Principal, query: SituationQuery, *, now: datetime,
    count_secret: bool,
) -> Situation:  # fmt: skip
    """Build the situation for `query` and audit what records it showed.

    Raises
    ------
    InputError
        `window_order`, `window_too_long` or `bad_filter` for a query that makes no sense.
    """
    _check(query)
    want_points = "incidents" in query.layers and query.points
    hexes = incident_hexes(
        session, query, count_secret=count_secret, viewer=principal if want_points else None
    )
    counted = (int(hexes["count"].sum()), int(hexes["hidden"].sum())) if want_points else None
    hexes = hexes.drop(columns="hidden", errors="ignore")  # the total is enough
    empty = {layer: pd.DataFrame(columns=list(cols)) for layer, (_, cols) in _FEATURES.items()}
    shown: dict[str, pd.DataFrame] = {}
    hidden: dict[str, int] = {}
    points, openable = None, 0
    for layer in LAYERS:
        if layer not in query.layers or (layer == "incidents" and not query.points):
            continue
        limit = POINT_LIMIT if layer == "incidents" else None
        frame, n, hidden[layer] = _features(
            session, principal, layer, query, limit=limit, count_secret=count_secret,
            counted=counted if layer == "incidents" else None,
        )  # fmt: skip
        if layer == "incidents":
            points, openable = frame, n
            if frame is not None:
                shown[layer] = frame
        else:
            shown[layer] = frame
    touched = [(layer, f) for layer, f in shown.items() if len(f)]
    entry = None
    if touched:
        entry = audit.record(
            session, principal, "map_view", now=now, dataset="situation",
            query=query.as_audit(), result_count=sum(len(f) for _, f in touched),
            record_ids=[f"{layer}:{i}" for layer, f in touched for i in f["id"]],
            owner_cities=[c for _, f in touched for c in f["city_code"].unique()],
            decision="ok",
            detail={"shown": {layer: len(f) for layer, f in touched}, "hidden": hidden},
        )  # fmt: skip
    return Situation(
        query=query,
        hexes=hexes,
        points=points,
        openable_incidents=openable,
        cameras=shown.get("cameras", empty["cameras"]),
        risk_zones=shown.get("risk_zones", empty["risk_zones"]),
        help_requests=shown.get("help_requests", empty["help_requests"]),
        units=shown.get("units", empty["units"]),
        hidden=hidden,
        freshness=freshness(session, now),
        now=now,
        audit_seq=entry.seq if entry is not None else None,
    )
