"""Assistance requests (协查): one city's case asks other cities about a person or vehicle.

The request itself carries only what the asking city chose to share: its case number,
the kind of subject, the subject's record id and what is asked. The subject's details
are a record read: a recipient opens them with `subject_details`, which goes through
`hub.records.view_record` — the same grades, grants, masks, pointers and audit as any
lookup, with a structured reason. Asking never grants access.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import models as m
from hub import records
from hub.response import clean_text
from hub.security import audit
from hub.security.backstop import row_filter
from hub.security.errors import AccessDenied, InputError
from hub.security.policy import Principal

ASSIST_ROLES = frozenset({"commander", "investigator"})
SUBJECTS = {"person": ("persons", m.Person), "vehicle": ("vehicles", m.Vehicle)}
ALL_CITIES = "all"


def _city(principal: Principal) -> str:
    if principal.role not in ASSIST_ROLES or principal.city_code is None:
        raise AccessDenied("role_not_allowed", "assists are for city commanders and investigators")
    return principal.city_code


def create_assist(
    session: Session,
    principal: Principal,
    *,
    case_no: str,
    subject_kind: str,
    subject_id: int,
    asked: str,
    to_cities: Sequence[str] | str,
    now: datetime,
    exercise_run_id: int | None = None,
) -> int:
    """Ask other cities for help with one subject of one of our open cases.

    Parameters
    ----------
    case_no
        An open case of the principal's city that the principal may open.
    subject_kind, subject_id
        ``person`` or ``vehicle`` and its record id; the principal must be able to open
        it (one cannot ask about what one does not know).
    asked
        What is asked (free text, no identifiers).
    to_cities
        Adcodes, or ``"all"`` for every other city.

    Returns
    -------
    int
        The request's id.

    Raises
    ------
    InputError
        ``no_open_case``, ``case_other_city``, ``bad_subject_kind``, ``unknown_subject``,
        ``no_recipients``, ``unknown_city`` or a free-text refusal.
    """
    city = _city(principal)
    grants = session.info.get("grants", ())
    case = session.scalar(
        select(m.Case).where(
            m.Case.case_no == (case_no or "").strip().upper()[:32],
            row_filter(session, principal, m.Case, grants),
        )
    )
    if case is None or case.status != "open":
        raise InputError("no_open_case", "no open case with that number", case_no=case_no[:32])
    if case.city_code != city:
        raise InputError("case_other_city", "the case belongs to another city", case_no=case_no)
    if subject_kind not in SUBJECTS:
        raise InputError("bad_subject_kind", f"subject must be one of {tuple(SUBJECTS)}")
    _, model = SUBJECTS[subject_kind]
    subject = session.scalar(
        select(model.id).where(
            model.id == int(subject_id), row_filter(session, principal, model, grants)
        )
    )
    if subject is None:
        raise InputError("unknown_subject", "no such subject you may open", id=subject_id)
    asked = clean_text(asked, "asked")
    everyone = sorted(session.scalars(select(m.City.adcode)))
    wanted = everyone if to_cities == ALL_CITIES else sorted(set(to_cities))
    for c in wanted:
        if c not in everyone:
            raise InputError("unknown_city", f"no city {c}", city=c)
    return open_assist(
        session, principal, case_id=case.id, case_no=case.case_no, subject_kind=subject_kind,
        subject_id=int(subject_id), asked=asked, to_cities=wanted, now=now,
        exercise_run_id=exercise_run_id,
    )  # fmt: skip


def open_assist(
    session: Session, principal: Principal, *, case_id: int, case_no: str, subject_kind: str,
    subject_id: int, asked: str, to_cities: Sequence[str], now: datetime,
    exercise_run_id: int | None = None, detail: dict | None = None,
) -> int:  # fmt: skip
    """Store a request of the principal's city whose case, subject and text the caller has
    checked (`create_assist`; `hub.watch.assist_from_hit`), and audit it.

    Raises
    ------
    InputError
        ``no_recipients`` when no city but the principal's own is asked.
    """
    city = _city(principal)
    wanted = [c for c in sorted(set(to_cities)) if c != city]
    if not wanted:
        raise InputError("no_recipients", "choose at least one other city")
    req = m.AssistRequest(
        from_city=city, case_id=case_id, case_no=case_no, subject_kind=subject_kind,
        subject_id=int(subject_id), asked=asked, status="open", created_by=principal.user_id,
        created_at=now, exercise_run_id=exercise_run_id,
    )  # fmt: skip
    session.add(req)
    session.flush()
    for c in wanted:
        session.add(m.AssistRecipient(assist_id=req.id, city_code=c))
    session.flush()
    audit.record(
        session, principal, "assist_create", now=now, dataset="assists",
        query={"kind": "assist", "value": str(req.id)}, case_no=case_no,
        record_ids=[f"{SUBJECTS[subject_kind][0]}:{subject_id}", f"cases:{case_id}"],
        owner_cities=[city], decision="ok",
        detail={"to": wanted, "subject_kind": subject_kind, **(detail or {})},
    )  # fmt: skip
    return req.id


def _assist(session: Session, principal: Principal, assist_id: int) -> m.AssistRequest:
    """The request if the viewer's city sent or received it; else "unknown"."""
    city = _city(principal)
    req = session.get(m.AssistRequest, int(assist_id))
    if req is None or (
        req.from_city != city and session.get(m.AssistRecipient, (req.id, city)) is None
    ):
        raise InputError("unknown_assist", f"no assistance request {assist_id}", id=assist_id)
    return req


ASSIST_COLUMNS = ["id", "created_at", "from_city", "case_no", "subject_kind", "subject_id",
                  "asked", "status", "my_status", "my_response", "responses", "recipients",
                  "exercise", "outgoing"]  # fmt: skip


def assists_for(session: Session, principal: Principal, *, now: datetime) -> pd.DataFrame:
    """Requests my city sent and received, newest first (audited as a search).

    No subject detail is read: rows carry the subject's kind and id only.
    """
    city = _city(principal)
    a, r = m.AssistRequest, m.AssistRecipient
    received = select(r.assist_id).where(r.city_code == city)
    reqs = session.scalars(
        select(a).where((a.from_city == city) | a.id.in_(received))
        .order_by(a.created_at.desc(), a.id.desc()).limit(300)
    ).all()  # fmt: skip
    ids = [q.id for q in reqs]
    by_assist: dict[int, list] = {i: [] for i in ids}
    if ids:
        for row in session.scalars(select(r).where(r.assist_id.in_(ids)).order_by(r.city_code)):
            by_assist[row.assist_id].append(row)
    rows = []
    for q in reqs:
        mine = next((x for x in by_assist[q.id] if x.city_code == city), None)
        rows.append({
            "id": q.id, "created_at": q.created_at, "from_city": q.from_city,
            "case_no": q.case_no, "subject_kind": q.subject_kind, "subject_id": q.subject_id,
            "asked": q.asked, "status": q.status,
            "my_status": mine.status if mine else None,
            "my_response": mine.response if mine else None,
            "responses": sum(x.status != "pending" for x in by_assist[q.id]),
            "recipients": len(by_assist[q.id]), "exercise": q.exercise_run_id is not None,
            "outgoing": q.from_city == city,
        })  # fmt: skip
    audit.record(
        session, principal, "search", now=now, dataset="assists",
        query={"kind": "assists", "value": city}, result_count=len(rows), purpose="assist_inbox",
        decision="ok",
    )  # fmt: skip
    return pd.DataFrame(rows, columns=ASSIST_COLUMNS)


def assist_timeline(session: Session, principal: Principal, assist_id: int) -> pd.DataFrame:
    """The request's history: created, then each city's answer (ts, city_code, status,
    response)."""
    req = _assist(session, principal, assist_id)
    rows = [{"ts": req.created_at, "city_code": req.from_city, "status": "created",
             "response": req.asked}]  # fmt: skip
    for x in session.scalars(
        select(m.AssistRecipient).where(m.AssistRecipient.assist_id == req.id)
    ):
        if x.responded_at is not None:
            rows.append({"ts": x.responded_at, "city_code": x.city_code, "status": x.status,
                         "response": x.response})  # fmt: skip
        else:
            rows.append({"ts": None, "city_code": x.city_code, "status": x.status,
                         "response": None})  # fmt: skip
    if req.closed_at is not None:
        rows.append({"ts": req.closed_at, "city_code": req.from_city, "status": "closed",
                     "response": None})  # fmt: skip
    return pd.DataFrame(rows, columns=["ts", "city_code", "status", "response"])


def respond(
    session: Session,
    principal: Principal,
    assist_id: int,
    response: str,
    *,
    decline: bool = False,
    now: datetime,
) -> None:
    """A recipient city answers (or declines with a reason).

    Raises
    ------
    InputError
        ``unknown_assist``, ``already_responded``, ``assist_closed`` or a free-text
        refusal.
    """
    req = _assist(session, principal, assist_id)
    row = session.get(m.AssistRecipient, (req.id, principal.city_code))
    if row is None:
        raise InputError("unknown_assist", "this city was not asked", id=assist_id)
    if req.status != "open":
        raise InputError("assist_closed", "the request is closed")
    if row.status != "pending":
        raise InputError("already_responded", "this city has already answered")
    row.response = clean_text(response, "response")
    row.status = "declined" if decline else "responded"
    row.responded_by, row.responded_at = principal.user_id, now
    audit.record(
        session, principal, "assist_respond", now=now, dataset="assists",
        query={"kind": "assist", "value": str(req.id)}, case_no=req.case_no,
        owner_cities=[req.from_city], decision="ok", detail={"status": row.status},
    )  # fmt: skip


def close_assist(session: Session, principal: Principal, assist_id: int, *, now: datetime) -> None:
    """The asking city closes its request.

    Raises
    ------
    AccessDenied
        ``not_assist_owner`` for a recipient city.
    InputError
        ``unknown_assist`` or ``assist_closed``.
    """
    req = _assist(session, principal, assist_id)
    if req.from_city != principal.city_code:
        raise AccessDenied("not_assist_owner", "only the asking city closes its request")
    if req.status != "open":
        raise InputError("assist_closed", "the request is closed")
    req.status, req.closed_at = "closed", now
    audit.record(
        session, principal, "assist_close", now=now, dataset="assists",
        query={"kind": "assist", "value": str(req.id)}, case_no=req.case_no, decision="ok",
    )  # fmt: skip


def subject_details(
    session: Session, principal: Principal, assist_id: int, **lookup: object
) -> records.RecordView:
    """The subject of a request the viewer's city sent or received, through the policy.

    `lookup` is what `hub.records.view_record` takes (reason, grants, cipher, now): the
    viewer's own reason is checked and audited; the subject opens, masked or as a
    pointer exactly as a lookup would show it to this viewer.
    """
    req = _assist(session, principal, assist_id)
    dataset, _ = SUBJECTS[req.subject_kind]
    return records.view_record(session, principal, dataset, req.subject_id, **lookup)
