"""Requests for access, approvers' decisions, grants in force and break-glass."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.codes import CLASSIFICATIONS, classification_rank, codes
from hub.models import AccessRequest, Alarm, AuditEntry, City, Grant, Review, User
from hub.security import audit, scopes
from hub.security.crypto import FieldCipher
from hub.security.errors import AccessDenied, InputError, RequestError, refuse_nul
from hub.security.policy import GrantScope, Principal, base_outcome, route_for
from hub.security.reasons import (
    Reason,
    check_justification,
    check_reason,
    refuse_identifiers,
    visible,
)
from hub.validate import id_number_problem, normalize_id_number, normalize_phone, phone_problem

GRANT_HOURS = 24
BREAK_GLASS_HOURS = 2
# The cap counts break-glass grants taken in the last day, not since midnight: a
# cap by calendar day would allow twice the cap around midnight.
BREAK_GLASS_CAP_WINDOW = timedelta(hours=24)
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
    # A scope filed before scopes were parsed may not parse now: it covers nothing,
    # rather than failing every lookup of its holder.
    return [GrantScope(*row) for row in rows if scopes.well_formed(row.scope_kind, row.scope_value)]


def _scope(
    session: Session,
    scope_kind: str,
    scope_value: str,
    owner_city: str,
    cipher: FieldCipher | None = None,
) -> str:
    """The canonical scope to file, its subject checked against the owning city."""
    if scope_kind in scopes.IDENTIFIER_KINDS:
        # Stored (and shown to the approver) as the blind index: a request never
        # carries an ID number or a phone number in clear.
        if cipher is None:
            raise InputError("bad_scope", "identifier scopes need the field cipher")
        value = scope_value.strip()
        if scope_kind == "id_number":
            value = normalize_id_number(value)
            if problem := id_number_problem(value):
                raise InputError("bad_id_number", problem, value="(withheld)")
        else:
            value = normalize_phone(value)
            if problem := phone_problem(value):
                raise InputError("bad_phone", problem, value="(withheld)")
        return cipher.blind_index(scope_kind, value)
    value = scopes.parse_scope(scope_kind, scope_value)
    scopes.check_subject(session, scope_kind, value, owner_city)
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
    justification = visible(justification).strip()
    if not justification:
        raise InputError("justification_required", "say why the access is needed")
    if len(justification) > MAX_JUSTIFICATION:
        raise InputError(
            "too_long", "justification too long", field="justification", limit=MAX_JUSTIFICATION
        )
    refuse_identifiers(refuse_nul(justification, "justification"), "justification")
    value = _scope(session, scope_kind, scope_value, owner_city, cipher)
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
    note = visible(note).strip()
    if not note:
        raise InputError("note_required", "a decision needs a note")
    if len(note) > MAX_JUSTIFICATION:
        raise InputError("too_long", "note too long", field="note", limit=MAX_JUSTIFICATION)
    refuse_identifiers(refuse_nul(note, "note"), "note")
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


def _within_cap(session: Session, principal: Principal, *, cap: int, now: datetime) -> None:
    # The user's row is written (to itself) before counting, so two break-glasses of one
    # user at once cannot both pass a cap of one left: on PostgreSQL the row lock makes
    # the second wait, and on SQLite, whose driver opens a transaction only at the first
    # write (a SELECT ... FOR UPDATE is a plain read there), it takes the write lock.
    session.execute(
        update(User).where(User.id == principal.user_id)
        .values(session_version=User.session_version)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    taken = session.scalar(
        select(func.count()).select_from(Grant).where(
            Grant.user_id == principal.user_id, Grant.kind == "break_glass",
            # No upper bound: a grant stamped later than `now` (another server's clock,
            # a call replayed with an earlier time) was still taken, and counts.
            Grant.granted_at > now - BREAK_GLASS_CAP_WINDOW,
        )
    )  # fmt: skip
    if (taken or 0) >= cap:
        raise AccessDenied(
            "break_glass_cap", "the break-glass cap for the last 24 hours is reached", cap=cap
        )


def break_glass(
    session: Session,
    principal: Principal,
    *,
    plate: str,
    owner_city: str,
    reason: Reason,
    justification: str,
    now: datetime,
    daily_cap: int,
) -> Grant:
    """Immediate 2-hour access to another city's sensitive sightings of one plate.

    Only for an urgent purpose (pursuit, missing person, emergency), with a
    justification that says something (`check_justification`), at most `daily_cap`
    times in 24 hours per user. Raises an alarm (rule `break_glass`) and opens a
    review for the owning city that names the plate; a review that rejects it
    revokes the grant (`close_review`).

    Raises
    ------
    AccessDenied
        ``role_cannot_break_glass``, ``break_glass_cap`` (param ``cap``).
    InputError
        ``break_glass_own_city``, ``unknown_city``, ``break_glass_purpose``,
        ``bad_plate``, the justification's codes.
    ReasonError
        As `check_reason`.
    """
    if principal.role not in BREAK_GLASS_ROLES:
        raise AccessDenied("role_cannot_break_glass", "only investigators may break glass")
    if owner_city == principal.city_code:
        raise InputError("break_glass_own_city", "break-glass is for another city's records")
    if session.get(City, owner_city) is None:
        raise InputError("unknown_city", f"unknown city {owner_city!r}")
    value = scopes.parse_scope("plate", plate)
    reason = reason.normalised()
    check_reason(session, principal, reason)
    if not _urgent(reason.purpose):
        raise InputError(
            "break_glass_purpose", "break-glass is for urgent purposes", purpose=reason.purpose
        )
    justification = check_justification(
        justification, limit=MAX_JUSTIFICATION, restates=(value, plate.strip(), reason.case_no)
    )
    _within_cap(session, principal, cap=daily_cap, now=now)
    grant = Grant(
        user_id=principal.user_id, kind="break_glass", owner_city=owner_city,
        level="sensitive", scope_kind="plate", scope_value=value, purpose=reason.purpose,
        case_no=reason.case_no, granted_at=now,
        expires_at=now + timedelta(hours=BREAK_GLASS_HOURS),
    )  # fmt: skip
    session.add(grant)
    session.flush()
    # The subject opens the note, in the audit log's `kind:value` form, so the reviewer
    # reads what was opened next to why (and can search the log for it).
    session.add(
        Review(city_code=owner_city, kind="break_glass", grant_id=grant.id,
               created_by=principal.user_id, note=f"plate:{value}\n{justification}",
               created_at=now)
    )  # fmt: skip
    audit.record(
        session, principal, "break_glass", now=now, dataset="sightings",
        query={"kind": "plate", "value": value}, purpose=reason.purpose,
        case_no=reason.case_no, owner_cities=[owner_city], decision="granted",
        grant_id=grant.id, detail={"justification": justification},
    )  # fmt: skip
    return grant


# --- revoking grants and closing reviews --------------------------------------------------

REVIEW_OUTCOMES = ("accept", "reject")


def _decision_note(note: str, what: str) -> str:
    note = visible(note).strip()
    if not note:
        raise InputError("note_required", f"{what} needs a note")
    if len(note) > MAX_JUSTIFICATION:
        raise InputError("too_long", "note too long", field="note", limit=MAX_JUSTIFICATION)
    return refuse_identifiers(refuse_nul(note, "note"), "note")


def _may_revoke(principal: Principal, grant: Grant) -> bool:
    """The owning city's approvers, and province approvers for the secret grants they
    decide (DESIGN §4: the approver who could have granted it may take it back)."""
    if principal.role == "city_approver":
        return principal.city_code == grant.owner_city
    if principal.role == "province_approver":
        return classification_rank(grant.level) >= classification_rank("secret")
    return False


def _revoke(
    session: Session, principal: Principal, grant: Grant, *, note: str, now: datetime,
    review_id: int | None = None,
) -> bool:  # fmt: skip
    """Revoke a grant at `now`, audited as `grant_revoke`; False if it already was.

    The update applies only to a grant not yet revoked, so of two revocations at once
    exactly one takes effect and is audited."""
    done = session.execute(
        update(Grant)
        .where(Grant.id == grant.id, Grant.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        return False
    session.refresh(grant)
    audit.record(
        session, principal, "grant_revoke", now=now, dataset="grants",
        query={"kind": grant.scope_kind, "value": grant.scope_value, "level": grant.level},
        purpose=grant.purpose, case_no=grant.case_no, owner_cities=[grant.owner_city],
        decision="revoked", grant_id=grant.id,
        detail={"holder_id": grant.user_id, "grant_kind": grant.kind, "note": note,
                "review_id": review_id, "was_in_force": grant.expires_at > now},
    )  # fmt: skip
    return True


def revoke_grant(
    session: Session, principal: Principal, grant_id: int, *, note: str, now: datetime
) -> Grant:
    """An approver takes back a grant in force on their city's records, at once.

    The holder's next call no longer has it (`grants_in_force` ignores revoked grants).

    Raises
    ------
    InputError
        ``unknown_grant`` for a grant that does not exist or is not this approver's to
        revoke (one answer for both: other cities' grants are not disclosed),
        ``note_required``, ``too_long``.
    RequestError
        ``grant_not_in_force`` when it has expired or was revoked already.
    """
    note = _decision_note(note, "revoking a grant")
    grant = session.get(Grant, int(grant_id))
    if grant is None or not _may_revoke(principal, grant):
        raise InputError("unknown_grant", f"no grant {grant_id} on your records", id=grant_id)
    if grant.revoked_at is not None or grant.expires_at <= now:
        raise RequestError("grant_not_in_force", "the grant is no longer in force", id=grant_id)
    if not _revoke(session, principal, grant, note=note, now=now):
        raise RequestError("grant_not_in_force", "the grant is no longer in force", id=grant_id)
    return grant


def close_review(
    session: Session, principal: Principal, review_id: int, *, note: str, outcome: str,
    now: datetime,
) -> Review:  # fmt: skip
    """Close a review owed by the approver's city, accepting or rejecting the access.

    Rejecting a break-glass review revokes its grant at once (audited as
    `grant_revoke`), whether or not its two hours are over: the record of the grant
    then says it was rejected. Exactly one close stands when two approvers close the
    same review at once.

    Raises
    ------
    AccessDenied
        ``role_not_allowed`` for anyone but a city approver.
    InputError
        ``bad_outcome``, ``note_required``, ``too_long``, ``unknown_review`` (not open,
        or not this city's).
    """
    if principal.role != "city_approver":
        raise AccessDenied("role_not_allowed", "this role cannot do that")
    if outcome not in REVIEW_OUTCOMES:
        raise InputError("bad_outcome", f"outcome must be one of {REVIEW_OUTCOMES}")
    note = _decision_note(note, "closing a review")
    review = session.get(Review, int(review_id))
    if review is None or review.city_code != principal.city_code:
        raise InputError("unknown_review", f"no open review {review_id}")
    done = session.execute(
        update(Review)
        .where(Review.id == review.id, Review.status == "open")
        .values(status="closed", closed_by=principal.user_id, closed_at=now, close_note=note)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise InputError("unknown_review", f"no open review {review_id}")
    session.refresh(review)
    revoked = False
    if outcome == "reject" and review.kind == "break_glass" and review.grant_id is not None:
        grant = session.get(Grant, review.grant_id)
        revoked = grant is not None and _revoke(
            session, principal, grant, note=note, now=now, review_id=review.id
        )
    audit.record(
        session, principal, "review_close", now=now, dataset="reviews",
        query={"review_id": review.id}, owner_cities=[review.city_code], decision=outcome,
        grant_id=review.grant_id,
        detail={"kind": review.kind, "note": note, "outcome": outcome, "revoked": revoked},
    )  # fmt: skip
    return review


REVIEW_COLUMNS = (
    "id", "created_at", "kind", "subject", "username", "purpose", "case_no", "grant_id",
    "expires_at", "revoked_at", "audit_id", "note",
)  # fmt: skip


def reviews(session: Session, principal: Principal, *, status: str = "open") -> list[dict]:
    """Reviews owed by the approver's city, newest first, with what each grant opened:
    its subject (`kind:value`), holder, purpose, case, expiry and revocation."""
    rows = session.execute(
        select(Review, Grant, User.username)
        .outerjoin(Grant, Grant.id == Review.grant_id)
        .outerjoin(User, User.id == Review.created_by)
        .where(Review.city_code == principal.city_code, Review.status == status)
        .order_by(Review.created_at.desc())
    ).all()
    out = []
    for review, grant, username in rows:
        subject = f"{grant.scope_kind}:{grant.scope_value}" if grant else None
        out.append({
            "id": review.id, "created_at": review.created_at, "kind": review.kind,
            "subject": subject, "username": username,
            "purpose": grant.purpose if grant else None,
            "case_no": grant.case_no if grant else None, "grant_id": review.grant_id,
            "expires_at": grant.expires_at if grant else None,
            "revoked_at": grant.revoked_at if grant else None,
            "audit_id": review.audit_id, "note": review.note,
        })  # fmt: skip
    return out


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
