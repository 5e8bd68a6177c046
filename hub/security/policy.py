"""The access model of DESIGN §4, held as data and read by pure functions.

`DECISIONS[role][level][relation]` says what a role may do with one record of a
classification level, by where the record lives relative to the viewer. The SQL row
filter (`openable_clause`) is built from the same table, so the pure decision and the
query that enforces it cannot drift; a test checks them against each other on every
combination.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, false, or_, select, true

from hub.codes import CLASSIFICATIONS, classification_rank


class Outcome(StrEnum):
    OPEN = "open"
    OPEN_MASKED = "open_masked"  # open, personal fields always masked (analysts)
    REQUEST_CITY = "request_city"  # pointer; a request goes to the owning city's approver
    REQUEST_PROVINCE = "request_province"  # pointer; a request goes to a province approver
    NEVER = "never"  # pointer without a request: counted in aggregates only

    @property
    def opens(self) -> bool:
        return self in (Outcome.OPEN, Outcome.OPEN_MASKED)

    @property
    def requestable(self) -> bool:
        return self in (Outcome.REQUEST_CITY, Outcome.REQUEST_PROVINCE)


ROLES = (
    "officer",
    "investigator",
    "city_approver",
    "province_approver",
    "commander",
    "analyst",
    "auditor",
    "leader",
    "admin",
)
RELATIONS = ("own_district", "own_city", "other_city")
# Who sees counts (aggregates open no record) and who reads the audit log and alarms.
AGGREGATE_ROLES = frozenset(ROLES) - {"auditor", "admin"}
AUDIT_ROLES = frozenset({"auditor", "city_approver", "province_approver"})
GRANT_STATES = ("none", "valid", "expired", "other_subject")
PROVINCE_ROLES = frozenset({"province_approver"})
# Roles that may see secret records counted in aggregates (DESIGN §4: "secret records
# are counted only for province roles"; the leader's row says "never" for secret).
COUNTS_SECRET = frozenset({"province_approver"})

OK, M, C, P, N = (
    Outcome.OPEN,
    Outcome.OPEN_MASKED,
    Outcome.REQUEST_CITY,
    Outcome.REQUEST_PROVINCE,
    Outcome.NEVER,
)


def _row(own_district: Outcome, own_city: Outcome, other_city: Outcome) -> dict[str, Outcome]:
    return {"own_district": own_district, "own_city": own_city, "other_city": other_city}


def _all(outcome: Outcome) -> dict[str, Outcome]:
    return _row(outcome, outcome, outcome)


_CITY_LEVEL = {
    "public": _all(OK),
    "internal": _all(OK),
    "sensitive": _row(OK, OK, C),
    "secret": _all(P),
}
_NO_RECORDS = {level: _all(N) for level in CLASSIFICATIONS}

DECISIONS: dict[str, dict[str, dict[str, Outcome]]] = {
    "officer": {
        "public": _all(OK),
        "internal": _row(OK, C, C),
        "sensitive": _all(C),
        "secret": _all(P),
    },
    "investigator": _CITY_LEVEL,
    "city_approver": _CITY_LEVEL,
    "commander": _CITY_LEVEL,
    "province_approver": {
        "public": _all(OK),
        "internal": _all(OK),
        "sensitive": _all(OK),
        "secret": _all(P),  # decided by another province approver
    },
    "analyst": {"public": _all(M), "internal": _all(M), "sensitive": _all(N), "secret": _all(N)},
    "auditor": _NO_RECORDS,
    "leader": _NO_RECORDS,
    "admin": _NO_RECORDS,
}

# Field kinds masked per role when a record is opened without a grant.
_MASKS: dict[str, frozenset[str]] = {
    "officer": frozenset({"id_number", "phone", "text"}),
    "analyst": frozenset({"id_number", "phone", "name", "plate", "text"}),
}


@dataclass(frozen=True)
class Principal:
    """Who is asking: the signed-in user as every service sees it."""

    user_id: int
    username: str
    display_name: str
    role: str
    city_code: str | None
    district_code: str | None = None
    # The user's session version when this principal was made (a lock, a role change or
    # a password reset bumps the stored one), and when the person signed in (None: not a
    # sign-in, e.g. the CLI acting as a user). `identity.require_current` checks both.
    session_version: int = 0
    signed_in_at: datetime | None = None

    @property
    def may_open_records(self) -> bool:
        return any(o is not N for levels in DECISIONS[self.role].values() for o in levels.values())


@dataclass(frozen=True)
class GrantScope:
    """A grant in force, as the policy needs it (see `hub.security.access`)."""

    grant_id: int
    owner_city: str
    level: str
    scope_kind: str  # plate, person, case, camera_area
    scope_value: str
    expires_at: datetime


def relation(principal: Principal, city_code: str, district_code: str | None) -> str:
    """Where a record lives relative to the viewer: own_district, own_city or other_city."""
    if principal.city_code is None or city_code != principal.city_code:
        return "other_city"
    if principal.district_code is not None and district_code == principal.district_code:
        return "own_district"
    return "own_city"


def base_outcome(role: str, level: str, rel: str) -> Outcome:
    """The decision without any grant; KeyError for an unknown role, level or relation."""
    return DECISIONS[role][level][rel]


def decide(role: str, level: str, rel: str, grant: str = "none") -> Outcome:
    """The decision for one record, given the state of the viewer's grant for its subject.

    A valid grant opens what would otherwise be a pointer with a request; it never
    widens a role that may not open records at all. An expired grant, or a grant for
    another subject, changes nothing.
    """
    if grant not in GRANT_STATES:
        raise ValueError(f"unknown grant state {grant!r}")
    outcome = base_outcome(role, level, rel)
    if grant == "valid" and outcome.requestable:
        return Outcome.OPEN
    return outcome


def can_open(role: str, level: str, rel: str, grant: str = "none") -> bool:
    return decide(role, level, rel, grant).opens


def masks_for(role: str, *, via_grant: bool) -> frozenset[str]:
    """Field kinds to mask for this role; a grant lifts the masks of officers."""
    if role == "analyst":
        return _MASKS["analyst"]
    if via_grant:
        return frozenset()
    return _MASKS.get(role, frozenset())


def route_for(level: str) -> str:
    """Who decides a request for records of this level."""
    return "province_approver" if level == "secret" else "city_approver"


def levels_up_to(level: str) -> list[str]:
    return list(CLASSIFICATIONS[: classification_rank(level) + 1])


# --- SQL --------------------------------------------------------------------------------


def _relation_predicate(principal: Principal, model, rel: str) -> ColumnElement[bool]:
    city, district = model.city_code, getattr(model, "district_code", None)
    if principal.city_code is None:
        return true() if rel == "other_city" else false()
    if rel == "other_city":
        return city != principal.city_code
    if principal.district_code is None or district is None:
        return (city == principal.city_code) if rel == "own_city" else false()
    if rel == "own_district":
        return and_(city == principal.city_code, district == principal.district_code)
    return and_(
        city == principal.city_code,
        or_(district.is_(None), district != principal.district_code),
    )


def _base_clause(principal: Principal, model) -> ColumnElement[bool]:
    parts = []
    for level, by_relation in DECISIONS[principal.role].items():
        rels = [r for r in RELATIONS if by_relation[r].opens]
        if not rels:
            continue
        if len(rels) == len(RELATIONS):
            parts.append(model.classification == level)
        else:
            parts.append(
                and_(
                    model.classification == level,
                    or_(*(_relation_predicate(principal, model, r) for r in rels)),
                )
            )
    return or_(*parts) if parts else false()


def scope_predicate(model, scope_kind: str, scope_value: str) -> ColumnElement[bool] | None:
    """Rows of `model` that a grant of this scope covers; None if it covers none."""
    from hub import models as m

    if scope_kind == "plate" and hasattr(model, "plate"):
        return model.plate == scope_value
    if scope_kind == "person":
        if model is m.Person:
            return model.id == int(scope_value)
        return None
    if scope_kind in ("id_number", "phone"):
        # The scope is the blind index of the number searched for, never the number.
        if model is m.Person:
            column = model.id_bidx if scope_kind == "id_number" else model.phone_bidx
            return column == scope_value
        return None
    if scope_kind == "case":
        case_id = int(scope_value)
        if model is m.Case:
            return model.id == case_id
        if model is m.Incident:
            return model.case_id == case_id
        if model is m.Person:
            links = select(m.PersonCaseLink.person_id).where(m.PersonCaseLink.case_id == case_id)
            return model.id.in_(links)
        if model is m.Vehicle:
            links = select(m.VehicleCaseLink.vehicle_id).where(m.VehicleCaseLink.case_id == case_id)
            return model.id.in_(links)
        return None
    if scope_kind == "camera_area":
        area = json.loads(scope_value)
        cameras = [int(c) for c in area["camera_ids"]]
        start, end = datetime.fromisoformat(area["from"]), datetime.fromisoformat(area["to"])
        if model is m.Sighting:
            return and_(model.camera_id.in_(cameras), model.ts >= start, model.ts <= end)
        if model is m.Camera:
            return model.id.in_(cameras)
        return None
    return None


def grant_clause(model, grant: GrantScope) -> ColumnElement[bool] | None:
    scope = scope_predicate(model, grant.scope_kind, grant.scope_value)
    if scope is None:
        return None
    return and_(
        model.city_code == grant.owner_city,
        model.classification.in_(levels_up_to(grant.level)),
        scope,
    )


def openable_clause(
    principal: Principal, model, grants: Iterable[GrantScope] = ()
) -> ColumnElement[bool]:
    """SQL condition: the rows of `model` this principal may open (role, then grants).

    Grants only ever add rows to roles whose table allows requests; a role that may
    open no records (auditor, leader, admin) gets `false()` whatever it holds.
    """
    base = _base_clause(principal, model)
    if not principal.may_open_records or principal.role == "analyst":
        return base
    extra = [c for g in grants if (c := grant_clause(model, g)) is not None]
    return or_(base, *extra) if extra else base


def pointer_route(principal: Principal, level: str, rel: str) -> Outcome:
    """What a hidden record offers this viewer: a request route, or nothing (NEVER)."""
    return base_outcome(principal.role, level, rel)
