"""Plate watch (布控): a plate on watch with a reason and an expiry; every read of it in
the watch's scope raises a hit for the watcher and for the commanders of the city where
the car was read.

No new access path. A watch may cover other cities' data; its hits then follow the
lookup rules: a read the viewer may open is shown (the row filter decides), any other
is a `records.Pointer` with a one-click request through `access.request_access`. The
watched car's track is `trajectory.plate_trajectory` under the watch's reason.

Matching is one INSERT … SELECT per committed feed batch: the batch's sightings (by
`source_batch_id`) joined to the active watches on their plates (a partial index of
watches not ended), so a read costs the same whether 10 or 100,000 plates are watched.
A hit is unique per (watch, sighting): matching a batch twice raises nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, and_, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub import assists, records, response, trajectory
from hub.boundary import guard_methods
from hub.models import (
    AssistRecipient,
    AssistRequest,
    Camera,
    Case,
    City,
    Sighting,
    User,
    UTCDateTime,
    Vehicle,
    VehicleCaseLink,
    Watch,
    WatchHit,
)
from hub.security import access, audit, scopes
from hub.security.backstop import row_filter
from hub.security.crypto import FieldCipher
from hub.security.errors import AccessDenied, InputError, RequestError
from hub.security.policy import GrantScope, Principal
from hub.security.reasons import Reason, check_reason
from hub.store import transaction

if TYPE_CHECKING:
    from hub.service import Hub

# DESIGN §5b and the issue: investigators and commanders watch plates; approvers oversee.
WATCH_ROLES = frozenset({"investigator", "commander"})
LIST_ROLES = frozenset({"investigator", "commander", "city_approver", "province_approver"})
PROVINCE = "province"
# A watch is bounded: a plate watched for ever is surveillance nobody reviews.
MAX_WATCH = timedelta(days=30)
MAX_JUSTIFICATION = 1000
MAX_HITS = 200


@dataclass(frozen=True)
class WatchView:
    """One watch as its list shows it: what, by whom, why, where and until when."""

    id: int
    plate: str
    owner_id: int
    owner_name: str
    owner_city: str | None
    purpose: str
    case_no: str
    justification: str | None
    scope: tuple[str, ...]  # ("province",) or the watched cities' adcodes
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    active: bool
    hits: int


@dataclass(frozen=True)
class HitView:
    """A hit as one viewer may see it: the read itself (`sighting`) when the viewer may
    open it, otherwise a `pointer` (owner city, level, day) with its request route."""

    id: int
    watch_id: int
    plate: str
    city_code: str
    case_no: str
    owner_city: str | None  # the watching (requesting) city
    created_at: datetime
    mine: bool  # the viewer's own watch (else: a read in the commander's city)
    sighting: dict | None
    pointer: records.Pointer | None


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InputError("bad_expiry", "the expiry needs a time-zone aware time", field=name)
    return value.astimezone(UTC)


def _scope(session: Session, scope: str | Sequence[str]) -> str:
    """'province', or the known cities' adcodes, sorted and joined by commas."""
    if isinstance(scope, str):
        if scope == PROVINCE:
            return PROVINCE
        scope = [scope]
    cities = sorted({str(c).strip() for c in scope})
    if not cities:
        raise InputError("watch_scope_required", "choose the province or at least one city")
    known = set(session.scalars(select(City.adcode).where(City.adcode.in_(cities))))
    unknown = [c for c in cities if c not in known]
    if unknown:
        raise InputError("unknown_city", f"unknown city {unknown[0]!r}", city=unknown[0][:8])
    return ",".join(cities)


def _scope_tuple(scope: str) -> tuple[str, ...]:
    return (PROVINCE,) if scope == PROVINCE else tuple(scope.split(","))


def create_watch(
    session: Session, principal: Principal, *, plate: str, reason: Reason,
    scope: str | Sequence[str], expires_at: datetime, justification: str = "", now: datetime,
) -> Watch:  # fmt: skip
    """Put a plate on watch for an open case of the watcher's city.

    Parameters
    ----------
    plate
        A valid plate (normalised here).
    reason
        Purpose from the code table and an open case of the watcher's city.
    scope
        ``"province"`` or the adcodes of the cities whose reads are watched; other
        cities' reads the watcher may not open arrive as pointers.
    expires_at
        Required: after `now`, at most `MAX_WATCH` ahead.
    justification
        Optional free text (the boundary refuses ID numbers and phones in it).

    Raises
    ------
    AccessDenied
        ``role_cannot_watch``.
    InputError
        ``bad_plate``, ``bad_expiry`` (params ``days``), ``watch_scope_required``,
        ``unknown_city``, ``too_long``, ``watch_exists``.
    ReasonError
        As `check_reason`.
    """
    if principal.role not in WATCH_ROLES:
        raise AccessDenied("role_cannot_watch", "this role cannot put plates on watch")
    value = scopes.parse_scope("plate", plate)
    expires = _utc(expires_at, "expires_at")
    if not now < expires <= now + MAX_WATCH:
        raise InputError(
            "bad_expiry", "the expiry must be after now and within the limit",
            days=MAX_WATCH.days,
        )  # fmt: skip
    justification = (justification or "").strip()
    if len(justification) > MAX_JUSTIFICATION:
        raise InputError(
            "too_long", "justification too long", field="justification", limit=MAX_JUSTIFICATION
        )
    watched = _scope(session, scope)
    reason = reason.normalised()
    case = check_reason(session, principal, reason)
    exists = session.scalar(
        select(Watch.id).where(
            Watch.owner_id == principal.user_id, Watch.plate == value,
            Watch.ended_at.is_(None), Watch.expires_at > now,
        )
    )  # fmt: skip
    if exists is not None:
        raise InputError("watch_exists", "you already watch this plate", id=exists)
    watch = Watch(
        plate=value, owner_id=principal.user_id, owner_city=principal.city_code,
        purpose=reason.purpose, case_no=reason.case_no, case_id=case.id,
        justification=justification or None, scope=watched, created_at=now, expires_at=expires,
    )  # fmt: skip
    session.add(watch)
    session.flush()
    cities = [] if watched == PROVINCE else watched.split(",")
    audit.record(
        session, principal, "watch_create", now=now, dataset="watches",
        query={"kind": "plate", "value": value}, purpose=reason.purpose,
        case_no=reason.case_no, owner_cities=cities, decision="ok",
        detail={"watch_id": watch.id, "scope": watched, "expires_at": expires.isoformat()},
    )  # fmt: skip
    return watch


def _may_end(principal: Principal, watch: Watch) -> str | None:
    """How this principal may end the watch (``owner`` or ``approver``), or None."""
    if watch.owner_id == principal.user_id:
        return "owner"
    if principal.role == "province_approver":
        return "approver"
    if principal.role == "city_approver" and principal.city_code == watch.owner_city:
        return "approver"
    return None


def end_watch(session: Session, principal: Principal, watch_id: int, *, now: datetime) -> Watch:
    """The watcher, an approver of the watcher's city or a province approver ends a watch.

    Raises
    ------
    InputError
        ``unknown_watch`` (none, or not this principal's to end: one answer for both).
    RequestError
        ``watch_not_active`` (ended or expired already; of two ends at once one stands).
    """
    watch = session.get(Watch, int(watch_id))
    how = _may_end(principal, watch) if watch is not None else None
    if how is None:
        raise InputError("unknown_watch", f"no watch {watch_id} of yours", id=watch_id)
    done = session.execute(
        update(Watch)
        .where(Watch.id == watch.id, Watch.ended_at.is_(None), Watch.expires_at > now)
        .values(ended_at=now, ended_by=principal.user_id, end_reason=how)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise RequestError("watch_not_active", "the watch has ended already", id=watch_id)
    session.refresh(watch)
    audit.record(
        session, principal, "watch_end", now=now, dataset="watches",
        query={"kind": "plate", "value": watch.plate}, purpose=watch.purpose,
        case_no=watch.case_no, owner_cities=[watch.owner_city] if watch.owner_city else [],
        decision=how, detail={"watch_id": watch.id, "owner_id": watch.owner_id},
    )  # fmt: skip
    return watch


# --- the watch list ---------------------------------------------------------------------


def _in_scope(city: str):
    """Watches whose scope holds `city` (adcodes are digits: no LIKE wildcard in them)."""
    return or_(Watch.scope == PROVINCE, ("," + Watch.scope + ",").contains(f",{city},"))


def _views(session: Session, where, now: datetime) -> list[WatchView]:
    hits = select(WatchHit.watch_id, func.count().label("n")).group_by(WatchHit.watch_id).subquery()
    rows = session.execute(
        select(Watch, User.display_name, func.coalesce(hits.c.n, 0))
        .join(User, User.id == Watch.owner_id)
        .outerjoin(hits, hits.c.watch_id == Watch.id)
        .where(where)
        .order_by(Watch.expires_at.desc(), Watch.id.desc())
        .limit(500)
    ).all()
    return [
        WatchView(
            w.id, w.plate, w.owner_id, name, w.owner_city, w.purpose, w.case_no,
            w.justification, _scope_tuple(w.scope), w.created_at, w.expires_at, w.ended_at,
            w.end_reason, w.ended_at is None and w.expires_at > now, n,
        )
        for w, name, n in rows
    ]  # fmt: skip


def _active(now: datetime):
    return and_(Watch.ended_at.is_(None), Watch.expires_at > now)


def watches_for_city(
    session: Session, principal: Principal, city: str, *, now: datetime, active_only: bool = True
) -> list[WatchView]:
    """What is being watched by `city`'s users or on `city`'s reads, by whom, why and until
    when. For the city's own record roles and approvers; province approvers, any city.
    Audited as a view of the list."""
    if principal.role not in LIST_ROLES:
        raise AccessDenied("role_not_allowed", "this role cannot do that")
    if principal.role != "province_approver" and city != principal.city_code:
        raise AccessDenied("not_your_city", "the watch list of another city")
    where = or_(Watch.owner_city == city, _in_scope(city))
    views = _views(session, and_(where, _active(now)) if active_only else where, now)
    audit.record(
        session, principal, "view", now=now, dataset="watches",
        query={"kind": "watch_list", "value": city}, result_count=len(views),
        record_ids=[f"watches:{v.id}" for v in views], owner_cities=[city],
    )  # fmt: skip
    return views


def my_watches(
    session: Session, principal: Principal, *, now: datetime, active_only: bool = False
) -> list[WatchView]:
    """The principal's own watches, newest expiry first (not audited: their own acts)."""
    where = Watch.owner_id == principal.user_id
    return _views(session, and_(where, _active(now)) if active_only else where, now)


# --- matching ---------------------------------------------------------------------------


def _insert_hits(dialect: str):
    return (postgresql if dialect == "postgresql" else sqlite).insert(WatchHit.__table__)


def match_batch(target: Engine | Session, batch_id: int, *, now: datetime | None = None) -> int:
    """Raise the hits of one committed feed batch of sightings; returns how many were new.

    Called by the stream consumer after each committed micro-batch, and usable after a
    file ingest. A read raises a hit on every watch of its plate that is active at `now`,
    was made before the read, and whose scope holds the read's city. Inserted with ON
    CONFLICT DO NOTHING on (watch, sighting): rematching (or two matchers at once) never
    doubles a hit. The hits raised are audited as one system entry, in the same
    transaction.
    """
    if isinstance(target, Engine):
        with transaction(target) as session:
            return match_batch(session, batch_id, now=now)
    session, now = target, now or datetime.now(UTC)
    s, w = Sighting.__table__, Watch.__table__
    scope_holds = or_(
        w.c.scope == PROVINCE, ("," + w.c.scope + ",").contains("," + s.c.city_code + ",")
    )
    found = (
        select(
            w.c.id,
            s.c.id,
            s.c.plate,
            s.c.city_code,
            s.c.camera_id,
            s.c.ts,
            literal(now, UTCDateTime),
        )  # fmt: skip
        .select_from(s.join(w, w.c.plate == s.c.plate))
        .where(
            s.c.source_batch_id == int(batch_id),
            w.c.ended_at.is_(None),
            w.c.expires_at > now,
            w.c.created_at <= s.c.ts,
            scope_holds,
        )  # fmt: skip
    )
    cols = ["watch_id", "sighting_id", "plate", "city_code", "camera_id", "ts", "created_at"]
    stmt = (
        _insert_hits(session.get_bind().dialect.name)
        .from_select(cols, found)
        .on_conflict_do_nothing(index_elements=["watch_id", "sighting_id"])
        .returning(WatchHit.id, WatchHit.watch_id, WatchHit.sighting_id, WatchHit.city_code)
    )
    raised = session.execute(stmt).all()
    if raised:
        audit.record(
            session, None, "watch_hit", now=now, username="system", dataset="watch_hits",
            query={"kind": "feed_batch", "value": str(int(batch_id))},
            result_count=len(raised), record_ids=[f"sightings:{r.sighting_id}" for r in raised],
            owner_cities=[r.city_code for r in raised], decision="raised",
            detail={"hit_ids": [r.id for r in raised],
                    "watch_ids": sorted({r.watch_id for r in raised})},
        )  # fmt: skip
    return len(raised)


def watched_plates(engine: Engine, *, now: datetime | None = None) -> frozenset[str]:
    """The plates of the active watches (the partial plate index holds only those): the
    stream consumer's fast lane sends a micro-batch holding one of them ahead."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Watch.plate).where(Watch.ended_at.is_(None), Watch.expires_at > now).distinct()
        )
        return frozenset(rows.scalars())


# --- hits as one viewer sees them ---------------------------------------------------------


def _hit_scope(principal: Principal):
    """The hits a principal is told of: their own watches', and for commanders every hit
    read in their city."""
    mine = Watch.owner_id == principal.user_id
    if principal.role == "commander" and principal.city_code:
        return or_(mine, WatchHit.city_code == principal.city_code)
    return mine


def _readable(session: Session, principal: Principal, ids: list[int], grants) -> dict[int, dict]:
    """The sightings among `ids` the principal may open, with their camera names."""
    if not ids:
        return {}
    allowed = row_filter(session, principal, Sighting, grants)
    found = session.scalars(select(Sighting).where(Sighting.id.in_(ids), allowed)).all()
    cams = {r.camera_id for r in found}
    names = dict(session.execute(select(Camera.id, Camera.name).where(Camera.id.in_(cams))).all())
    return {
        r.id: {
            "id": r.id, "ts": r.ts, "camera_id": r.camera_id, "camera": names.get(r.camera_id),
            "city_code": r.city_code, "district_code": r.district_code, "lon": r.lon,
            "lat": r.lat, "speed_kmh": r.speed_kmh, "classification": r.classification,
        }
        for r in found
    }  # fmt: skip


def _levels(session: Session, ids: list[int]) -> dict[int, str]:
    # The level of reads the viewer may not open is what a pointer says, nothing more:
    # read past the row filter on purpose, and only the classification.
    if not ids:
        return {}
    rows = session.execute(
        select(Sighting.id, Sighting.classification)
        .where(Sighting.id.in_(ids))
        .execution_options(policy="aggregate")
    )
    return dict(rows.all())


def hits(
    session: Session, principal: Principal, *, now: datetime, grants: Sequence[GrantScope],
    since: datetime | None = None, watch_id: int | None = None, limit: int = MAX_HITS,
) -> list[HitView]:  # fmt: skip
    """The hits this principal is told of, newest first: reads they may open as rows, the
    others as pointers. Audited as a view when any hit is shown.

    Parameters
    ----------
    since
        Only hits raised after this moment (a live page asks for what is new).
    watch_id
        Only this watch's hits.
    """
    where = [_hit_scope(principal)]
    if since is not None:
        where.append(WatchHit.created_at > since)
    if watch_id is not None:
        where.append(WatchHit.watch_id == int(watch_id))
    rows = session.execute(
        select(WatchHit, Watch.owner_id, Watch.case_no, Watch.owner_city)
        .join(Watch, Watch.id == WatchHit.watch_id)
        .where(*where)
        .order_by(WatchHit.created_at.desc(), WatchHit.id.desc())
        .limit(min(int(limit), MAX_HITS))
    ).all()
    ids = sorted({h.sighting_id for h, *_ in rows})
    opened = _readable(session, principal, ids, grants)
    levels = _levels(session, [i for i in ids if i not in opened])
    out = []
    for h, owner_id, case_no, owner_city in rows:
        row = opened.get(h.sighting_id)
        pointer = None
        if row is None:
            level = levels.get(h.sighting_id)
            pointer = level and records.make_pointer(
                principal, "sightings", h.city_code, level, 1, h.ts, h.ts
            )
            if not pointer:  # retention dropped the read, or the viewer may never see it
                continue
        out.append(
            HitView(h.id, h.watch_id, h.plate, h.city_code, case_no, owner_city, h.created_at,
                    owner_id == principal.user_id, row, pointer)
        )  # fmt: skip
    if out:
        shown = [f"sightings:{v.sighting['id']}" for v in out if v.sighting]
        audit.record(
            session, principal, "view", now=now, dataset="watch_hits",
            query={"kind": "watch_hits", "value": str(watch_id) if watch_id else "all"},
            result_count=len(shown), record_ids=shown, owner_cities=[v.city_code for v in out],
            decision="ok" if len(shown) == len(out) else "pointer",
            detail={"hit_ids": [v.id for v in out], "pointers": len(out) - len(shown)},
        )  # fmt: skip
    return out


def _told_hit(session: Session, principal: Principal, hit_id: int) -> tuple[WatchHit, Watch]:
    row = session.execute(
        select(WatchHit, Watch)
        .join(Watch, Watch.id == WatchHit.watch_id)
        .where(WatchHit.id == int(hit_id), _hit_scope(principal))
    ).first()
    if row is None:
        raise InputError("unknown_hit", f"no hit {hit_id} for you", id=hit_id)
    return row[0], row[1]


def request_for_hit(
    session: Session, principal: Principal, hit_id: int, *, justification: str,
    now: datetime, cipher: FieldCipher | None = None,
) -> int:  # fmt: skip
    """The one-click request from a pointer hit: the plate's reads in the hit's city at
    the read's level, under the watch's reason (the watcher's own hits only)."""
    hit, watch = _told_hit(session, principal, hit_id)
    if watch.owner_id != principal.user_id:
        raise InputError("unknown_hit", f"no hit {hit_id} for you", id=hit_id)
    level = _levels(session, [hit.sighting_id]).get(hit.sighting_id)
    if level is None:
        raise InputError("unknown_hit", f"no hit {hit_id} for you", id=hit_id)
    req = access.request_access(
        session, principal, owner_city=hit.city_code, level=level, scope_kind="plate",
        scope_value=hit.plate, reason=Reason(watch.purpose, watch.case_no),
        justification=justification, now=now, cipher=cipher,
    )  # fmt: skip
    return req.id


def operation_from_hit(
    session: Session, principal: Principal, hit_id: int, *, now: datetime
) -> int:
    """A commander of the city where the car was read opens a joint operation at the read,
    led by their city and inviting the watching city (one click from the hit).

    Raises
    ------
    InputError
        ``unknown_hit`` (not a hit in this commander's city), ``hit_not_open`` (the read
        is one the commander may not open: its place is not theirs to act on).
    """
    hit, watch = _told_hit(session, principal, hit_id)
    if principal.role != "commander" or hit.city_code != principal.city_code:
        raise InputError("unknown_hit", f"no hit {hit_id} in your city", id=hit_id)
    grants = session.info.get("grants", ())
    read = _readable(session, principal, [hit.sighting_id], grants).get(hit.sighting_id)
    if read is None:
        raise InputError("hit_not_open", "the read of this hit is not open to you", id=hit_id)
    invite = [watch.owner_city] if watch.owner_city and watch.owner_city != hit.city_code else []
    return response.create_operation(
        session, principal, name=f"{watch.case_no} {watch.plate}", kind="planned_event",
        lon=read["lon"], lat=read["lat"], invite=invite, now=now,
    )  # fmt: skip


def _watched_vehicle(session: Session, watch: Watch, plate: str) -> int | None:
    """The vehicle record an assist from a hit is about: the case's own vehicle of the
    plate, else one registered in the watching city, else any of the plate. Read past
    the row filter on purpose (`policy="validation"`): the request carries the id only,
    and whoever opens the subject does so through `records.view_record`."""
    linked = (
        select(VehicleCaseLink.vehicle_id)
        .where(VehicleCaseLink.case_id == watch.case_id)
        .scalar_subquery()
    )
    first = (
        select(Vehicle.id)
        .where(Vehicle.plate == plate)
        .order_by(
            Vehicle.id.in_(linked).desc(),
            (Vehicle.city_code == watch.owner_city).desc(),
            Vehicle.id,
        )  # fmt: skip
        .limit(1)
        .execution_options(policy="validation")
    )
    return session.scalar(first)


def assist_from_hit(
    session: Session, principal: Principal, hit_id: int, *, asked: str, now: datetime
) -> int:
    """A commander of the city where the car was read opens an assistance request (协查)
    from the hit, one click: under the watch's case, about the watched vehicle, asking
    the watching (requesting) city. The same rules as `operation_from_hit`; a second
    click while that request is open returns it rather than asking twice.

    Raises
    ------
    InputError
        ``unknown_hit`` (not a hit in this commander's city), ``hit_not_open`` (the read
        is not open to the commander), ``assist_own_city`` (the watch is the commander's own
        city's), ``no_vehicle_record`` (no vehicle of the plate is registered), or a
        refusal of `asked` as free text (`response.clean_text`).
    """
    hit, watch = _told_hit(session, principal, hit_id)
    if principal.role != "commander" or hit.city_code != principal.city_code:
        raise InputError("unknown_hit", f"no hit {hit_id} in your city", id=hit_id)
    grants = session.info.get("grants", ())
    if hit.sighting_id not in _readable(session, principal, [hit.sighting_id], grants):
        raise InputError("hit_not_open", "the read of this hit is not open to you", id=hit_id)
    if not watch.owner_city or watch.owner_city == hit.city_code:
        raise InputError("assist_own_city", "the watch is your own city's: no one to ask")
    status = session.scalar(
        select(Case.status).where(Case.id == watch.case_id).execution_options(policy="validation")
    )
    if status != "open":  # the watcher's case was closed since: nothing left to ask
        raise InputError("no_open_case", "the watch's case is not open", case_no=watch.case_no)
    text = response.clean_text(asked, "asked")
    vehicle = _watched_vehicle(session, watch, hit.plate)
    if vehicle is None:
        raise InputError("no_vehicle_record", "no vehicle of this plate is registered", id=hit_id)
    a, r = AssistRequest, AssistRecipient
    open_one = session.scalar(
        select(a.id)
        .join(r, and_(r.assist_id == a.id, r.city_code == watch.owner_city))
        .where(
            a.from_city == principal.city_code, a.case_id == watch.case_id,
            a.subject_kind == "vehicle", a.subject_id == vehicle, a.status == "open",
        )
        .limit(1)
    )  # fmt: skip
    if open_one is not None:
        return open_one
    return assists.open_assist(
        session, principal, case_id=watch.case_id, case_no=watch.case_no,
        subject_kind="vehicle", subject_id=vehicle, asked=text, to_cities=[watch.owner_city],
        now=now, detail={"hit_id": hit.id, "watch_id": watch.id},
    )  # fmt: skip


def track(
    session: Session, principal: Principal, watch_id: int, *, now: datetime,
    grants: Sequence[GrantScope], cipher: FieldCipher,
) -> trajectory.Trajectory:  # fmt: skip
    """The watched car's track since the watch began (at most the trajectory's window),
    under the watch's reason: a lookup like any other (filtered, pointers, audited)."""
    watch = session.get(Watch, int(watch_id))
    if watch is None or watch.owner_id != principal.user_id:
        raise InputError("unknown_watch", f"no watch {watch_id} of yours", id=watch_id)
    end = min(now, watch.ended_at or now, watch.expires_at)
    start = max(watch.created_at, end - trajectory.MAX_WINDOW)
    return trajectory.plate_trajectory(
        session, principal, watch.plate, start=start, end=end,
        reason=Reason(watch.purpose, watch.case_no), grants=grants, cipher=cipher, now=now,
    )  # fmt: skip


# --- the facade Hub composes (`hub.watch`) ------------------------------------------------


@guard_methods
class WatchDesk:
    """Plate watch as pages call it: each method one transaction with the caller's
    principal (`Hub._run`), its text checked and its refusals audited like Hub's own."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def _session(self, principal: Principal | None = None, **kw):
        # The boundary audits a refusal through the object's own `_session`.
        return self._hub._session(principal, **kw)

    def _run(self, principal: Principal, action: str, fn, now: datetime | None, **fields):
        when = now or datetime.now(UTC)
        return self._hub._run(
            principal, action, lambda s: fn(s, when), now=now,
            audit_fields={"dataset": "watches", **fields},
        )  # fmt: skip

    def create_watch(
        self, principal: Principal, plate: str, reason: Reason, scope: str | Sequence[str],
        expires_at: datetime, justification: str = "", *, now: datetime | None = None,
    ) -> int:  # fmt: skip
        """Put a plate on watch (see `create_watch`); returns the watch's id."""
        return self._run(
            principal, "watch_create",
            lambda s, t: create_watch(
                s, principal, plate=plate, reason=reason, scope=scope, expires_at=expires_at,
                justification=justification, now=t,
            ).id,
            now, query={"kind": "plate", "value": plate[:64]},
            purpose=reason.purpose[:32], case_no=reason.case_no[:32],
        )  # fmt: skip

    def end_watch(
        self, principal: Principal, watch_id: int, *, now: datetime | None = None
    ) -> None:
        self._run(principal, "watch_end", lambda s, t: end_watch(s, principal, watch_id, now=t),
                  now, query={"watch_id": watch_id})  # fmt: skip

    def my_watches(
        self, principal: Principal, *, active_only: bool = False, now: datetime | None = None
    ) -> list[WatchView]:
        return self._run(principal, "view",
                         lambda s, t: my_watches(s, principal, now=t, active_only=active_only), now)  # fmt: skip

    def watches_for_city(
        self, principal: Principal, city: str | None = None, *, active_only: bool = True,
        now: datetime | None = None,
    ) -> list[WatchView]:  # fmt: skip
        """The watch list of `city` (default: the viewer's own)."""
        where = city or principal.city_code or ""
        return self._run(
            principal, "view",
            lambda s, t: watches_for_city(s, principal, where, now=t, active_only=active_only),
            now, query={"kind": "watch_list", "value": where[:8]},
        )  # fmt: skip

    def hits(
        self, principal: Principal, *, since: datetime | None = None, watch_id: int | None = None,
        now: datetime | None = None,
    ) -> list[HitView]:  # fmt: skip
        return self._run(
            principal, "view",
            lambda s, t: hits(s, principal, now=t, grants=s.info["grants"], since=since,
                              watch_id=watch_id),
            now, query={"kind": "watch_hits", "value": str(watch_id or "all")},
        )  # fmt: skip

    def request_for_hit(
        self, principal: Principal, hit_id: int, justification: str, *,
        now: datetime | None = None,
    ) -> int:  # fmt: skip
        return self._run(
            principal, "request",
            lambda s, t: request_for_hit(s, principal, hit_id, justification=justification,
                                         now=t, cipher=self._hub.cipher),
            now, query={"hit_id": hit_id},
        )  # fmt: skip

    def operation_from_hit(
        self, principal: Principal, hit_id: int, *, now: datetime | None = None
    ) -> int:
        return self._run(principal, "operation_create",
                         lambda s, t: operation_from_hit(s, principal, hit_id, now=t), now,
                         query={"hit_id": hit_id})  # fmt: skip

    def assist_from_hit(
        self, principal: Principal, hit_id: int, asked: str, *, now: datetime | None = None
    ) -> int:
        """The one-click assistance request (协查) from a hit (see `assist_from_hit`);
        returns the request's id."""
        return self._run(principal, "assist_create",
                         lambda s, t: assist_from_hit(s, principal, hit_id, asked=asked, now=t),
                         now, query={"hit_id": hit_id})  # fmt: skip

    def track(
        self, principal: Principal, watch_id: int, *, now: datetime | None = None
    ) -> trajectory.Trajectory:
        return self._run(
            principal, "search",
            lambda s, t: track(s, principal, watch_id, now=t, grants=s.info["grants"],
                               cipher=self._hub.cipher),
            now, query={"watch_id": watch_id},
        )  # fmt: skip

    def match_batch(self, batch_id: int, *, now: datetime | None = None) -> int:
        """Raise the hits of a committed feed batch (the system acts: no principal)."""
        with self._hub._session() as session:
            return match_batch(session, batch_id, now=now)
