"""Record lookups: the one path by which records leave the store.

Every service here applies the policy in SQL (the row filter), turns what the viewer
may not open into pointers grouped by owning city and level, masks the fields the
policy says, and writes the audit entry — all in the caller's transaction.

A pointer says that records exist, who owns them and how to ask, and no more: a count,
the owner city and level, the request route, and the span of days (local dates, never
times) — no span for secret records, and no pointer at all where the viewer's outcome
is "never" (`Pointer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.orm import Session

from hub import models as m
from hub import partitions
from hub.security import audit
from hub.security.backstop import row_filter
from hub.security.crypto import FieldCipher
from hub.security.errors import AccessDenied, InputError, refuse_nul
from hub.security.masking import mask_fields, mask_id_number, mask_phone
from hub.security.narrative import reveal
from hub.security.policy import (
    GrantScope,
    Outcome,
    Principal,
    decide,
    grant_clause,
    masks_for,
    pointer_route,
    relation,
)
from hub.security.reasons import Reason, check_reason
from hub.validate import (
    PLATE_PROVINCES,
    find_id_numbers,
    find_phones,
    id_number_problem,
    is_valid_plate,
    normalize_id_number,
    normalize_phone,
    normalize_plate,
    phone_problem,
)

MAX_ROWS = 2000
MAX_QUERY = 64

# What each dataset exposes, and the kind of each field for masking.
DATASETS: dict[str, tuple[type[m.Base], dict[str, str | None]]] = {
    "sightings": (m.Sighting, {
        "id": None, "plate": "plate", "ts": None, "camera_id": None, "city_code": None,
        "district_code": None, "lon": None, "lat": None, "speed_kmh": None,
        "classification": None,
    }),
    "persons": (m.Person, {
        "id": None, "name": "name", "sex": None, "birth_date": None, "id_number": "id_number",
        "phone": "phone", "address": "text", "city_code": None, "district_code": None,
        "classification": None,
    }),
    "incidents": (m.Incident, {
        "id": None, "type_code": None, "severity": None, "status": None, "ts": None,
        "lon": None, "lat": None, "address": "text", "summary": "text", "city_code": None,
        "district_code": None, "classification": None,
    }),
    "cases": (m.Case, {
        "id": None, "case_no": None, "title": "text", "case_type": None, "status": None,
        "opened_at": None, "summary": "text", "city_code": None, "district_code": None,
        "classification": None,
    }),
    "help_requests": (m.HelpRequest, {
        "id": None, "kind": None, "status": None, "ts": None, "lon": None, "lat": None,
        "summary": "text", "city_code": None, "district_code": None, "classification": None,
    }),
    "vehicles": (m.Vehicle, {
        "id": None, "plate": "plate", "make": None, "color": None, "city_code": None,
        "classification": None,
    }),
}  # fmt: skip


# Pointer days are calendar days where the records were made (the province's time).
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Pointer:
    """Records the viewer may not open: where they are and how to ask for them.

    `first_day` / `last_day` are the local (Asia/Shanghai) days of the earliest and
    latest of them, for datasets with a time; None for secret records, since each end
    of a span is one record's day (and a span of one record is that record's day).
    """

    dataset: str
    city_code: str
    level: str
    count: int
    route: Outcome  # REQUEST_CITY or REQUEST_PROVINCE; "never" gives no pointer
    first_day: date | None = None
    last_day: date | None = None


def _day(ts: datetime | None) -> date | None:
    return ts.astimezone(LOCAL_TZ).date() if ts is not None else None


def make_pointer(
    principal: Principal, dataset: str, city_code: str, level: str, count: int,
    first: datetime | None = None, last: datetime | None = None,
) -> Pointer | None:  # fmt: skip
    """The pointer one group of hidden records gives this viewer, or None.

    None where the viewer's outcome for the level is NEVER (an analyst's sensitive and
    secret records): those are counted in aggregates only, and a pointer would tell
    which of them matched the viewer's own query. None, too, for a single secret record.
    """
    route = pointer_route(principal, level, relation(principal, city_code, None))
    if route is Outcome.NEVER:
        return None
    if level == "secret":
        # A pointer to one secret record says that this very record exists and matched:
        # for secret data that is already too much. Several are a count, without days.
        if count == 1:
            return None
        first = last = None
    return Pointer(dataset, city_code, level, count, route, _day(first), _day(last))


@dataclass(frozen=True)
class LookupResult:
    dataset: str
    rows: list[dict]
    pointers: list[Pointer]
    truncated: bool = False
    grants_used: tuple[int, ...] = field(default_factory=tuple)


def _row_dict(
    row, fields: dict[str, str | None], cipher: FieldCipher, mask: frozenset[str]
) -> dict:
    """The exposed fields of a row; identifiers decrypted here, to be masked by the caller.

    Identifiers sealed into free text (`hub.security.narrative`) are revealed here, masked
    by the same decision (`mask`) as this viewer's structured ID number and phone."""
    values = {}
    for name, kind in fields.items():
        if name == "id_number":
            values[name] = (
                cipher.decrypt("id_number", row.id_enc, row.key_id) if row.id_enc else None
            )
        elif name == "phone":
            values[name] = (
                cipher.decrypt("phone", row.phone_enc, row.key_id) if row.phone_enc else None
            )
        elif kind == "text":
            values[name] = reveal(
                getattr(row, name), cipher,
                mask_ids="id_number" in mask, mask_phones="phone" in mask,
            )  # fmt: skip
        else:
            values[name] = getattr(row, name)
    return values


def _grants_for(session: Session, model, ids: list[int], grants: Sequence[GrantScope]
                ) -> dict[int, int]:  # fmt: skip
    """Which grant opened each of these rows (the first in `grants` that covers it): one
    query per grant, not one per row and grant."""
    opened: dict[int, int] = {}
    for g in grants:
        left = [i for i in ids if i not in opened]
        clause = grant_clause(model, g)
        if not left or clause is None:
            continue
        for start in range(0, len(left), 500):
            hits = session.scalars(
                select(model.id).where(model.id.in_(left[start : start + 500]), clause)
                .execution_options(policy="validation")
            )  # fmt: skip
            opened.update(dict.fromkeys(hits, g.grant_id))
    return opened


def lookup(
    session: Session,
    principal: Principal,
    dataset: str,
    where,
    *,
    reason: Reason,
    query: dict,
    grants: Sequence[GrantScope],
    cipher: FieldCipher,
    now: datetime,
    order_by=None,
    action: str = "search",
) -> LookupResult:
    """Run one audited lookup of `dataset` rows matching `where`.

    The open rows come back masked per the policy; every hidden row is counted into a
    pointer (by owning city and level) and none of its content is read.
    """
    if not principal.may_open_records:
        raise AccessDenied("role_no_records", "this role does not open records")
    reason = reason.normalised()
    check_reason(session, principal, reason, incident_ok=True)  # a commander's response
    model, fields = DATASETS[dataset]
    allowed = row_filter(session, principal, model, grants)
    stmt = select(model).where(where, allowed)
    if order_by is not None:
        stmt = stmt.order_by(order_by)
    found = session.scalars(stmt.limit(MAX_ROWS + 1)).all()
    truncated = len(found) > MAX_ROWS
    found = found[:MAX_ROWS]
    ts_col = getattr(model, "ts", None)
    cols = [model.city_code, model.classification, func.count()]
    if ts_col is not None:
        cols += [func.min(ts_col), func.max(ts_col)]
    # Counting what the viewer may not open is an aggregate: it bypasses the row filter
    # on purpose and reads only owner city, level, count and time span.
    hidden = session.execute(
        select(*cols).where(where, not_(allowed))
        .group_by(model.city_code, model.classification)
        .execution_options(policy="aggregate")
    ).all()  # fmt: skip
    pointers = [
        p for r in hidden
        if (p := make_pointer(principal, dataset, *r[:3], *r[3:5])) is not None
    ]  # fmt: skip
    rows, by_grant = [], []
    kinds = {k: v for k, v in fields.items() if v}
    for row in found:
        rel = relation(principal, row.city_code, getattr(row, "district_code", None))
        via_grant = not decide(principal.role, row.classification, rel).opens
        if via_grant:
            by_grant.append(row.id)
        mask = masks_for(principal.role, via_grant=via_grant)
        rows.append(mask_fields(_row_dict(row, fields, cipher, mask), kinds, mask))
    grants_used = tuple(sorted(set(_grants_for(session, model, by_grant, grants).values())))
    audit.record(
        session, principal, action, now=now, dataset=dataset, query=query,
        purpose=reason.purpose, case_no=reason.reference, result_count=len(rows),
        record_ids=[f"{dataset}:{r.id}" for r in found],
        owner_cities=[r.city_code for r in found],
        decision="ok" if rows or not pointers else "pointer",
        grant_id=grants_used[0] if grants_used else None,
        detail={"pointers": sum(p.count for p in pointers), "grants_used": list(grants_used)} if pointers or grants_used else None,
    )  # fmt: skip
    return LookupResult(dataset, rows, pointers, truncated, grants_used)


# --- the questions pages ask -------------------------------------------------------------


def _bounded(value: str, field_name: str) -> str:
    value = value.strip()
    if not value:
        raise InputError("empty_query", "type something to search for", field=field_name)
    if len(value) > MAX_QUERY:
        raise InputError("too_long", "search text too long", field=field_name, limit=MAX_QUERY)
    return refuse_nul(value, field_name)


def _masked_for(principal: Principal, kind: str) -> bool:
    """Whether the viewer sees fields of `kind` masked on the records their role opens.

    Such a viewer may find a record by the value typed in full, never by a part of it:
    a prefix search answered with masked rows (张*, 皖A****5) spells the value out one
    character at a time, from which rows stay in the answer."""
    return kind in masks_for(principal.role, via_grant=False)


def _plate_condition(value: str, *, prefix: bool = True, column=m.Sighting.plate):
    """Exact plate; without its province character, any province; or a prefix (≥ 3).
    The condition is on `column` (the reads' plate, or `plate_days`' for the days)."""
    plate = normalize_plate(value)
    if is_valid_plate(plate):
        return column == plate, plate
    if plate and plate[0] not in PLATE_PROVINCES and is_valid_plate("皖" + plate):
        # Typed without the province: every province's plate with that rest, by index.
        return column.in_(sorted(p + plate for p in PLATE_PROVINCES)), plate
    if prefix and len(plate) >= 3 and plate[0] in PLATE_PROVINCES and plate.isalnum():
        # A prefix, as a range so that the (plate, ts) index serves it on both stores.
        return and_(column >= plate, column < plate + "\uffff"), plate
    return None, plate


def bound_to_plate_days(session: Session, where, plate_days_condition, **window):
    """`where` on the reads, narrowed on PostgreSQL to the days on which the plates were
    read (hub/partitions.py `plate_days`): the planner then opens those day partitions
    only, not all of them (there is no global index). Unchanged on SQLite."""
    bound = partitions.plate_day_bounds(
        session.connection(), plate_days_condition, m.Sighting.ts, **window
    )
    return where if bound is None else and_(where, bound)


def search_plate(session: Session, principal: Principal, plate: str, **kw) -> LookupResult:
    """Sightings of a plate across every city, in time order; a plate typed without its
    province character matches every province, and three or more leading characters
    search by prefix (not for a viewer who sees plates masked, `_masked_for`)."""
    typed = _bounded(plate, "plate")
    prefix = not _masked_for(principal, "plate")
    where, value = _plate_condition(typed, prefix=prefix)
    if where is None:
        raise InputError("bad_plate", "not a valid plate number", value=plate.strip()[:20])
    days, _ = _plate_condition(typed, prefix=prefix, column=partitions.plate_days.c.plate)
    where = bound_to_plate_days(session, where, days)
    return lookup(
        session, principal, "sightings", where,
        query={"kind": "plate", "value": value}, order_by=m.Sighting.ts, **kw,
    )  # fmt: skip


def search_person(
    session: Session, principal: Principal, kind: str, value: str, *, cipher: FieldCipher, **kw
) -> LookupResult:
    """Persons by ID number or phone (exact, through the blind index) or name prefix (for
    a viewer who sees names masked, `_masked_for`: the first character or the whole name)."""
    value = _bounded(value, kind)
    if kind == "id_number":
        number = normalize_id_number(value)
        if problem := id_number_problem(number):
            # The value goes back to the user and into the refusal's audit: masked.
            raise InputError("bad_id_number", problem, value=mask_id_number(value[:20]))
        where = m.Person.id_bidx == cipher.blind_index("id_number", number)
        query = {"kind": "id_number", "value": cipher.blind_index("id_number", number)}
    elif kind == "phone":
        phone = normalize_phone(value)
        if problem := phone_problem(phone):
            raise InputError("bad_phone", problem, value=mask_phone(value[:20]))
        where = m.Person.phone_bidx == cipher.blind_index("phone", phone)
        query = {"kind": "phone", "value": cipher.blind_index("phone", phone)}
    elif kind == "name" and len(value) > 1 and _masked_for(principal, "name"):
        # The mask shows the first character: a one-character prefix reveals no more.
        where = m.Person.name == value
        query = {"kind": "name", "value": value}
    elif kind == "name":
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where = m.Person.name.like(escaped + "%", escape="\\")
        query = {"kind": "name", "value": value}
    else:
        raise InputError("bad_kind", f"cannot search persons by {kind!r}")
    return lookup(
        session,
        principal,
        "persons",
        where,
        query=query,
        cipher=cipher,
        order_by=m.Person.name,
        **kw,
    )


def search_case(session: Session, principal: Principal, value: str, **kw) -> LookupResult:
    """Cases by exact number or by words in the title, across every city."""
    value = _bounded(value, "case")
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    where = or_(m.Case.case_no == value.upper(), m.Case.title.like(f"%{escaped}%", escape="\\"))
    return lookup(
        session, principal, "cases", where, query={"kind": "case", "value": value},
        order_by=m.Case.opened_at.desc(), **kw,
    )  # fmt: skip


def search_text(session: Session, principal: Principal, value: str, **kw) -> LookupResult:
    """Incidents whose narrative or address contains the words (masked as the policy says).

    A narrative that mentions an ID number or phone is found by the words around it, and
    the number itself comes back masked for whoever may not see it."""
    value = _bounded(value, "text")
    if len(value) < 2:
        raise InputError("query_too_short", "type at least two characters", field="text", limit=2)
    if find_id_numbers(value) or find_phones(value):
        # Numbers are searched through the blind index (persons), never as text that the
        # audit log would then hold in clear.
        raise InputError("text_has_identifier", "search ID numbers and phones as such")
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    where = or_(
        m.Incident.summary.like(pattern, escape="\\"), m.Incident.address.like(pattern, escape="\\")
    )
    return lookup(
        session, principal, "incidents", where, query={"kind": "text", "value": value},
        order_by=m.Incident.ts.desc(), **kw,
    )  # fmt: skip


@dataclass(frozen=True)
class RecordView:
    """One record (or its pointer) with its linked records, each through the policy."""

    record: LookupResult
    links: dict[str, LookupResult]


_LINKS = {
    "persons": lambda rid, row: {
        "cases": m.Case.id.in_(select(m.PersonCaseLink.case_id).where(m.PersonCaseLink.person_id == rid)),
        "vehicles": m.Vehicle.owner_person_id == rid,
    },
    "cases": lambda rid, row: {
        "persons": m.Person.id.in_(select(m.PersonCaseLink.person_id).where(m.PersonCaseLink.case_id == rid)),
        "vehicles": m.Vehicle.id.in_(select(m.VehicleCaseLink.vehicle_id).where(m.VehicleCaseLink.case_id == rid)),
        "incidents": m.Incident.case_id == rid,
    },
    "incidents": lambda rid, row: {
        "cases": m.Case.id == select(m.Incident.case_id).where(m.Incident.id == rid).scalar_subquery(),
    },
    "help_requests": lambda rid, row: {},
    "vehicles": lambda rid, row: {
        "cases": m.Case.id.in_(select(m.VehicleCaseLink.case_id).where(m.VehicleCaseLink.vehicle_id == rid)),
        "sightings": m.Sighting.plate == row["plate"],
    },
}  # fmt: skip


def view_record(
    session: Session, principal: Principal, dataset: str, record_id: int, **kw
) -> RecordView:
    """A record's detail and its links (person ↔ cases ↔ vehicles ↔ sightings), each an
    audited `view` through the same policy, masks and pointers as a search."""
    if dataset not in _LINKS:
        raise InputError("bad_kind", f"no detail view for {dataset!r}")
    model, _ = DATASETS[dataset]
    main = lookup(session, principal, dataset, model.id == int(record_id),
                  query={"kind": "record", "value": f"{dataset}:{int(record_id)}"}, action="view", **kw)  # fmt: skip
    links: dict[str, LookupResult] = {}
    if main.rows:
        for linked, where in _LINKS[dataset](int(record_id), main.rows[0]).items():
            order = m.Sighting.ts.desc() if linked == "sightings" else None
            if linked == "sightings":  # a vehicle's reads: the days its plate was read
                plate = partitions.plate_days.c.plate == main.rows[0]["plate"]
                where = bound_to_plate_days(session, where, plate)
            links[linked] = lookup(session, principal, linked, where, action="view", order_by=order,
                                   query={"kind": "linked", "value": f"{dataset}:{int(record_id)}"}, **kw)  # fmt: skip
    return RecordView(main, links)
