"""The common operating picture: what the situation map adds to the hexagons and features
of `hub.situation` — a hexagon's own incidents (the drill-down), the overlays a command
room watches (operations, alert areas, watch hits, the watched cars) and the live tail
(what arrived since the page last looked).

No new access path. A cell's incidents are the situation's incident features restricted
to one cell: openable rows through the viewer's row filter, the rest as pointers (the
lookup's rule), one `map_view` audit entry. Operations are the commander's own list
(`response.my_operations`), alert areas the alerts pushed to the viewer's city
(`alerts.alerts_for`, audited there), hits and the watched cars the viewer's hits
(`watch.hits`, audited there). The live tail audits only when it shows something new,
so an open page does not write an entry every refresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import h3
import pandas as pd
from sqlalchemy import and_, func, not_, select
from sqlalchemy.orm import Session

from hub import alerts, records, response, watch
from hub import models as m
from hub.boundary import guard_methods
from hub.security import audit
from hub.security.backstop import row_filter
from hub.security.errors import AccessDenied, InputError
from hub.security.policy import COUNTS_SECRET, Principal
from hub.selection import incident_where
from hub.situation import RESOLUTION, SITUATION_ROLES, SituationQuery

if TYPE_CHECKING:
    from hub.service import Hub

# The overlays the map may draw, and who may ask for each (the underlying services
# check again: these only keep a role from asking for what it never gets).
OVERLAYS = ("operations", "alert_areas", "watch_hits", "tracked")
OVERLAY_ROLES = {
    "operations": response.RESPONSE_ROLES,
    "alert_areas": alerts.ALERT_ROLES,
    "watch_hits": watch.WATCH_ROLES,
    "tracked": watch.WATCH_ROLES,
}
CELL_LIMIT = 200  # a cell's incident list, newest first
LIVE_MINUTES = (15, 30, 60)
LIVE_LIMIT = 500
_INCIDENT_COLUMNS = ("id", "type_code", "severity", "status", "ts", "lon", "lat", "city_code",
                     "district_code")  # fmt: skip


@dataclass(frozen=True)
class CellIncidents:
    """One hexagon's incidents as this viewer may see them."""

    cell: str
    rows: pd.DataFrame  # `_INCIDENT_COLUMNS`, newest first, at most `CELL_LIMIT`
    total: int  # openable incidents in the cell (rows may be fewer)
    pointers: tuple[records.Pointer, ...]  # the hidden ones, per owning city and level


@dataclass(frozen=True)
class Overlays:
    """The command-room layers for one viewer; an overlay the role may not see is empty."""

    operations: pd.DataFrame  # id, name, kind, lead_city, my_status, lon, lat, radius_m
    alert_areas: pd.DataFrame  # id, ts, city_code, level, title, lon, lat, radius_m
    hits: pd.DataFrame  # id, plate, city_code, case_no, created_at, lon, lat, mine
    tracked: pd.DataFrame  # watch_id, plate, city_code, ts, lon, lat (the newest read)
    hidden_hits: int  # hits whose read the viewer may not open (pointers, no place)


@dataclass(frozen=True)
class LiveTail:
    """What arrived since the page last looked (within the last `minutes`)."""

    incidents: pd.DataFrame  # `_INCIDENT_COLUMNS`, openable only
    hits: pd.DataFrame  # as `Overlays.hits`
    checked_at: datetime


def _require(principal: Principal) -> None:
    if principal.role not in SITUATION_ROLES:
        raise AccessDenied("role_not_allowed", "this role has no situation map")


def _frame(rows, columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def _cell_clause(cell: str):
    """The incidents of one hexagon of a map resolution (6: the seven r7 children)."""
    if not isinstance(cell, str) or not h3.is_valid_cell(cell):
        raise InputError("bad_filter", "not a map cell", value=str(cell)[:20])
    res = h3.get_resolution(cell)
    if res not in RESOLUTION.values():
        raise InputError("bad_filter", "not a map cell", value=cell[:20])
    i = m.Incident
    if res == 8:
        return i.h3_r8 == cell
    if res == 7:
        return i.h3_r7 == cell
    return i.h3_r7.in_(sorted(h3.cell_to_children(cell, 7)))


def cell_incidents(
    session: Session, principal: Principal, query: SituationQuery, cell: str, *,
    now: datetime, count_secret: bool,
) -> CellIncidents:  # fmt: skip
    """The incidents of the situation `query` in one hexagon: the viewer's openable ones
    as rows, the others as pointers (DESIGN §4), audited as one map view."""
    _require(principal)
    i = m.Incident
    where = and_(incident_where(query), _cell_clause(cell))
    allowed = row_filter(session, principal, i, session.info.get("grants", ()))
    total = session.scalar(select(func.count()).select_from(i).where(where, allowed)) or 0
    rows = _frame(
        session.execute(
            select(*(getattr(i, c) for c in _INCIDENT_COLUMNS))
            .where(where, allowed).order_by(i.ts.desc()).limit(CELL_LIMIT)
        ).all(),
        _INCIDENT_COLUMNS,
    )  # fmt: skip
    hidden = select(i.city_code, i.classification, func.count(), func.min(i.ts), func.max(i.ts))
    hidden = hidden.where(where, not_(allowed)).group_by(i.city_code, i.classification)
    if not count_secret:
        hidden = hidden.where(i.classification != "secret")
    pointers = []
    for city, level, n, first, last in session.execute(
        hidden.execution_options(policy="aggregate")
    ):
        p = records.make_pointer(principal, "incidents", city, level, int(n), first, last)
        if p is not None:
            pointers.append(p)
    audit.record(
        session, principal, "map_view", now=now, dataset="incidents",
        query={**query.as_audit(), "kind": "situation_cell", "cell": cell},
        result_count=len(rows), record_ids=[f"incidents:{x}" for x in rows["id"]],
        owner_cities=sorted(set(rows["city_code"]) | {p.city_code for p in pointers}),
        decision="ok" if not pointers else "pointer",
        detail={"pointers": sum(p.count for p in pointers)},
    )  # fmt: skip
    return CellIncidents(cell, rows, int(total), tuple(pointers))


def _operations(session: Session, principal: Principal) -> pd.DataFrame:
    mine = response.my_operations(session, principal)
    cols = ["id", "name", "kind", "lead_city", "my_status", "lon", "lat", "radius_m"]
    if mine.empty:
        return pd.DataFrame(columns=cols)
    places = session.execute(
        select(m.Operation.id, m.Operation.lon, m.Operation.lat, m.Operation.radius_m)
        .where(m.Operation.id.in_([int(x) for x in mine["id"]]))
    ).all()  # fmt: skip
    where = _frame(places, ["id", "lon", "lat", "radius_m"])
    return mine.merge(where, on="id")[cols]


def _alert_areas(session: Session, principal: Principal, now: datetime) -> pd.DataFrame:
    frame = alerts.alerts_for(session, principal, now=now, days=1, include_acknowledged=True)
    cols = ["id", "ts", "city_code", "level", "title", "lon", "lat", "radius_m"]
    placed = frame[frame["lon"].notna() & frame["lat"].notna() & (frame["status"] == "active")]
    return placed[cols].assign(radius_m=placed["radius_m"].fillna(1000.0)).reset_index(drop=True)


_HIT_COLUMNS = ["id", "watch_id", "plate", "city_code", "case_no", "created_at", "ts", "lon",
                "lat", "mine"]  # fmt: skip


def _hits(hits: Sequence[watch.HitView]) -> tuple[pd.DataFrame, int]:
    """Hits with a place (the viewer may open the read) and how many had none."""
    placed = [h for h in hits if h.sighting is not None]
    rows = [(h.id, h.watch_id, h.plate, h.city_code, h.case_no, h.created_at, h.sighting["ts"],
             h.sighting["lon"], h.sighting["lat"], h.mine) for h in placed]  # fmt: skip
    return _frame(rows, _HIT_COLUMNS), len(hits) - len(placed)


def overlays(
    session: Session, principal: Principal, wanted: Sequence[str], *, now: datetime,
    since: datetime,
) -> Overlays:  # fmt: skip
    """The overlays in `wanted` the viewer's role may see; hits raised after `since`."""
    _require(principal)
    unknown = set(wanted) - set(OVERLAYS)
    if unknown:
        raise InputError("bad_filter", "unknown layer", value=sorted(unknown)[0])
    may = {o for o in wanted if principal.role in OVERLAY_ROLES[o]}
    ops = _operations(session, principal) if "operations" in may else _frame([], [])
    areas = _alert_areas(session, principal, now) if "alert_areas" in may else _frame([], [])
    hits, hidden = _frame([], _HIT_COLUMNS), 0
    if may & {"watch_hits", "tracked"}:
        found = watch.hits(session, principal, now=now, grants=session.info.get("grants", ()),
                           since=since)  # fmt: skip
        hits, hidden = _hits(found)
    # The watched car is where its newest read was: the viewer's own watches only.
    mine = hits[hits["mine"].astype(bool)] if len(hits) else hits
    tracked = (
        mine.sort_values("ts").groupby("watch_id", as_index=False).last()
        [["watch_id", "plate", "city_code", "ts", "lon", "lat"]]
        if "tracked" in may and len(mine) else _frame([], ["watch_id", "plate", "city_code", "ts", "lon", "lat"])
    )  # fmt: skip
    if "watch_hits" not in may:
        hits, hidden = _frame([], _HIT_COLUMNS), 0
    return Overlays(ops, areas, hits, tracked, hidden)


def live_tail(
    session: Session, principal: Principal, *, minutes: int, since: datetime | None,
    cities: Sequence[str], now: datetime,
) -> LiveTail:  # fmt: skip
    """Openable incidents of the last `minutes` stored after `since` (all of them when
    None), and the viewer's hits raised after `since`; audited when anything is shown."""
    _require(principal)
    if minutes not in LIVE_MINUTES:
        raise InputError("bad_filter", "unknown live window", value=str(minutes)[:8])
    i = m.Incident
    window = SituationQuery(start=now - timedelta(minutes=minutes), end=now + timedelta(minutes=1),
                            cities=tuple(cities))  # fmt: skip
    where = [
        incident_where(window),
        row_filter(session, principal, i, session.info.get("grants", ())),
    ]
    if since is not None:
        where.append(i.created_at > since)
    rows = _frame(
        session.execute(
            select(*(getattr(i, c) for c in _INCIDENT_COLUMNS))
            .where(*where).order_by(i.ts.desc()).limit(LIVE_LIMIT)
        ).all(),
        _INCIDENT_COLUMNS,
    )  # fmt: skip
    hits = _frame([], _HIT_COLUMNS)
    if principal.role in watch.WATCH_ROLES:
        floor = since or window.start
        hits, _ = _hits(watch.hits(session, principal, now=now, since=floor,
                                   grants=session.info.get("grants", ())))  # fmt: skip
    if len(rows):
        audit.record(
            session, principal, "map_view", now=now, dataset="incidents",
            query={"kind": "situation_live", "value": f"{minutes}min", "cities": list(cities)},
            result_count=len(rows), record_ids=[f"incidents:{x}" for x in rows["id"]],
            owner_cities=sorted(set(rows["city_code"])), decision="ok",
        )  # fmt: skip
    return LiveTail(rows, hits, now)


# --- the facade Hub composes (`hub.cop`) ---------------------------------------------


@guard_methods
class CommonPicture:
    """The situation map's further questions as pages call them: each one transaction
    with the caller's principal (`Hub._run`), refusals audited like Hub's own."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def _session(self, principal: Principal | None = None, **kw):
        return self._hub._session(principal, **kw)

    def _run(self, principal: Principal, fn, now: datetime | None, **query):
        when = now or datetime.now(UTC)
        return self._hub._run(
            principal, "map_view", lambda s: fn(s, when), now=now,
            audit_fields={"dataset": "situation", "query": query},
        )  # fmt: skip

    def cell_incidents(
        self, principal: Principal, query: SituationQuery, cell: str, *,
        now: datetime | None = None,
    ) -> CellIncidents:  # fmt: skip
        """A hexagon's incidents under the same rules as the map (see `cell_incidents`)."""
        return self._run(
            principal,
            lambda s, t: cell_incidents(s, principal, query, cell, now=t,
                                        count_secret=principal.role in COUNTS_SECRET),
            now, kind="situation_cell", value=str(cell)[:20],
        )  # fmt: skip

    def overlays(
        self, principal: Principal, wanted: Sequence[str], *, since: datetime,
        now: datetime | None = None,
    ) -> Overlays:  # fmt: skip
        """Operations, alert areas, watch hits and the watched cars (see `overlays`)."""
        return self._run(
            principal, lambda s, t: overlays(s, principal, list(wanted), now=t, since=since),
            now, kind="situation_overlays", value=",".join(sorted(wanted))[:64],
        )  # fmt: skip

    def live_tail(
        self, principal: Principal, *, minutes: int, since: datetime | None,
        cities: Sequence[str] = (), now: datetime | None = None,
    ) -> LiveTail:  # fmt: skip
        """What arrived since the last look (see `live_tail`)."""
        return self._run(
            principal,
            lambda s, t: live_tail(s, principal, minutes=minutes, since=since,
                                   cities=list(cities), now=t),
            now, kind="situation_live", value=f"{minutes}min",
        )  # fmt: skip
