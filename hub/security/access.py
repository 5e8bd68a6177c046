"""Requests for access, approvers' decisions, grants in force and break-glass."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.codes import CLASSIFICATIONS, codes
from hub.models import AccessRequest, Alarm, AuditEntry, City, Grant, Review, User
from hub.security import audit
from hub.security.crypto import FieldCipher
from hub.security.errors import AccessDenied, InputError, RequestError, refuse_nul
from hub.security.policy import GrantScope, Principal, base_outcome, route_for
from hub.security.reasons import Reason, check_reason
from hub.validate import (
    id_number_problem,
    is_valid_plate,
    normalize_id_number,
    normalize_phone,
    normalize_plate,
    phone_problem,
)

GRANT_HOURS = 24
BREAK_GLASS_HOURS = 2
SCOPE_KINDS = ("plate", "person", "case", "camera_area", "id_number", "phone")
MAX_JUSTIFICATION = 1000
REQUESTER_ROLES = frozenset(
    {"officer", "investigator", "city_approver", "commander", "province_approver"}
)
BREAK_GLASS_ROLES = frozenset({"investigator"})


def grants_in_force(session: Session, principal: Principal, *, now: datetime) -> list[GrantScope]:
    """The principal's grants in force at `now`: granted, not yet expired, not revoked."""
    rows = session.execute(
        select(
            Grant.id, Grant.owner_city, Grant.level, Grant.scope_kind, Grant.scope_value,
            Grant.expires_at,
        ).where(
            Grant.user_id == principal.user_id,
            Grant.granted_at <= now,
            Grant.expires_at > now,
            Grant.revoked_at.is_(None),
        )
    )  # fmt: skip
    return [GrantScope(*row) for row in rows]


def _scope(scope_kind: str, scope_value: str, cipher: FieldCipher | None = None) -> str:
    if scope_kind not in SCOPE_KINDS:
        raise InputError("bad_scope", f"unknown scope {scope_kind!r}")
    value = scope_value.strip()
    if scope_kind in ("id_number", "phone"):
        # Stored (and shown to the approver) as the blind index: a request never
        # carries an ID number or a phone number in clear.
        if cipher is None:
            raise InputError("bad_scope", "identifier scopes need the field cipher")
        if scope_kind == "id_number":
            value = normalize_id_number(value)
            if problem := id_number_problem(value):
                raise InputError("bad_id_number", problem, value="(withheld)")
        else:
            value = normalize_phone(value)
            if problem := phone_problem(value):
                raise InputError("bad_phone", problem, value="(withheld)")
        return cipher.blind_index(scope_kind, value)
    if scope_kind == "plate":
        value = normalize_plate(value)
        if not is_valid_plate(value):
            raise InputError("bad_plate", "not a valid plate", value=scope_value[:20])
    elif scope_kind in ("person", "case") and not value.isdigit():
        raise InputError("bad_scope", "person and case scopes name a record id")
    if len(value) > 400:
        raise InputError("too_long", "scope too long", field="scope", limit=400)
    return value


def _urgent(purpose: str) -> bool:
    return any(c.code == purpose and c.attrs.get("urgent") for c in codes("purpose"))


def request_access(
    session: Session,
    principal: Principal,
    *,
    owner_city: str,
    level: str,
    scope_kind: str,
    scope_value: str,
    reason: Reason,
    justification: str,
    now: datetime,
    cipher: FieldCipher | None = None,
) -> AccessRequest:
    """File a request; routed to the owning city's approver, or a province approver for
    secret records. Refused for roles that may not request, and for own-city requests
    the role already covers."""
    if principal.role not in REQUESTER_ROLES:
        raise AccessDenied("role_cannot_request", "this role cannot request record access")
    if level not in CLASSIFICATIONS or level == "public":
        raise InputError("bad_level", f"cannot request level {level!r}")
    if session.get(City, owner_city) is None:
        raise InputError("unknown_city", f"unknown city {owner_city!r}")
    rel = "own_city" if owner_city == principal.city_code else "other_city"
    if base_outcome(principal.role, level, rel).opens:
        raise InputError(
            "already_covered", "your role already opens these records", level=level, city=owner_city
        )
    justification = justification.strip()
    if not justification:
        raise InputError("justification_required", "say why the access is needed")
    if len(justification) > MAX_JUSTIFICATION:
        raise InputError(
            "too_long", "justification too long", field="justification", limit=MAX_JUSTIFICATION
        )
    refuse_nul(justification, "justification")
    value = _scope(scope_kind, scope_value, cipher)
    reason = reason.normalised()
    check_reason(session, principal, reason)
    req = AccessRequest(
        requester_id=principal.user_id,
        requester_city=principal.city_code,
        owner_city=owner_city,
        level=level,
        scope_kind=scope_kind,
        scope_value=value,
        purpose=reason.purpose,
        case_no=reason.case_no,
        justification=justification,
        route=route_for(level),
        urgent=_urgent(reason.purpose),
        status="pending",
        created_at=now,
    )
    session.add(req)
    session.flush()
    audit.record(
        session, principal, "request", now=now, dataset="access_requests",
        query={"kind": scope_kind, "value": value, "level": level, "owner_city": owner_city},
        purpose=reason.purpose, case_no=reason.case_no, owner_cities=[owner_city],
        decision="pending", detail={"request_id": req.id},
    )  # fmt: skip
    return req


def _may_decide(approver: Principal, req: AccessRequest) -> bool:
    if approver.user_id == req.requester_id:
        return False
    if req.route == "province_approver":
        return approver.role == "province_approver"
    return approver.role == "city_approver" and approver.city_code == req.owner_city


def decide_request(
    session: Session,
    approver: Principal,
    request_id: int,
    *,
    approve: bool,
    note: str,
    now: datetime,
    hours: int = GRANT_HOURS,
) -> AccessRequest:
    """Approve or deny a pending request with a note. Exactly one decision stands when two
    approvers decide at once: the update only applies to a request still pending."""
    req = session.get(AccessRequest, request_id)
    if req is None:
        raise RequestError("unknown_request", f"no request {request_id}")
    if approver.user_id == req.requester_id:
        raise AccessDenied("self_approval", "nobody decides their own request")
    if not _may_decide(approver, req):
        raise AccessDenied("not_your_request", "this request is routed to another approver")
    note = note.strip()
    if not note:
        raise InputError("note_required", "a decision needs a note")
    if len(note) > MAX_JUSTIFICATION:
        raise InputError("too_long", "note too long", field="note", limit=MAX_JUSTIFICATION)
    refuse_nul(note, "note")
    status = "approved" if approve else "denied"
    done = session.execute(
        update(AccessRequest)
        .where(AccessRequest.id == request_id, AccessRequest.status == "pending")
        .values(status=status, decided_by=approver.user_id, decided_at=now, decision_note=note)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        session.refresh(req)
        who = session.get(User, req.decided_by) if req.decided_by else None
        raise RequestError(
            "already_decided", "the request was already decided",
            status=req.status, by=who.display_name if who else "?", at=req.decided_at,
        )  # fmt: skip
    session.refresh(req)
    grant = None
    if approve:
        grant = Grant(
            user_id=req.requester_id, request_id=req.id, kind="approval",
            owner_city=req.owner_city, level=req.level, scope_kind=req.scope_kind,
            scope_value=req.scope_value, purpose=req.purpose, case_no=req.case_no,
            granted_at=now, expires_at=now + timedelta(hours=hours),
        )  # fmt: skip
        session.add(grant)
        session.flush()
    audit.record(
        session, approver, "decide", now=now, dataset="access_requests",
        query={"kind": req.scope_kind, "value": req.scope_value, "level": req.level},
        purpose=req.purpose, case_no=req.case_no, owner_cities=[req.owner_city],
        decision=status, grant_id=grant.id if grant else None,
        detail={"request_id": req.id, "requester_id": req.requester_id},
    )  # fmt: skip
    return req


def break_glass(
    session: Session,
    principal: Principal,
    *,
    plate: str,
    owner_city: str,
    reason: Reason,
    justification: str,
    now: datetime,
) -> Grant:
    """Immediate 2-hour access to another city's sensitive sightings of one plate.

    Raises an alarm (rule `break_glass`) and opens a review for the owning city."""
    if principal.role not in BREAK_GLASS_ROLES:
        raise AccessDenied("role_cannot_break_glass", "only investigators may break glass")
    if owner_city == principal.city_code:
        raise InputError("break_glass_own_city", "break-glass is for another city's records")
    if session.get(City, owner_city) is None:
        raise InputError("unknown_city", f"unknown city {owner_city!r}")
    justification = justification.strip()
    if not justification:
        raise InputError("justification_required", "break-glass needs a justification")
    if len(justification) > MAX_JUSTIFICATION:
        raise InputError(
            "too_long", "justification too long", field="justification", limit=MAX_JUSTIFICATION
        )
    refuse_nul(justification, "justification")
    value = _scope("plate", plate)
    reason = reason.normalised()
    check_reason(session, principal, reason)
    grant = Grant(
        user_id=principal.user_id, kind="break_glass", owner_city=owner_city,
        level="sensitive", scope_kind="plate", scope_value=value, purpose=reason.purpose,
        case_no=reason.case_no, granted_at=now,
        expires_at=now + timedelta(hours=BREAK_GLASS_HOURS),
    )  # fmt: skip
    session.add(grant)
    session.flush()
    session.add(
        Review(city_code=owner_city, kind="break_glass", grant_id=grant.id,
               created_by=principal.user_id, note=justification, created_at=now)
    )  # fmt: skip
    audit.record(
        session, principal, "break_glass", now=now, dataset="sightings",
        query={"kind": "plate", "value": value}, purpose=reason.purpose,
        case_no=reason.case_no, owner_cities=[owner_city], decision="granted",
        grant_id=grant.id, detail={"justification": justification},
    )  # fmt: skip
    return grant


@dataclass(frozen=True)
class RequestView:
    id: int
    requester: str
    requester_city: str | None
    owner_city: str
    level: str
    scope_kind: str
    scope_value: str
    purpose: str
    case_no: str
    justification: str
    urgent: bool
    status: str
    created_at: datetime
    decided_at: datetime | None
    decision_note: str | None
    requester_id: int = 0
    # The requester's last 7 days, for the approver: lookups, refusals, open alarms.
    recent_lookups: int = 0
    recent_refusals: int = 0
    open_alarms: int = 0


def _views(session: Session, q) -> list[RequestView]:
    rows = session.execute(
        q.join(User, User.id == AccessRequest.requester_id).add_columns(User.display_name)
    )
    return [
        RequestView(r.id, name, r.requester_city, r.owner_city, r.level, r.scope_kind,
                    r.scope_value, r.purpose, r.case_no, r.justification, r.urgent, r.status,
                    r.created_at, r.decided_at, r.decision_note, requester_id=r.requester_id)
        for r, name in rows
    ]  # fmt: skip


def my_requests(session: Session, principal: Principal) -> list[RequestView]:
    q = select(AccessRequest).where(AccessRequest.requester_id == principal.user_id)
    return _views(session, q.order_by(AccessRequest.created_at.desc()))


def _activity(session: Session, user_id: int, since: datetime) -> tuple[int, int, int]:
    conn = session.connection()
    lookups = conn.scalar(
        select(func.count()).select_from(AuditEntry).where(
            AuditEntry.user_id == user_id, AuditEntry.ts >= since, AuditEntry.action.in_(("search", "view"))
        )
    )  # fmt: skip
    refusals = conn.scalar(
        select(func.count()).select_from(AuditEntry).where(
            AuditEntry.user_id == user_id, AuditEntry.ts >= since, AuditEntry.action.like("%\\_refused", escape="\\")
        )
    )  # fmt: skip
    alarms = conn.scalar(
        select(func.count())
        .select_from(Alarm)
        .where(Alarm.user_id == user_id, Alarm.status == "open")
    )
    return lookups or 0, refusals or 0, alarms or 0


def inbox(session: Session, approver: Principal) -> list[RequestView]:
    """Pending requests this approver may decide, urgent first, then oldest first."""
    q = select(AccessRequest).where(
        AccessRequest.status == "pending", AccessRequest.requester_id != approver.user_id
    )
    if approver.role == "province_approver":
        q = q.where(AccessRequest.route == "province_approver")
    elif approver.role == "city_approver":
        q = q.where(
            AccessRequest.route == "city_approver", AccessRequest.owner_city == approver.city_code
        )
    else:
        return []
    views = _views(session, q.order_by(AccessRequest.urgent.desc(), AccessRequest.created_at))
    since = datetime.now(UTC) - timedelta(days=7)
    out = []
    for v in views:
        requester_id = session.scalar(
            select(AccessRequest.requester_id).where(AccessRequest.id == v.id)
        )
        lookups, refusals, alarms = _activity(session, requester_id, since)
        out.append(replace(v, recent_lookups=lookups, recent_refusals=refusals, open_alarms=alarms))
    return out
