"""Risk alerts (预警): detected from hotspots or raised by hand, pushed to neighbours,
acknowledged by each recipient city, escalated when nobody does.

- **Scan** (`scan`): incident counts of the last 24 hours against the 28 days before,
  per H3 cell (resolution 7, ≈5 km²) and per risk zone, tested by `hub.hotspots`
  (exact Poisson tail, Benjamini-Hochberg at 0.01). The counts are an aggregate read
  by the system (no viewer): only cell, window and count leave the store. A risk zone
  is counted over the r7 cells whose centre lies inside it (the cell containing its
  centre for a zone smaller than a cell), so one grouped read serves both tests.
  An area already alerted in the last 24 hours is not alerted again.
- **Push** (`push`): recipients from the real boundaries
  (`hub.alert_routing.alert_recipients`): the origin city, every city the area
  touches, and every city within `within_km`.
- **Acknowledge**: a commander or investigator of a recipient city.
- **Escalate** (`escalate_overdue`): a push not acknowledged within `ESCALATE_AFTER`
  is flagged (once) for the overview; the scan runs it too.

Alerts are shared records: a viewer reads them through the row filter, and each read is
audited in the same transaction.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import h3
import pandas as pd
import shapely
from shapely.geometry import Point, Polygon, shape
from sqlalchemy import and_, case, func, select, update
from sqlalchemy.orm import Session

from geo.distance import buffer_m, haversine_m
from hub import models as m
from hub.alert_routing import DEFAULT_WITHIN_KM, alert_recipients
from hub.codes import code_values
from hub.exchange import alert_to_cap
from hub.hotspots import BASELINE_DAYS, detect_hotspots
from hub.response import check_point, clean_text
from hub.security import audit
from hub.security.backstop import row_filter
from hub.security.errors import AccessDenied, InputError
from hub.security.policy import Principal

ALERT_ROLES = frozenset({"commander", "investigator"})
RAISE_ROLES = frozenset({"commander"})
MANUAL_KINDS = ("manual", "fraud_wave")
ESCALATE_AFTER = timedelta(minutes=30)
WINDOW = timedelta(hours=24)
SCAN_RESOLUTION = 7
# Level from how far above its baseline an area is (count ÷ expected per 24 h).
HIGH_RATIO, MEDIUM_RATIO = 5.0, 2.5
MAX_RADIUS_M = 50_000.0


@dataclass(frozen=True)
class ScanResult:
    areas_tested: int
    flagged: int
    created: list[int]
    skipped_recent: int
    escalated: int
    seconds_query: float = 0.0


def area_counts(session: Session, now: datetime) -> tuple[pd.Series, pd.DataFrame]:
    """Per r7 cell: the last-24-hour counts, and the baseline total of the 28 days before.

    An aggregate without a viewer: the row filter is bypassed on purpose
    (`policy="aggregate"`) and nothing but cell and count is read.
    """
    i = m.Incident
    recent_from = now - WINDOW
    since = recent_from - timedelta(days=BASELINE_DAYS)
    flag = case((i.ts >= recent_from, 1), else_=0)
    rows = session.execute(
        select(i.h3_r7, flag, func.count())
        .where(i.ts >= since, i.ts < now)
        .group_by(i.h3_r7, flag)
        .execution_options(policy="aggregate")
    ).all()
    frame = pd.DataFrame(rows, columns=["area", "recent", "count"])
    recent = frame[frame.recent == 1].set_index("area")["count"]
    base = frame[frame.recent == 0][["area", "count"]].assign(day=since.date())
    return recent, base


def _zone_cells(geometry: dict) -> list[str]:
    shape_ = shape(geometry)
    polys = list(shape_.geoms) if hasattr(shape_, "geoms") else [shape_]
    cells: set[str] = set()
    for poly in polys:
        outer = [(y, x) for x, y in poly.exterior.coords]
        cells |= set(h3.polygon_to_cells(h3.LatLngPoly(outer), SCAN_RESOLUTION))
    if not cells:
        c = shape_.centroid
        cells.add(h3.latlng_to_cell(c.y, c.x, SCAN_RESOLUTION))
    return sorted(cells)


def _level(count: int, expected: float) -> str:
    ratio = count / expected
    return "high" if ratio >= HIGH_RATIO else ("medium" if ratio >= MEDIUM_RATIO else "low")


def _cell_area(cell: str) -> Polygon:
    return Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])


def push(
    session: Session, alert: m.Alert, area: shapely.Geometry, now: datetime,
    *, within_km: float = DEFAULT_WITHIN_KM,
) -> list[str]:  # fmt: skip
    """Push an alert to its recipient cities (one row each); returns their adcodes."""
    cities = alert_recipients(alert.city_code, area, within_km=within_km)
    for city in cities:
        session.add(m.AlertRecipient(alert_id=alert.id, city_code=city, pushed_at=now))
    session.flush()
    return cities


def _recently_alerted(session: Session, now: datetime) -> set[str]:
    prefix = "scan-"
    ids = session.scalars(
        select(m.Alert.source_id)
        .where(m.Alert.kind == "hotspot", m.Alert.ts >= now - WINDOW,
               m.Alert.source_id.like(prefix + "%"))
        .execution_options(policy="aggregate")
    )  # fmt: skip
    return {sid.split("-")[1] for sid in ids}


def scan(
    session: Session, *, now: datetime, principal: Principal | None = None,
    within_km: float = DEFAULT_WITHIN_KM, escalate_after: timedelta = ESCALATE_AFTER,
) -> ScanResult:  # fmt: skip
    """Detect hotspots (cells and risk zones), create their alerts, push them, escalate.

    Parameters
    ----------
    now
        End of the 24-hour window (UTC).
    principal
        Who ran it (None: the system, e.g. the CLI or the periodic scan).
    within_km
        Push distance (see `hub.alert_routing`).
    escalate_after
        Unacknowledged pushes older than this are escalated.

    Returns
    -------
    ScanResult
    """
    started = time.perf_counter()
    recent, base = area_counts(session, now)
    seconds_query = time.perf_counter() - started
    zones = session.execute(
        select(m.RiskZone.id, m.RiskZone.city_code, m.RiskZone.name, m.RiskZone.geometry)
        .where(m.RiskZone.valid_from <= now,
               (m.RiskZone.valid_to.is_(None)) | (m.RiskZone.valid_to > now))
        .execution_options(policy="aggregate")
    ).all()  # fmt: skip
    zone_recent, zone_base, zone_meta = {}, [], {}
    base_by_cell = base.groupby("area")["count"].sum() if len(base) else pd.Series(dtype=float)
    for zid, city, name, geometry in zones:
        cells = _zone_cells(json.loads(geometry))
        key = f"zone{zid}"
        zone_recent[key] = int(recent.reindex(cells).fillna(0).sum())
        zone_base.append({"area": key, "day": base["day"].iloc[0] if len(base) else now.date(),
                          "count": float(base_by_cell.reindex(cells).fillna(0).sum())})  # fmt: skip
        zone_meta[key] = (zid, city, name, geometry)
    counts = pd.concat([recent.astype("int64"), pd.Series(zone_recent, dtype="int64")])
    baseline = pd.concat([base[["area", "day", "count"]], pd.DataFrame(zone_base)],
                         ignore_index=True) if zone_base else base  # fmt: skip
    result = detect_hotspots(counts, baseline)
    flagged = result[result.flagged]
    done = _recently_alerted(session, now)
    created, skipped = [], 0
    cell_city = _cell_cities(session, [a for a in flagged.area if not a.startswith("zone")], now)
    for row in flagged.itertuples():
        if row.area in done:
            skipped += 1
            continue
        if row.area.startswith("zone"):
            zid, city, name, geometry = zone_meta[row.area]
            area = shape(json.loads(geometry))
            title = f"{name}：近24小时警情 {row.count} 起（基线 {row.expected:.1f}）"
        else:
            city = cell_city.get(row.area)
            if city is None:
                continue
            area = _cell_area(row.area)
            title = f"警情热点：近24小时 {row.count} 起（基线 {row.expected:.1f}）"
        centre = area.centroid
        alert = m.Alert(
            source_id=f"scan-{row.area}-{now:%Y%m%d%H%M}", city_code=city,
            classification="internal", kind="hotspot", level=_level(row.count, row.expected),
            title=title[:200],
            body=(f"p = {row.p_value:.2e}, q = {row.q_value:.2e} (Poisson, BH α = 0.01); "
                  f"area {row.area}"),
            status="active", ts=now, lon=round(centre.x, 6), lat=round(centre.y, 6),
            radius_m=_radius_m(area, centre),
        )  # fmt: skip
        session.add(alert)
        session.flush()
        push(session, alert, area, now, within_km=within_km)
        created.append(alert.id)
    escalated = escalate_overdue(session, now=now, after=escalate_after)
    audit.record(
        session, principal, "alert_scan", now=now, username=None if principal else "system",
        dataset="alerts", result_count=len(created), decision="ok",
        record_ids=[f"alerts:{i}" for i in created],
        detail={"areas": len(result), "flagged": len(flagged), "skipped_recent": skipped,
                "escalated": escalated},
    )  # fmt: skip
    return ScanResult(len(result), len(flagged), created, skipped, escalated, seconds_query)


def _radius_m(area, centre: Point) -> float:
    x0, y0, x1, y1 = area.bounds
    return round(float(max(haversine_m(centre.x, centre.y, x0, y0),
                           haversine_m(centre.x, centre.y, x1, y1))), 0)  # fmt: skip


def _cell_cities(session: Session, cells: list[str], now: datetime) -> dict[str, str]:
    """The city with most of the last day's incidents in each cell (cells cross borders)."""
    if not cells:
        return {}
    i = m.Incident
    rows = session.execute(
        select(i.h3_r7, i.city_code, func.count())
        .where(i.h3_r7.in_(cells), i.ts >= now - WINDOW, i.ts < now)
        .group_by(i.h3_r7, i.city_code)
        .execution_options(policy="aggregate")
    ).all()
    best: dict[str, tuple[int, str]] = {}
    for cell, city, n in rows:
        if cell not in best or n > best[cell][0]:
            best[cell] = (n, city)
    return {cell: city for cell, (_, city) in best.items()}


def escalate_overdue(session: Session, *, now: datetime, after: timedelta = ESCALATE_AFTER) -> int:
    """Flag every push unacknowledged for longer than `after`; returns how many.

    Each push escalates once; the audit entry (system) names the alerts.
    """
    r = m.AlertRecipient
    due = session.execute(
        select(r.alert_id, r.city_code).where(
            r.acknowledged_at.is_(None), r.escalated.is_(False), r.pushed_at < now - after
        )
    ).all()
    if not due:
        return 0
    session.execute(
        update(r)
        .where(r.acknowledged_at.is_(None), r.escalated.is_(False), r.pushed_at < now - after)
        .values(escalated=True, escalated_at=now)
    )
    audit.record(
        session, None, "alert_escalate", now=now, username="system", dataset="alerts",
        result_count=len(due), record_ids=sorted({f"alerts:{a}" for a, _ in due}),
        owner_cities=[c for _, c in due], decision="ok",
        detail={"after_minutes": after.total_seconds() / 60},
    )  # fmt: skip
    return len(due)


def raise_alert(
    session: Session,
    principal: Principal,
    *,
    title: str,
    level: str,
    now: datetime,
    kind: str = "manual",
    body: str | None = None,
    lon: float | None = None,
    lat: float | None = None,
    radius_m: float | None = None,
    within_km: float = DEFAULT_WITHIN_KM,
    source_id: str | None = None,
) -> tuple[int, list[str]]:
    """A commander raises an alert for their city and pushes it.

    Without a place the alert covers the commander's whole city (pushed to its
    neighbours by the boundary).

    Returns
    -------
    (int, list of str)
        The alert's id and its recipient cities.

    Raises
    ------
    AccessDenied
        ``role_not_allowed`` unless a city commander.
    InputError
        ``bad_alert_kind``, ``bad_alert_level``, ``bad_location``, ``bad_radius`` or a free-text
        refusal.
    """
    if principal.role not in RAISE_ROLES or principal.city_code is None:
        raise AccessDenied("role_not_allowed", "only city commanders raise alerts")
    if kind not in MANUAL_KINDS:
        raise InputError("bad_alert_kind", f"kind must be one of {MANUAL_KINDS}")
    if level not in code_values("risk_level"):
        raise InputError("bad_alert_level", "unknown level", level=level)
    title = clean_text(title, "title", 200)
    body = clean_text(body, "body") if body and body.strip() else None
    if lon is None and lat is None:
        from geo.boundaries import load_boundaries

        cities = load_boundaries().cities
        area = cities[cities.adcode == principal.city_code].geometry.iloc[0]
        centre, radius = area.representative_point(), None
    else:
        lon, lat = check_point(lon, lat)
        if radius_m is None or not 100 <= float(radius_m) <= MAX_RADIUS_M:
            raise InputError("bad_radius", "radius out of range", low=100, high=MAX_RADIUS_M)
        centre, radius = Point(lon, lat), float(radius_m)
        area = buffer_m(centre, radius)
    alert = m.Alert(
        source_id=source_id or f"manual-{principal.user_id}-{now:%Y%m%d%H%M%S%f}",
        city_code=principal.city_code, classification="internal", kind=kind, level=level,
        title=title, body=body, status="active", ts=now,
        lon=None if radius is None else round(centre.x, 6),
        lat=None if radius is None else round(centre.y, 6), radius_m=radius,
    )  # fmt: skip
    session.add(alert)
    session.flush()
    cities = push(session, alert, area, now, within_km=within_km)
    audit.record(
        session, principal, "alert_raise", now=now, dataset="alerts",
        query={"kind": "alert", "value": str(alert.id)}, record_ids=[f"alerts:{alert.id}"],
        owner_cities=[alert.city_code], decision="ok",
        detail={"level": level, "kind": kind, "recipients": cities},
    )  # fmt: skip
    return alert.id, cities


def _require_alert_role(principal: Principal) -> str:
    if principal.role not in ALERT_ROLES or principal.city_code is None:
        raise AccessDenied("role_not_allowed", "alerts are for city commanders and investigators")
    return principal.city_code


def _exercise_ids(session: Session, dataset: str, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    x = m.ExerciseRecord
    return set(session.scalars(select(x.record_id).where(x.dataset == dataset,
                                                         x.record_id.in_(ids))))  # fmt: skip


ALERT_COLUMNS = ["id", "ts", "city_code", "kind", "level", "title", "body", "status", "lon",
                 "lat", "radius_m", "acknowledged_at", "escalated", "recipients", "acknowledged",
                 "exercise", "mine"]  # fmt: skip


def alerts_for(
    session: Session, principal: Principal, *, now: datetime, days: int = 7,
    include_acknowledged: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """Alerts pushed to the viewer's city in the last `days` (audited as a search).

    Returns
    -------
    pandas.DataFrame
        `ALERT_COLUMNS`: my city's acknowledgement and escalation, how many recipients
        there are and how many acknowledged, whether it is an exercise and whether my
        city raised it; newest first.
    """
    city = _require_alert_role(principal)
    a, r = m.Alert, m.AlertRecipient
    mine = select(r).where(r.city_code == city).subquery()
    stmt = (
        select(a.id, a.ts, a.city_code, a.kind, a.level, a.title, a.body, a.status, a.lon, a.lat,
               a.radius_m, mine.c.acknowledged_at, mine.c.escalated)
        .join(mine, mine.c.alert_id == a.id)
        .where(a.ts >= now - timedelta(days=days),
               row_filter(session, principal, a, session.info.get("grants", ())))
        .order_by(a.ts.desc(), a.id.desc()).limit(500)
    )  # fmt: skip
    if not include_acknowledged:
        stmt = stmt.where(mine.c.acknowledged_at.is_(None))
    rows = session.execute(stmt).all()
    frame = pd.DataFrame(rows, columns=ALERT_COLUMNS[:13])
    ids = [int(i) for i in frame["id"]]
    tally = dict.fromkeys(ids, (0, 0))
    if ids:
        for alert_id, n, acked in session.execute(
            select(r.alert_id, func.count(), func.count(r.acknowledged_at))
            .where(r.alert_id.in_(ids)).group_by(r.alert_id)
        ):  # fmt: skip
            tally[alert_id] = (n, acked)
    exercise = _exercise_ids(session, "alerts", ids)
    frame["recipients"] = [tally[i][0] for i in ids]
    frame["acknowledged"] = [tally[i][1] for i in ids]
    frame["exercise"] = [i in exercise for i in ids]
    frame["mine"] = frame["city_code"] == city
    frame["escalated"] = frame["escalated"].astype(bool)
    audit.record(
        session, principal, "search", now=now, dataset="alerts",
        query={"kind": "alerts_pushed", "value": f"{city}:{days}d"}, result_count=len(frame),
        record_ids=[f"alerts:{i}" for i in ids], owner_cities=list(frame["city_code"].unique()),
        purpose="alert_inbox", decision="ok",
    )  # fmt: skip
    return frame


def recipients(session: Session, principal: Principal, alert_id: int) -> pd.DataFrame:
    """Who an alert was pushed to and who acknowledged (for a recipient city's viewer)."""
    city = _require_alert_role(principal)
    r = m.AlertRecipient
    rows = session.execute(
        select(r.city_code, r.pushed_at, r.acknowledged_at, m.User.display_name, r.escalated)
        .outerjoin(m.User, m.User.id == r.acknowledged_by)
        .where(r.alert_id == int(alert_id)).order_by(r.city_code)
    ).all()  # fmt: skip
    if city not in {row[0] for row in rows}:
        raise InputError("unknown_alert", f"no alert {alert_id}", id=alert_id)
    return pd.DataFrame(
        rows, columns=["city_code", "pushed_at", "acknowledged_at", "acknowledged_by", "escalated"]
    )


def acknowledge(session: Session, principal: Principal, alert_id: int, *, now: datetime) -> None:
    """A recipient city's commander or investigator acknowledges an alert.

    Raises
    ------
    AccessDenied
        ``role_not_allowed``.
    InputError
        ``unknown_alert`` (not pushed to this city, or not openable), or
        ``already_acknowledged``.
    """
    city = _require_alert_role(principal)
    alert = session.scalar(
        select(m.Alert).where(
            m.Alert.id == int(alert_id),
            row_filter(session, principal, m.Alert, session.info.get("grants", ())),
        )
    )
    row = session.get(m.AlertRecipient, (int(alert_id), city)) if alert is not None else None
    if row is None:
        raise InputError("unknown_alert", f"no alert {alert_id} for this city", id=alert_id)
    if row.acknowledged_at is not None:
        raise InputError("already_acknowledged", "this city has already acknowledged it")
    row.acknowledged_by, row.acknowledged_at = principal.user_id, now
    audit.record(
        session, principal, "alert_ack", now=now, dataset="alerts",
        query={"kind": "alert", "value": str(alert.id)}, record_ids=[f"alerts:{alert.id}"],
        owner_cities=[alert.city_code], decision="ok",
        detail={"late": bool(row.escalated)},
    )  # fmt: skip


def escalated(session: Session, principal: Principal) -> pd.DataFrame:
    """Escalated, still unacknowledged pushes of alerts the viewer may open (for the
    overview): alert, city that has not acknowledged, since when."""
    a, r = m.Alert, m.AlertRecipient
    rows = session.execute(
        select(a.id, a.title, a.level, a.city_code, r.city_code, r.pushed_at, r.escalated_at)
        .join(r, r.alert_id == a.id)
        .where(r.escalated.is_(True), r.acknowledged_at.is_(None),
               row_filter(session, principal, a, session.info.get("grants", ())))
        .order_by(r.pushed_at)
    ).all()  # fmt: skip
    return pd.DataFrame(rows, columns=["alert_id", "title", "level", "origin_city",
                                       "city_code", "pushed_at", "escalated_at"])  # fmt: skip


def alert_cap(session: Session, principal: Principal, alert_id: int, *, now: datetime) -> dict:
    """An alert as CAP 1.2 JSON (`hub.exchange.alert_to_cap`), audited as an export.

    Raises
    ------
    InputError
        ``unknown_alert`` when the viewer may not open it.
    """
    _require_alert_role(principal)
    alert = session.scalar(
        select(m.Alert).where(
            m.Alert.id == int(alert_id),
            row_filter(session, principal, m.Alert, session.info.get("grants", ())),
        )
    )
    if alert is None:
        raise InputError("unknown_alert", f"no alert {alert_id}", id=alert_id)
    exercise = bool(_exercise_ids(session, "alerts", [alert.id]))
    fields = {c: getattr(alert, c) for c in ("source_id", "city_code", "kind", "level", "title",
                                             "body", "ts", "lon", "lat", "radius_m")}  # fmt: skip
    message = alert_to_cap(fields, exercise=exercise)
    audit.record(
        session, principal, "export", now=now, dataset="alerts",
        query={"kind": "cap", "value": str(alert.id)}, result_count=1,
        record_ids=[f"alerts:{alert.id}"], owner_cities=[alert.city_code], decision="ok",
    )  # fmt: skip
    return message


def unacknowledged_count(session: Session, principal: Principal) -> int:
    """Pushes to the viewer's city not yet acknowledged (a badge; no record content)."""
    city = _require_alert_role(principal)
    r = m.AlertRecipient
    return int(
        session.scalar(
            select(func.count())
            .select_from(r)
            .where(and_(r.city_code == city, r.acknowledged_at.is_(None)))
        )
        or 0
    )
