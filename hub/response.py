"""Joint response (联合处置): operations across cities, their units, requests and timeline.

Who sees what:

- An operation is seen by commanders of its lead city and of every invited city
  (DESIGN §5: joint response is the commander's). Invited cities see it so they can
  accept; only the lead and accepting cities ("parties") act in it.
- Units, the incident and the risk zone shown on the board are records: they are read
  through the viewer's row filter, and the board is audited as a map view.
- Resource requests follow `hub.response_rules`: only a commander of the unit's city
  accepts, dispatches and moves it; the requesting city cancels; either releases. A
  city's own unit is dispatched directly (a request row that starts at `dispatched`).

Every change writes a system entry on the operation's timeline and an audit entry, in
the caller's transaction; a refused change raises before anything is written.

System timeline entries are stored as JSON (``{"event": ..., params}``) so the board
shows them in the viewer's language; entries typed by people are stored as typed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point, shape
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from geo.distance import buffer_m, haversine_m
from geo.nearest import UnitIndex, unit_speeds_kmh
from hub import models as m
from hub.codes import CLASSIFICATIONS, classification_rank
from hub.response_rules import (
    UNIT_STATUS_FOR_REQUEST,
    allowed_next,
    can_act,
    require_dispatchable,
    require_may_act,
    require_may_dispatch,
    require_may_request,
    require_transition,
)
from hub.security import audit
from hub.security.backstop import row_filter
from hub.security.crypto import FieldCipher
from hub.security.errors import AccessDenied, InputError, refuse_nul
from hub.security.narrative import seal
from hub.security.policy import Principal, base_outcome, relation
from hub.validate import find_id_numbers, find_phones

RESPONSE_ROLES = frozenset({"commander"})
KINDS = ("incident", "planned_event")
# Board defaults: units within reach of the area's edge, and how many of them to list.
REACH_KM = 40.0
MAX_UNITS = 40
MIN_RADIUS_M, MAX_RADIUS_M = 100.0, 50_000.0
MAX_NAME, MAX_TEXT = 120, 1000
# A live board re-reads every few seconds; one audit entry per distinct picture (the
# same records shown) per this interval says who saw what without flooding the chain.
BOARD_AUDIT_EVERY = timedelta(minutes=5)
# Requests in these states hold their unit: it may not be asked for again meanwhile.
OPEN_STATES = ("requested", "accepted", "dispatched", "en_route", "on_scene")
DEPLOYED_STATES = ("dispatched", "en_route", "on_scene")
_STAMP = {
    "accepted": "accepted_at",
    "dispatched": "dispatched_at",
    "en_route": "en_route_at",
    "on_scene": "on_scene_at",
    "declined": "ended_at",
    "cancelled": "ended_at",
    "released": "ended_at",
}
# Province extent with a margin: a point outside is a typing error (or swapped lon/lat).
_LON, _LAT = (114.5, 120.0), (29.0, 35.5)


# --- small checks ------------------------------------------------------------------------


def _require_commander(principal: Principal) -> str:
    if principal.role not in RESPONSE_ROLES or principal.city_code is None:
        raise AccessDenied("role_not_allowed", "only city commanders run joint operations")
    return principal.city_code


def clean_text(value: str, field_name: str, limit: int = MAX_TEXT) -> str:
    """Free text as stored: trimmed, bounded, without NUL, ID numbers or phone numbers.

    Parameters
    ----------
    value : str
        What the user typed.
    field_name : str
        Named in the refusal.
    limit : int
        Most characters allowed.

    Returns
    -------
    str
        The trimmed text.

    Raises
    ------
    InputError
        ``text_required`` (empty), ``too_long``, ``bad_characters`` or
        ``text_has_identifier``: identifiers are stored encrypted in their own fields,
        never in free text shared between cities.
    """
    value = refuse_nul(value or "", field_name).strip()
    if not value:
        raise InputError("text_required", f"{field_name} is empty", field=field_name)
    if len(value) > limit:
        raise InputError("too_long", f"{field_name} too long", field=field_name, limit=limit)
    if find_id_numbers(value) or find_phones(value):
        raise InputError("text_has_identifier", "free text must not hold ID or phone numbers")
    return value


def check_point(lon: float | None, lat: float | None) -> tuple[float, float]:
    """A WGS84 point inside the province's extent.

    Raises
    ------
    InputError
        ``bad_location`` when missing or outside the province.
    """
    if lon is None or lat is None:
        raise InputError("bad_location", "a location is needed", lon=lon, lat=lat)
    lon, lat = float(lon), float(lat)
    if not (_LON[0] <= lon <= _LON[1] and _LAT[0] <= lat <= _LAT[1]):
        raise InputError("bad_location", "the location is outside the province", lon=lon, lat=lat)
    return lon, lat


def _event(kind: str, **params: object) -> str:
    return json.dumps({"event": kind, **params}, ensure_ascii=False, default=str)


def _log(
    session: Session, op: m.Operation, now: datetime, kind: str, *, significant: bool = False,
    city: str | None = None, **params: object,
) -> None:  # fmt: skip
    session.add(
        m.TimelineEntry(operation_id=op.id, ts=now, author_id=None, city_code=city,
                        text=_event(kind, **params), significant=significant)
    )  # fmt: skip


def _audit(
    session: Session, principal: Principal, action: str, now: datetime, op: m.Operation,
    **detail: object,
) -> None:  # fmt: skip
    audit.record(
        session, principal, action, now=now, dataset="operations",
        query={"kind": "operation", "value": str(op.id)}, decision="ok",
        detail={k: v for k, v in detail.items() if v is not None},
    )  # fmt: skip


def _cities_known(session: Session, cities: list[str]) -> None:
    known = set(session.scalars(select(m.City.adcode).where(m.City.adcode.in_(cities))))
    for c in cities:
        if c not in known:
            raise InputError("unknown_city", f"no city {c}", city=c)


# --- operations --------------------------------------------------------------------------


def _operation(session: Session, operation_id: int, *, for_update: bool = False) -> m.Operation:
    stmt = select(m.Operation).where(m.Operation.id == int(operation_id))
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    op = session.scalar(stmt)
    if op is None:
        raise InputError("unknown_operation", f"no operation {operation_id}", id=operation_id)
    return op


def _participants(session: Session, op_id: int) -> dict[str, str]:
    rows = session.execute(
        select(m.OperationParticipant.city_code, m.OperationParticipant.status).where(
            m.OperationParticipant.operation_id == op_id
        )
    )
    return dict(rows.all())


def parties(op: m.Operation, participants: dict[str, str]) -> list[str]:
    """The lead city and every city that accepted: the cities that act in it."""
    return [op.lead_city, *sorted(c for c, s in participants.items() if s == "accepted")]


def _visible(session: Session, principal: Principal, operation_id: int) -> m.Operation:
    """The operation if the viewer's city leads it or was invited; else "unknown"
    (never "forbidden": that would confirm an operation exists)."""
    city = _require_commander(principal)
    op = _operation(session, operation_id)
    if city != op.lead_city and city not in _participants(session, op.id):
        raise InputError("unknown_operation", f"no operation {operation_id}", id=operation_id)
    return op


def _party(session: Session, principal: Principal, operation_id: int) -> m.Operation:
    op = _visible(session, principal, operation_id)
    if principal.city_code not in parties(op, _participants(session, op.id)):
        raise AccessDenied("not_party", "accept the invitation before acting in the operation")
    if op.status != "active":
        raise InputError("operation_closed", "the operation is closed")
    return op


def create_operation(
    session: Session,
    principal: Principal,
    *,
    name: str,
    kind: str,
    now: datetime,
    radius_m: float = 3000.0,
    lon: float | None = None,
    lat: float | None = None,
    incident_id: int | None = None,
    risk_zone_id: int | None = None,
    invite: tuple[str, ...] | list[str] = (),
    objectives: str | None = None,
    exercise_run_id: int | None = None,
) -> int:
    """Open an operation led by the principal's city.

    The area is centred on the incident (kind ``incident``), on the risk zone when one
    is given, or on ``lon``/``lat`` (a planned event), with ``radius_m``.

    Parameters
    ----------
    session, principal
        The caller's transaction and a commander.
    name, kind
        Title and ``incident`` | ``planned_event``.
    now
        When (UTC).
    radius_m
        Radius of the area in metres (100 m to 50 km).
    lon, lat
        Centre of a planned event's area (WGS84).
    incident_id, risk_zone_id
        The incident (required for kind ``incident``) or a risk zone as the area;
        both must be records the principal may open.
    invite
        Adcodes of the cities invited to take part.
    objectives
        Free text (the briefing's objectives).
    exercise_run_id
        Set by exercise mode: the operation is an exercise.

    Returns
    -------
    int
        The operation's id.

    Raises
    ------
    AccessDenied
        ``role_not_allowed`` unless a city commander.
    InputError
        ``bad_operation_kind``, ``unknown_incident``, ``unknown_zone``, ``bad_location``,
        ``bad_radius``, ``unknown_city`` or a free-text refusal.
    """
    lead = _require_commander(principal)
    if kind not in KINDS:
        raise InputError("bad_operation_kind", f"kind must be one of {KINDS}")
    name = clean_text(name, "name", MAX_NAME)
    objectives = clean_text(objectives, "objectives") if objectives and objectives.strip() else None
    grants = session.info.get("grants", ())
    if not MIN_RADIUS_M <= float(radius_m) <= MAX_RADIUS_M:
        raise InputError("bad_radius", "radius out of range", low=MIN_RADIUS_M, high=MAX_RADIUS_M)
    if kind == "incident":
        if incident_id is None:
            raise InputError("unknown_incident", "an incident operation needs its incident", id="")
        inc = session.scalar(
            select(m.Incident).where(
                m.Incident.id == int(incident_id),
                row_filter(session, principal, m.Incident, grants),
            )
        )
        if inc is None:
            raise InputError("unknown_incident", f"no incident {incident_id}", id=incident_id)
        lon, lat = inc.lon, inc.lat
    if risk_zone_id is not None:
        zone = session.scalar(
            select(m.RiskZone).where(
                m.RiskZone.id == int(risk_zone_id),
                row_filter(session, principal, m.RiskZone, grants),
            )
        )
        if zone is None:
            raise InputError("unknown_zone", f"no risk zone {risk_zone_id}", id=risk_zone_id)
        if kind != "incident":
            lon, lat = zone.lon, zone.lat
            # The zone's own extent, so "units within reach" are measured from its edge.
            x0, y0, x1, y1 = shape(json.loads(zone.geometry)).bounds
            radius_m = max(haversine_m(lon, lat, x0, y0), haversine_m(lon, lat, x1, y1))
            radius_m = min(max(float(radius_m), MIN_RADIUS_M), MAX_RADIUS_M)
    lon, lat = check_point(lon, lat)
    invited = sorted(set(invite) - {lead})
    _cities_known(session, invited)
    op = m.Operation(
        name=name, kind=kind, status="active", lead_city=lead,
        incident_id=int(incident_id) if kind == "incident" else None,
        risk_zone_id=int(risk_zone_id) if risk_zone_id is not None else None,
        lon=lon, lat=lat, radius_m=float(radius_m), objectives=objectives,
        exercise_run_id=exercise_run_id, created_by=principal.user_id, created_at=now,
    )  # fmt: skip
    session.add(op)
    session.flush()
    for city in invited:
        session.add(m.OperationParticipant(operation_id=op.id, city_code=city, invited_at=now))
    _log(session, op, now, "created", significant=True, city=lead, by=principal.display_name)
    for city in invited:
        _log(session, op, now, "invited", city=lead, invited=city)
    session.flush()
    _audit(session, principal, "operation_create", now, op, kind=kind, invited=invited,
           exercise_run_id=exercise_run_id)  # fmt: skip
    return op.id


def invite_city(
    session: Session, principal: Principal, operation_id: int, city: str, *, now: datetime
) -> None:
    """The lead city invites one more city.

    Raises
    ------
    AccessDenied
        ``not_lead`` unless a commander of the lead city.
    InputError
        ``unknown_city`` or ``already_invited``.
    """
    op = _party(session, principal, operation_id)
    if principal.city_code != op.lead_city:
        raise AccessDenied("not_lead", "only the lead city invites")
    _cities_known(session, [city])
    if city == op.lead_city or city in _participants(session, op.id):
        raise InputError("already_invited", "that city is already in the operation", city=city)
    session.add(m.OperationParticipant(operation_id=op.id, city_code=city, invited_at=now))
    _log(session, op, now, "invited", city=op.lead_city, invited=city)
    session.flush()
    _audit(session, principal, "operation_invite", now, op, city=city)


def respond_invitation(
    session: Session, principal: Principal, operation_id: int, *, accept: bool, now: datetime
) -> str:
    """An invited city's commander accepts or declines; returns the new status.

    Raises
    ------
    InputError
        ``unknown_operation``, ``already_responded`` or ``operation_closed``.
    """
    op = _visible(session, principal, operation_id)
    if op.status != "active":
        raise InputError("operation_closed", "the operation is closed")
    row = session.get(m.OperationParticipant, (op.id, principal.city_code))
    if row is None or row.status != "invited":
        raise InputError("already_responded", "this city has already answered")
    row.status = "accepted" if accept else "declined"
    row.responded_by, row.responded_at = principal.user_id, now
    _log(
        session,
        op,
        now,
        "joined" if accept else "declined_invite",
        significant=accept,
        city=principal.city_code,
    )
    session.flush()
    _audit(session, principal, "operation_respond", now, op, status=row.status)
    return row.status


def close_operation(
    session: Session, principal: Principal, operation_id: int, *, now: datetime
) -> None:
    """The lead city closes the operation once no unit is still deployed.

    Raises
    ------
    AccessDenied
        ``not_lead``.
    InputError
        ``units_deployed`` while a request is dispatched, en route or on scene.
    """
    op = _party(session, principal, operation_id)
    if principal.city_code != op.lead_city:
        raise AccessDenied("not_lead", "only the lead city closes the operation")
    deployed = session.scalar(
        select(func.count()).select_from(m.ResourceRequest).where(
            m.ResourceRequest.operation_id == op.id,
            m.ResourceRequest.status.in_(DEPLOYED_STATES),
        )
    )  # fmt: skip
    if deployed:
        raise InputError("units_deployed", "release the deployed units first", n=deployed)
    # Requests never acted on lapse with the operation.
    for rr in session.scalars(
        select(m.ResourceRequest).where(
            m.ResourceRequest.operation_id == op.id,
            m.ResourceRequest.status.in_(("requested", "accepted")),
        )
    ):
        rr.status, rr.ended_at, rr.updated_at, rr.updated_by = (
            "cancelled", now, now, principal.user_id,
        )  # fmt: skip
    op.status, op.closed_at = "closed", now
    _log(session, op, now, "closed", significant=True, city=op.lead_city)
    session.flush()
    _audit(session, principal, "operation_close", now, op)


def add_entry(
    session: Session,
    principal: Principal,
    operation_id: int,
    text: str,
    *,
    significant: bool,
    now: datetime,
) -> int:
    """A participant writes on the shared timeline; returns the entry's id.

    Raises
    ------
    AccessDenied
        ``not_party`` for an invited city that has not accepted.
    InputError
        A free-text refusal (see :func:`clean_text`).
    """
    op = _party(session, principal, operation_id)
    entry = m.TimelineEntry(
        operation_id=op.id, ts=now, author_id=principal.user_id, city_code=principal.city_code,
        text=clean_text(text, "text"), significant=bool(significant),
    )  # fmt: skip
    session.add(entry)
    session.flush()
    _audit(session, principal, "timeline_entry", now, op, entry=entry.id, significant=significant)
    return entry.id


# --- units and resource requests --------------------------------------------------------


def _unit(session: Session, principal: Principal, unit_id: int) -> m.Unit:
    """A unit the principal may open (row filter), locked for update on PostgreSQL so two
    cities cannot dispatch the same unit at once."""
    stmt = select(m.Unit).where(
        m.Unit.id == int(unit_id),
        row_filter(session, principal, m.Unit, session.info.get("grants", ())),
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    unit = session.scalar(stmt)
    if unit is None:
        raise InputError("unknown_unit", f"no unit {unit_id}", id=unit_id)
    return unit


def _move_unit(unit: m.Unit, target: str | None, now: datetime) -> None:
    if target is None or unit.status == target:
        return
    require_transition("unit", unit.status, target)
    unit.status, unit.status_at = target, now


def _unit_taken(session: Session, op_id: int, unit_id: int) -> bool:
    return bool(
        session.scalar(
            select(func.count()).select_from(m.ResourceRequest).where(
                m.ResourceRequest.operation_id == op_id,
                m.ResourceRequest.unit_id == unit_id,
                m.ResourceRequest.status.in_(OPEN_STATES),
            )
        )
    )  # fmt: skip


def request_unit(
    session: Session,
    principal: Principal,
    operation_id: int,
    unit_id: int,
    *,
    now: datetime,
    note: str | None = None,
) -> int:
    """Ask the unit's city for one of its units; returns the request's id.

    Raises
    ------
    AccessDenied
        ``not_city_commander``, ``not_party``.
    InputError
        ``request_own_unit`` (dispatch it instead), ``unknown_unit``,
        ``unit_not_party`` (the unit's city is not in the operation),
        ``unit_already_requested``, ``unit_not_mobile``.
    """
    op = _party(session, principal, operation_id)
    unit = _unit(session, principal, unit_id)
    require_may_request(principal, principal.city_code or "", unit.city_code)
    if unit.city_code not in parties(op, _participants(session, op.id)):
        raise InputError("unit_not_party", "that unit's city is not in the operation",
                         city=unit.city_code)  # fmt: skip
    require_dispatchable("available", unit.kind)  # a hospital is a destination, never asked for
    if _unit_taken(session, op.id, unit.id):
        raise InputError("unit_already_requested", "that unit is already in this operation",
                         unit=unit.callsign)  # fmt: skip
    rr = m.ResourceRequest(
        operation_id=op.id, requesting_city=principal.city_code, owner_city=unit.city_code,
        unit_id=unit.id, status="requested", requested_by=principal.user_id, requested_at=now,
        note=clean_text(note, "note") if note and note.strip() else None,
        updated_by=principal.user_id, updated_at=now,
    )  # fmt: skip
    session.add(rr)
    session.flush()
    _log(session, op, now, "requested", city=principal.city_code, unit=unit.callsign,
         owner=unit.city_code, request=rr.id)  # fmt: skip
    _audit(session, principal, "unit_request", now, op, request=rr.id, unit=unit.id,
           owner_city=unit.city_code)  # fmt: skip
    return rr.id


def dispatch_unit(
    session: Session, principal: Principal, operation_id: int, unit_id: int, *, now: datetime
) -> int:
    """A commander sends one of their own city's units; returns the request row's id.

    Raises
    ------
    AccessDenied
        ``not_unit_commander`` for another city's unit (request it instead).
    InputError
        ``unit_unavailable``, ``unit_not_mobile``, ``unit_already_requested``.
    """
    op = _party(session, principal, operation_id)
    unit = _unit(session, principal, unit_id)
    require_may_dispatch(principal, unit.city_code)
    require_dispatchable(unit.status, unit.kind)
    if _unit_taken(session, op.id, unit.id):
        raise InputError("unit_already_requested", "that unit is already in this operation",
                         unit=unit.callsign)  # fmt: skip
    _move_unit(unit, "dispatched", now)
    rr = m.ResourceRequest(
        operation_id=op.id, requesting_city=unit.city_code, owner_city=unit.city_code,
        unit_id=unit.id, status="dispatched", requested_by=principal.user_id, requested_at=now,
        dispatched_at=now, updated_by=principal.user_id, updated_at=now,
    )  # fmt: skip
    session.add(rr)
    session.flush()
    _log(session, op, now, "dispatched", significant=True, city=unit.city_code,
         unit=unit.callsign, request=rr.id)  # fmt: skip
    _audit(session, principal, "unit_dispatch", now, op, request=rr.id, unit=unit.id)
    return rr.id


def act_on_request(
    session: Session, principal: Principal, request_id: int, new: str, *, now: datetime
) -> str:
    """Move a resource request (and its unit) one step through the lifecycle.

    Parameters
    ----------
    new
        The wanted state: accepted, declined, dispatched, en_route, on_scene,
        released or cancelled.

    Returns
    -------
    str
        The unit's status afterwards.

    Raises
    ------
    IllegalTransition
        ``illegal_transition`` for a step the lifecycle does not allow.
    AccessDenied
        ``not_request_party`` when the step is the other city's to take.
    InputError
        ``unknown_resource_request``, ``unknown_state``, ``unit_unavailable`` (dispatching a unit
        that is busy or out of service), ``operation_closed``.
    """
    rr = session.get(m.ResourceRequest, int(request_id))
    city = _require_commander(principal)
    if rr is None or city not in (rr.owner_city, rr.requesting_city):
        raise InputError("unknown_resource_request", f"no request {request_id}", id=request_id)
    op = _operation(session, rr.operation_id)
    if op.status != "active":
        raise InputError("operation_closed", "the operation is closed")
    require_may_act(principal, rr.status, new, owner_city=rr.owner_city,
                    requesting_city=rr.requesting_city)  # fmt: skip
    unit = _unit(session, principal, rr.unit_id)
    if new == "dispatched":
        require_dispatchable(unit.status, unit.kind)
    _move_unit(unit, UNIT_STATUS_FOR_REQUEST[new], now)
    old = rr.status
    rr.status, rr.updated_by, rr.updated_at = new, principal.user_id, now
    setattr(rr, _STAMP[new], now)
    _log(session, op, now, new, significant=new in ("dispatched", "on_scene", "released"),
         city=city, unit=unit.callsign, request=rr.id)  # fmt: skip
    session.flush()
    _audit(session, principal, "unit_request_step", now, op, request=rr.id, old=old, new=new,
           unit=unit.id)  # fmt: skip
    return unit.status


def set_unit_status(
    session: Session, principal: Principal, unit_id: int, status: str, *, now: datetime
) -> None:
    """The owning city's commander reports a unit's status (e.g. out of service).

    Raises
    ------
    AccessDenied
        ``not_unit_commander``.
    InputError, IllegalTransition
        ``unknown_state``, ``illegal_transition``; ``unit_in_request`` while an
        operation holds the unit (its request moves it).
    """
    unit = _unit(session, principal, unit_id)
    require_may_dispatch(principal, unit.city_code)
    held = session.scalar(
        select(func.count()).select_from(m.ResourceRequest).where(
            m.ResourceRequest.unit_id == unit.id, m.ResourceRequest.status.in_(DEPLOYED_STATES)
        )
    )  # fmt: skip
    if held and status != "out_of_service":
        raise InputError("unit_in_request", "an operation holds this unit", unit=unit.callsign)
    old = unit.status
    require_transition("unit", old, status)
    unit.status, unit.status_at = status, now
    audit.record(session, principal, "unit_status", now=now, dataset="units",
                 query={"kind": "unit", "value": str(unit.id)}, record_ids=[f"units:{unit.id}"],
                 owner_cities=[unit.city_code], decision="ok", detail={"old": old, "new": status})  # fmt: skip


# --- reading ----------------------------------------------------------------------------


def my_operations(session: Session, principal: Principal, *, include_closed: bool = False):
    """Operations the viewer's city leads or is invited to, newest first.

    Returns
    -------
    pandas.DataFrame
        id, name, kind, status, lead_city, my_status (lead, invited, accepted,
        declined), exercise, created_at.
    """
    city = _require_commander(principal)
    p = m.OperationParticipant
    stmt = (
        select(m.Operation, p.status)
        .outerjoin(p, and_(p.operation_id == m.Operation.id, p.city_code == city))
        .where(or_(m.Operation.lead_city == city, p.city_code.is_not(None)))
        .order_by(m.Operation.created_at.desc(), m.Operation.id.desc())
        .limit(200)
    )
    if not include_closed:
        stmt = stmt.where(m.Operation.status == "active")
    rows = [
        {"id": o.id, "name": o.name, "kind": o.kind, "status": o.status,
         "lead_city": o.lead_city, "my_status": "lead" if o.lead_city == city else status,
         "exercise": o.exercise_run_id is not None, "created_at": o.created_at}
        for o, status in session.execute(stmt)
    ]  # fmt: skip
    cols = ["id", "name", "kind", "status", "lead_city", "my_status", "exercise", "created_at"]
    return pd.DataFrame(rows, columns=cols)


@dataclass(frozen=True)
class Board:
    """What the joint-response board shows one viewer at one moment."""

    operation: dict
    my_status: str  # lead, accepted, invited, declined
    participants: pd.DataFrame  # city_code, status, responded_at
    incident: dict | None  # the incident's public fields, if the viewer may open it
    incident_hidden: bool  # there is an incident the viewer may not open
    area: dict  # GeoJSON geometry of the area (zone polygon or circle), WGS84
    units: pd.DataFrame  # id, callsign, kind, status, city_code, lon, lat, distance_km, eta_min
    requests: pd.DataFrame  # id, unit_id, callsign, kind, owner_city, requesting_city, status,
    # requested_at ... ended_at, actions (next states this viewer may take)
    timeline: pd.DataFrame  # ts, city_code, author, text, event, significant
    now: datetime
    exercise: bool = False
    hidden_units: int = 0
    notes: dict = field(default_factory=dict)


_UNIT_COLS = ("id", "callsign", "kind", "status", "city_code", "district_code", "lon", "lat",
              "station", "status_at")  # fmt: skip


def _mobile_kinds() -> list[str]:
    return [k for k, v in unit_speeds_kmh().items() if v > 0]


def units_in_reach(
    session: Session, principal: Principal, cities: list[str], lon: float, lat: float,
    *, reach_m: float, k: int = MAX_UNITS,
) -> pd.DataFrame:  # fmt: skip
    """The `k` nearest mobile units of `cities` within `reach_m` of a point, with ETA.

    Units are read through the viewer's row filter; the nearest are found in UTM 50N
    (`geo.nearest.UnitIndex`), and the ETA is distance × road factor ÷ speed of the kind
    plus turn-out.
    """
    u = m.Unit
    # A bounding box in degrees (1° of latitude ≈ 111 km) cuts the read before the
    # exact metric search; a degree of longitude is shorter, so its box is wider.
    dlat = reach_m / 111_000 + 0.01
    dlon = dlat / max(np.cos(np.radians(lat)), 0.2)
    stmt = select(*(getattr(u, c) for c in _UNIT_COLS)).where(
        u.city_code.in_(cities),
        u.kind.in_(_mobile_kinds()),
        u.lon.between(lon - dlon, lon + dlon),
        u.lat.between(lat - dlat, lat + dlat),
        row_filter(session, principal, u, session.info.get("grants", ())),
    )
    rows = session.execute(stmt).all()
    frame = pd.DataFrame(rows, columns=list(_UNIT_COLS))
    if frame.empty:
        return frame.assign(distance_km=pd.Series(dtype=float), eta_min=pd.Series(dtype=float))
    index = UnitIndex(frame["id"].to_numpy(), frame["lon"], frame["lat"], frame["kind"])
    near = index.nearest(lon, lat, k=k, max_km=reach_m / 1000)
    out = frame.set_index("id").loc[near["id"]].reset_index()
    out["distance_km"] = (near["distance_m"].to_numpy() / 1000).round(2)
    out["eta_min"] = near["eta_min"].to_numpy().round(1)
    return out


def _request_frame(session: Session, principal: Principal, op_id: int) -> pd.DataFrame:
    rr, u = m.ResourceRequest, m.Unit
    stmt = (
        select(rr, u.callsign, u.kind, u.status)
        .join(u, u.id == rr.unit_id)
        .where(rr.operation_id == op_id)
        .order_by(rr.requested_at, rr.id)
    )
    rows = []
    for r, callsign, kind, unit_status in session.execute(stmt):
        actions = [
            s for s in allowed_next("resource_request", r.status)
            if can_act(principal, r.status, s, owner_city=r.owner_city,
                       requesting_city=r.requesting_city)
        ]  # fmt: skip
        rows.append({
            "id": r.id, "unit_id": r.unit_id, "callsign": callsign, "kind": kind,
            "unit_status": unit_status, "owner_city": r.owner_city,
            "requesting_city": r.requesting_city, "status": r.status, "note": r.note,
            "requested_at": r.requested_at, "accepted_at": r.accepted_at,
            "dispatched_at": r.dispatched_at, "en_route_at": r.en_route_at,
            "on_scene_at": r.on_scene_at, "ended_at": r.ended_at, "actions": actions,
        })  # fmt: skip
    cols = ["id", "unit_id", "callsign", "kind", "unit_status", "owner_city", "requesting_city",
            "status", "note", "requested_at", "accepted_at", "dispatched_at", "en_route_at",
            "on_scene_at", "ended_at", "actions"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _timeline(session: Session, op_id: int, limit: int = 300) -> pd.DataFrame:
    t = m.TimelineEntry
    stmt = (
        select(t.ts, t.city_code, m.User.display_name, t.text, t.significant, t.author_id)
        .outerjoin(m.User, m.User.id == t.author_id)
        .where(t.operation_id == op_id)
        .order_by(t.ts.desc(), t.id.desc())
        .limit(limit)
    )
    rows = []
    for ts, city, author, text, significant, author_id in session.execute(stmt):
        event = None
        if author_id is None:
            try:
                event = json.loads(text)
            except ValueError:  # a system line written as plain text (exercise scripts)
                event = None
        rows.append({"ts": ts, "city_code": city, "author": author, "text": text,
                     "event": event, "significant": bool(significant)})  # fmt: skip
    return pd.DataFrame(rows, columns=["ts", "city_code", "author", "text", "event", "significant"])


def _area(session: Session, principal: Principal, op: m.Operation) -> dict:
    if op.risk_zone_id is not None:
        geometry = session.scalar(
            select(m.RiskZone.geometry).where(
                m.RiskZone.id == op.risk_zone_id,
                row_filter(session, principal, m.RiskZone, session.info.get("grants", ())),
            )
        )
        if geometry:
            return json.loads(geometry)
    circle = buffer_m(Point(op.lon, op.lat), op.radius_m)
    return json.loads(shapely.to_geojson(circle.simplify(0.0002)))


def _audit_board(
    session: Session, principal: Principal, op: m.Operation, ids: list[str], owners: list[str],
    now: datetime,
) -> None:  # fmt: skip
    """Audit the picture unless this viewer was shown exactly it within the interval."""
    a = m.AuditEntry
    last = session.execute(
        select(a.ts, a.record_ids)
        .where(a.user_id == principal.user_id, a.subject == f"operation:{op.id}",
               a.action == "map_view")
        .order_by(a.seq.desc()).limit(1)
    ).first()  # fmt: skip
    shown = json.dumps(sorted(ids)[: audit.MAX_RECORD_IDS], ensure_ascii=False)
    if last is not None and now - last.ts < BOARD_AUDIT_EVERY:
        before = json.dumps(sorted(json.loads(last.record_ids or "[]")), ensure_ascii=False)
        if before == shown:
            return
    audit.record(
        session, principal, "map_view", now=now, dataset="operations",
        query={"kind": "operation", "value": str(op.id)}, result_count=len(ids),
        record_ids=sorted(ids), owner_cities=owners, decision="ok",
    )  # fmt: skip


def board(
    session: Session,
    principal: Principal,
    operation_id: int,
    *,
    now: datetime,
    reach_km: float = REACH_KM,
    k: int = MAX_UNITS,
) -> Board:
    """The board of one operation for one viewer (audited as a map view).

    Raises
    ------
    AccessDenied
        ``role_not_allowed`` unless a commander.
    InputError
        ``unknown_operation`` when the viewer's city neither leads it nor was invited.
    """
    op = _visible(session, principal, operation_id)
    part = _participants(session, op.id)
    city = principal.city_code or ""
    my_status = "lead" if city == op.lead_city else part[city]
    grants = session.info.get("grants", ())
    incident, hidden = None, False
    if op.incident_id is not None:
        i = m.Incident
        row = session.execute(
            select(i.id, i.type_code, i.severity, i.status, i.ts, i.lon, i.lat, i.city_code,
                   i.district_code, i.classification)
            .where(i.id == op.incident_id, row_filter(session, principal, i, grants))
        ).first()  # fmt: skip
        incident = row._asdict() if row is not None else None
        hidden = row is None
    cities = parties(op, part)
    units = units_in_reach(session, principal, cities, op.lon, op.lat,
                           reach_m=op.radius_m + reach_km * 1000, k=k)  # fmt: skip
    requests = _request_frame(session, principal, op.id)
    # Units held by the operation are listed even when they are beyond reach.
    extra = sorted(set(requests["unit_id"]) - set(units["id"])) if len(requests) else []
    if extra:
        u = m.Unit
        more = session.execute(
            select(*(getattr(u, c) for c in _UNIT_COLS))
            .where(u.id.in_(extra), row_filter(session, principal, u, grants))
        ).all()  # fmt: skip
        more = pd.DataFrame(more, columns=list(_UNIT_COLS))
        if len(more):
            index = UnitIndex(more["id"].to_numpy(), more["lon"], more["lat"], more["kind"])
            near = index.nearest(op.lon, op.lat, k=len(more)).set_index("id")
            more["distance_km"] = (more["id"].map(near["distance_m"]) / 1000).round(2)
            more["eta_min"] = more["id"].map(near["eta_min"]).round(1)
            units = pd.concat([units, more], ignore_index=True)
    held = dict(zip(requests["unit_id"], requests["status"], strict=True)) if len(requests) else {}
    units["request_status"] = units["id"].map(
        lambda i: held.get(i) if held.get(i) in OPEN_STATES else None
    )
    ids = [f"units:{i}" for i in units["id"]]
    owners = list(units["city_code"].unique())
    if incident is not None:
        ids.append(f"incidents:{incident['id']}")
        owners.append(incident["city_code"])
    _audit_board(session, principal, op, ids, owners, now)
    operation = {
        "id": op.id, "name": op.name, "kind": op.kind, "status": op.status,
        "lead_city": op.lead_city, "lon": op.lon, "lat": op.lat, "radius_m": op.radius_m,
        "objectives": op.objectives, "created_at": op.created_at, "closed_at": op.closed_at,
        "risk_zone_id": op.risk_zone_id, "incident_id": op.incident_id,
    }  # fmt: skip
    participants = pd.DataFrame(
        session.execute(
            select(m.OperationParticipant.city_code, m.OperationParticipant.status,
                   m.OperationParticipant.responded_at)
            .where(m.OperationParticipant.operation_id == op.id)
            .order_by(m.OperationParticipant.city_code)
        ).all(),
        columns=["city_code", "status", "responded_at"],
    )  # fmt: skip
    return Board(
        operation=operation, my_status=my_status, participants=participants, incident=incident,
        incident_hidden=hidden, area=_area(session, principal, op), units=units,
        requests=requests, timeline=_timeline(session, op.id), now=now,
        exercise=op.exercise_run_id is not None,
    )  # fmt: skip


# --- the briefing (ICS-201 style) ------------------------------------------------------


def briefing(b: Board, city_names: dict[str, str]) -> dict:
    """An ICS-201-style summary of the board as a JSON-ready dict.

    Sections follow ICS 201 (incident briefing): 1 incident name, 2 prepared at,
    3 map/situation, 4 objectives, 5 organisation (lead and participating cities),
    6 resources (every request with its times), 7 significant events.
    """
    op = b.operation

    def stamp(v) -> str | None:
        return v.isoformat() if v is not None and not pd.isna(v) else None

    resources = [
        {"callsign": r.callsign, "kind": r.kind, "owner": city_names.get(r.owner_city, r.owner_city),
         "requested_by": city_names.get(r.requesting_city, r.requesting_city), "status": r.status,
         "requested_at": stamp(r.requested_at), "dispatched_at": stamp(r.dispatched_at),
         "on_scene_at": stamp(r.on_scene_at), "ended_at": stamp(r.ended_at)}
        for r in b.requests.itertuples()
    ]  # fmt: skip
    events = [
        {"ts": stamp(e.ts), "city": city_names.get(e.city_code or "", ""),
         "text": e.text if e.event is None else e.event}
        for e in b.timeline[b.timeline.significant].iloc[::-1].itertuples()
    ]  # fmt: skip
    return {
        "form": "ICS-201 (briefing summary)",
        "exercise": b.exercise,
        "incident_name": op["name"],
        "operation_id": op["id"],
        "kind": op["kind"],
        "prepared_at": b.now.isoformat(),
        "situation": {
            "centre": {"lon": op["lon"], "lat": op["lat"]},
            "radius_m": op["radius_m"],
            "incident": None
            if b.incident is None
            else {k: stamp(v) if isinstance(v, datetime) else v for k, v in b.incident.items()},
            "units_in_reach": int(len(b.units)),
            "units_available": int((b.units["status"] == "available").sum()) if len(b.units) else 0,
        },  # fmt: skip
        "objectives": op["objectives"],
        "organisation": {
            "lead": city_names.get(op["lead_city"], op["lead_city"]),
            "participants": [
                {"city": city_names.get(p.city_code, p.city_code), "status": p.status}
                for p in b.participants.itertuples()
            ],
        },
        "resources": resources,
        "significant_events": events,
    }


def briefing_markdown(brief: dict, labels: dict[str, str]) -> str:
    """The briefing as Markdown; `labels` gives the headings in the reader's language
    (keys: title, exercise, prepared, situation, objectives, organisation, resources,
    events, lead, none)."""
    lines = []
    if brief["exercise"]:
        lines.append(f"> **{labels['exercise']}**\n")
    lines += [f"# {labels['title']}: {brief['incident_name']}", "",
              f"{labels['prepared']}: {brief['prepared_at']}", "", f"## {labels['situation']}"]  # fmt: skip
    s = brief["situation"]
    lines.append(
        f"- {s['centre']['lon']:.5f}, {s['centre']['lat']:.5f} · r = {s['radius_m']:.0f} m"
    )
    if s["incident"]:
        inc = s["incident"]
        lines.append(f"- {inc['type_code']} · {inc['severity']} · {inc['status']} · {inc['ts']}")
    lines.append(f"- {s['units_available']} / {s['units_in_reach']}")
    lines += ["", f"## {labels['objectives']}", brief["objectives"] or labels["none"], "",
              f"## {labels['organisation']}", f"- {labels['lead']}: {brief['organisation']['lead']}"]  # fmt: skip
    lines += [f"- {p['city']}: {p['status']}" for p in brief["organisation"]["participants"]]
    lines += ["", f"## {labels['resources']}", "", "| callsign | kind | owner | requested by | "
              "status | requested | dispatched | on scene | ended |", "|" + " --- |" * 9]  # fmt: skip
    for r in brief["resources"]:
        cells = [r["callsign"], r["kind"], r["owner"], r["requested_by"], r["status"],
                 r["requested_at"], r["dispatched_at"], r["on_scene_at"], r["ended_at"]]  # fmt: skip
        lines.append("| " + " | ".join(str(c or "—") for c in cells) + " |")
    lines += ["", f"## {labels['events']}"]
    for e in brief["significant_events"]:
        text = (
            e["text"] if isinstance(e["text"], str) else json.dumps(e["text"], ensure_ascii=False)
        )
        lines.append(f"- {e['ts']} {e['city']} {text}")
    if not brief["significant_events"]:
        lines.append(labels["none"])
    return "\n".join(lines) + "\n"


# --- sharing incidents (EIDO-like JSON) --------------------------------------------------


def incident_eido(
    session: Session, principal: Principal, incident_id: int, **lookup: object
) -> dict:
    """One incident as an EIDO-like object (`hub.exchange`), read as an audited export.

    `lookup` is what `hub.records.lookup` takes (reason, grants, cipher, now): the
    incident is shared only if this viewer may open it, with its narrative masked
    exactly as the viewer sees it.

    Raises
    ------
    InputError
        ``unknown_incident`` when the viewer may not open it (the lookup's pointer is
        audited).
    """
    from hub import records
    from hub.exchange import incident_to_eido

    _require_commander(principal)
    i = m.Incident
    found = records.lookup(
        session, principal, "incidents", i.id == int(incident_id),
        query={"kind": "eido", "value": f"incidents:{int(incident_id)}"}, action="export",
        **lookup,
    )  # fmt: skip
    if not found.rows:
        raise InputError("unknown_incident", f"no incident {incident_id}", id=incident_id)
    shown = found.rows[0]
    source_id, reported_at = session.execute(
        select(i.source_id, i.reported_at).where(
            i.id == int(incident_id),
            row_filter(session, principal, i, lookup.get("grants", ())),
        )
    ).one()
    fields = ("city_code", "district_code", "classification", "type_code", "severity", "ts",
              "lon", "lat", "address", "summary")  # fmt: skip
    incident = {k: shown[k] for k in fields}
    # EIDO knows open / handling / closed; anything else a city uses travels as handling.
    status = shown["status"] if shown["status"] in ("open", "handling", "closed") else "handling"
    return incident_to_eido(
        {**incident, "status": status, "source_id": source_id, "reported_at": reported_at}
    )


# Incidents taken in by EIDO import are filed under their own natural keys: the
# tracking identifier behind this prefix. Feeds key their records by the city's own
# source ids, so an import cannot land on (or be answered by) a feed's record.
IMPORT_KEY_PREFIX = "eido:"


def _import_key(city_code: str, source_id: str) -> str:
    key = f"{IMPORT_KEY_PREFIX}{city_code}:{source_id}"
    if len(key) <= 64:  # the column's length
        return key
    return f"{IMPORT_KEY_PREFIX}{city_code}:~{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _highest_own_level(principal: Principal) -> str:
    rel = relation(principal, principal.city_code or "", None)
    return [lv for lv in CLASSIFICATIONS if base_outcome(principal.role, lv, rel).opens][-1]


def import_eido(
    session: Session, principal: Principal, eido: dict, *, now: datetime, cipher: FieldCipher
) -> tuple[int, bool]:
    """Take in an incident another city shared as EIDO JSON; returns (its id, whether new).

    The copy belongs to the importer's city, at the shared classification, which may be
    no higher than the importer opens in their own city; its origin stays in its natural
    key (`IMPORT_KEY_PREFIX` + the tracking identifier). Importing the same object again
    finds that copy; the lookup runs under the importer's row filter and only in their
    city, so the answer never tells anything about a record they may not open. ID
    numbers and phones in the narrative and address are sealed (`narrative.seal`).
    Every import is audited: accepted here (``created`` or ``exists``), refused by the
    Hub's refusal path.

    Raises
    ------
    InputError
        ``bad_eido`` / ``bad_incident`` (`hub.exchange.incident_from_eido`),
        ``eido_own_city`` (the importer's city's own incidents come in by its feeds),
        ``eido_above_level`` (params ``level``, ``max``), ``bad_location`` (outside
        the province), ``unknown_city``, ``eido_key_taken``.
    """
    import h3

    from hub.exchange import incident_from_eido

    city = _require_commander(principal)
    inc = incident_from_eido(eido)
    if inc["city_code"] == city:
        raise InputError("eido_own_city", "your city's own incidents come in by its feeds")
    ceiling = _highest_own_level(principal)
    if classification_rank(inc["classification"]) > classification_rank(ceiling):
        raise InputError(
            "eido_above_level", "the import is classified above what you may open",
            level=inc["classification"], max=ceiling,
        )  # fmt: skip
    lon, lat = check_point(inc["lon"], inc["lat"])
    _cities_known(session, [inc["city_code"]])
    tracking = f"{inc['city_code']}:{inc['source_id']}"
    key = _import_key(inc["city_code"], inc["source_id"])
    i = m.Incident
    # Under the importer's row filter (the session's backstop): a copy they may not
    # open is not found.
    existing = session.scalar(select(i.id).where(i.city_code == city, i.source_id == key))
    created = existing is None
    if created:
        # Only a record of the importer's own city can hold the key, and only one its
        # feed keyed like an import; refuse rather than fail on the unique index.
        taken = session.scalar(
            select(i.id)
            .where(i.city_code == city, i.source_id == key)
            .execution_options(policy="validation")
        )
        if taken is not None:
            raise InputError("eido_key_taken", "your city already has a record under this key")
        row = m.Incident(
            **{k: inc[k] for k in ("classification", "type_code", "severity", "status", "ts",
                                   "reported_at")},
            source_id=key, city_code=city, district_code=None,
            address=seal(inc["address"], cipher, max_len=200), summary=seal(inc["summary"], cipher),
            lon=lon, lat=lat, h3_r7=h3.latlng_to_cell(lat, lon, 7),
            h3_r8=h3.latlng_to_cell(lat, lon, 8),
        )  # fmt: skip
        session.add(row)
        session.flush()
        existing = row.id
    audit.record(
        session, principal, "import", now=now, dataset="incidents",
        query={"kind": "eido", "value": tracking[:64]}, record_ids=[f"incidents:{existing}"],
        owner_cities=[city], decision="created" if created else "exists",
    )  # fmt: skip
    return existing, created
