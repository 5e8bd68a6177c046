"""The access model of DESIGN §4: the decision table, the SQL row filter and the backstop.

The expected table below is written out by hand from DESIGN §4, not computed from
`hub.security.policy.DECISIONS`; every role × level × relation × grant state is checked
against `decide()`, then the SQL filter is checked against `decide()` on real rows on
both backends, and the `do_orm_execute` backstop is checked with deliberately unfiltered
queries.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import hub.security.backstop  # noqa: F401  (registers the row filter)
from hub.codes import CLASSIFICATIONS
from hub.models import Camera, Grant, Person, Sighting, User, Vehicle
from hub.security.access import grants_in_force
from hub.security.policy import (
    DECISIONS,
    GRANT_STATES,
    RELATIONS,
    ROLES,
    GrantScope,
    Principal,
    can_open,
    decide,
    masks_for,
    openable_clause,
    pointer_route,
    relation,
    route_for,
)
from hub.store import session_factory, transaction
from tests.conftest import ANCHOR, BACKENDS
from tests.security_support import empty_store

# open, open with personal fields masked, pointer with a request to the owning city or to
# the province, pointer without a request
OK, MASK, RC, RP, NEVER = "open", "open_masked", "request_city", "request_province", "never"

# DESIGN §4, cell by cell: role -> level -> (own district, own city, other city).
# "own city" for a city role covers its districts; where a cell names only a narrower
# scope (officer internal: own district; commander sensitive: own city) the rest is a
# pointer whose request goes to the owning city's approver, as for the other city roles.
EXPECTED_BASE: dict[str, dict[str, tuple[str, str, str]]] = {
    "officer": {
        "public": (OK, OK, OK),
        "internal": (OK, RC, RC),
        "sensitive": (RC, RC, RC),
        "secret": (RP, RP, RP),
    },
    "investigator": {
        "public": (OK, OK, OK),
        "internal": (OK, OK, OK),
        "sensitive": (OK, OK, RC),
        "secret": (RP, RP, RP),
    },
    "city_approver": {
        "public": (OK, OK, OK),
        "internal": (OK, OK, OK),
        "sensitive": (OK, OK, RC),
        "secret": (RP, RP, RP),
    },
    "commander": {
        "public": (OK, OK, OK),
        "internal": (OK, OK, OK),
        "sensitive": (OK, OK, RC),
        "secret": (RP, RP, RP),
    },
    "province_approver": {
        "public": (OK, OK, OK),
        "internal": (OK, OK, OK),
        "sensitive": (OK, OK, OK),
        "secret": (RP, RP, RP),  # decided by another province approver
    },
    "analyst": {
        "public": (MASK, MASK, MASK),
        "internal": (MASK, MASK, MASK),
        "sensitive": (NEVER, NEVER, NEVER),  # aggregates only
        "secret": (NEVER, NEVER, NEVER),
    },
    "leader": {
        level: (NEVER, NEVER, NEVER) for level in ("public", "internal", "sensitive", "secret")
    },
    "auditor": {
        level: (NEVER, NEVER, NEVER) for level in ("public", "internal", "sensitive", "secret")
    },
    "admin": {
        level: (NEVER, NEVER, NEVER) for level in ("public", "internal", "sensitive", "secret")
    },
}
REL_INDEX = {"own_district": 0, "own_city": 1, "other_city": 2}


def expected(role: str, level: str, rel: str, grant: str) -> str:
    """DESIGN §4: a valid grant for the subject opens what a pointer would offer to
    request; it never opens what the role may not open at all; an expired grant or a
    grant for another subject changes nothing."""
    base = EXPECTED_BASE[role][level][REL_INDEX[rel]]
    if grant == "valid" and base in (RC, RP):
        return OK
    return base


ALL_COMBINATIONS = list(
    itertools.product(
        EXPECTED_BASE,
        ("public", "internal", "sensitive", "secret"),
        ("own_district", "own_city", "other_city"),
        ("none", "valid", "expired", "other_subject"),
    )
)


# --- the pure decision -----------------------------------------------------------------


def test_table_shape_matches_the_design() -> None:
    assert set(ROLES) == set(EXPECTED_BASE) == set(DECISIONS)
    assert tuple(CLASSIFICATIONS) == ("public", "internal", "sensitive", "secret")
    assert tuple(RELATIONS) == ("own_district", "own_city", "other_city")
    assert tuple(GRANT_STATES) == ("none", "valid", "expired", "other_subject")
    assert len(ALL_COMBINATIONS) == 9 * 4 * 3 * 4


def test_decide_every_combination() -> None:
    wrong = [
        (combo, decide(*combo).value, expected(*combo))
        for combo in ALL_COMBINATIONS
        if decide(*combo).value != expected(*combo)
    ]
    assert not wrong, f"{len(wrong)} cells differ from DESIGN §4: {wrong[:10]}"


def test_can_open_and_pointer_route_follow_decide() -> None:
    for role, level, rel, grant in ALL_COMBINATIONS:
        want = expected(role, level, rel, grant)
        assert can_open(role, level, rel, grant) is (want in (OK, MASK))
    for role, level, rel, _ in ALL_COMBINATIONS:
        p = Principal(1, "u", "U", role, "340100", "340102")
        assert pointer_route(p, level, rel).value == EXPECTED_BASE[role][level][REL_INDEX[rel]]


def test_decide_rejects_unknown_inputs() -> None:
    with pytest.raises(ValueError, match="grant state"):
        decide("officer", "public", "own_city", "forever")
    with pytest.raises(KeyError):
        decide("superuser", "public", "own_city")
    with pytest.raises(KeyError):
        decide("officer", "top_secret", "own_city")
    with pytest.raises(KeyError):
        decide("officer", "public", "next_door")


def test_requests_route_by_level() -> None:
    assert route_for("sensitive") == "city_approver"
    assert route_for("internal") == "city_approver"
    assert route_for("secret") == "province_approver"


@pytest.mark.parametrize(
    ("city", "district", "rel"),
    [
        ("340100", "340102", "own_district"),
        ("340100", "340103", "own_city"),
        ("340100", None, "own_city"),
        ("341100", "341102", "other_city"),
        ("341100", None, "other_city"),
    ],
)
def test_relation(city: str, district: str | None, rel: str) -> None:
    officer = Principal(1, "o", "O", "officer", "340100", "340102")
    assert relation(officer, city, district) == rel
    # A viewer without a home district has no own district, only an own city.
    investigator = Principal(2, "i", "I", "investigator", "340100", None)
    assert relation(investigator, city, district) == rel.replace("own_district", "own_city")
    admin = Principal(3, "a", "A", "admin", None, None)
    assert relation(admin, city, district) == "other_city"


def test_masks() -> None:
    assert masks_for("officer", via_grant=False) == {"id_number", "phone", "text"}
    assert masks_for("officer", via_grant=True) == frozenset()
    # Analysts always see masked data, names and plates included, grant or not.
    for via_grant in (False, True):
        assert {"id_number", "phone", "name", "plate"} <= masks_for("analyst", via_grant=via_grant)
    for role in ("investigator", "city_approver", "commander", "province_approver"):
        assert masks_for(role, via_grant=False) == frozenset()


def test_who_may_open_records() -> None:
    may = {r for r in ROLES if Principal(1, "u", "U", r, "340100").may_open_records}
    assert may == {
        "officer",
        "investigator",
        "city_approver",
        "commander",
        "province_approver",
        "analyst",
    }


# --- the SQL row filter agrees with decide() on real rows -------------------------------

NOW = ANCHOR
CITY, DISTRICT = "340100", "340102"
# Where a row lives, for a viewer at home in 340100/340102.
PLACES = [
    ("340100", "340102"),  # own district
    ("340100", "340103"),  # own city, another district
    ("340100", None),  # own city, no district
    ("341100", "341102"),  # other city
    ("341100", None),  # other city, no district
]
PLATE_A, PLATE_B, PLATE_C = "皖A12345", "皖M54321", "皖C00000"  # C: no rows at all
SQL_STATES = ("none", "valid", "expired", "other_subject")


def _row(model, n: int, city: str, district: str | None, level: str, **kw):
    extra = {"district_code": district} if hasattr(model, "district_code") else {}
    return model(source_id=f"t{n}", city_code=city, classification=level, **extra, **kw)


@pytest.fixture(scope="module", params=BACKENDS)
def policy_store(request, tmp_path_factory):
    """One row per (level × place × subject) in sightings, persons and vehicles, and
    one user per (role × grant state) holding grants in that state."""
    engine = empty_store(request.param, tmp_path_factory.mktemp("policy"))
    subjects: dict[tuple[str, int], str] = {}  # (table, id) -> "A" or "B"
    with transaction(engine) as s:
        camera = Camera(
            source_id="cam", city_code="340100", district_code="340102", classification="public",
            name="cam", kind="checkpoint", lon=117.3, lat=31.9,
        )  # fmt: skip
        s.add(camera)
        s.flush()
        rows = []
        combos = itertools.product(CLASSIFICATIONS, PLACES, "AB")
        for n, (level, (city, district), subject) in enumerate(combos, start=1):
            plate = PLATE_A if subject == "A" else PLATE_B
            rows.append(
                (subject, _row(Sighting, n, city, district, level, camera_id=camera.id,
                               plate=plate, ts=NOW, lon=117.3, lat=31.9))
            )  # fmt: skip
            rows.append((subject, _row(Person, n, city, district, level, name=f"人{n}")))
            if district is None:  # vehicles have no district
                rows.append((subject, _row(Vehicle, n, city, None, level, plate=plate)))
        s.add_all(r for _, r in rows)
        s.flush()
        for subject, r in rows:
            subjects[(r.__tablename__, r.id)] = subject
        person_a = [r.id for subj, r in rows if isinstance(r, Person) and subj == "A"]
        users: dict[tuple[str, str], int] = {}
        for role, state in itertools.product(ROLES, SQL_STATES):
            u = User(username=f"{role}.{state}", display_name=role, role=role,
                     city_code=CITY, password_hash="-")  # fmt: skip
            s.add(u)
            s.flush()
            users[(role, state)] = u.id
            for owner in ("340100", "341100"):
                grants = []
                if state in ("valid", "expired"):
                    expires = NOW + (
                        timedelta(hours=1) if state == "valid" else -timedelta(minutes=1)
                    )
                    grants.append(("plate", PLATE_A, expires, None))
                    grants += [("person", str(pid), expires, None) for pid in person_a]
                    if state == "expired":  # revoked: not in force either
                        grants.append(("plate", PLATE_A, NOW + timedelta(hours=1), NOW))
                elif state == "other_subject":
                    grants.append(("plate", PLATE_C, NOW + timedelta(hours=1), None))
                    grants.append(("person", "999999", NOW + timedelta(hours=1), None))
                for kind, value, expires, revoked in grants:
                    s.add(
                        Grant(user_id=u.id, kind="approval", owner_city=owner, level="secret",
                              scope_kind=kind, scope_value=value, purpose="case_investigation",
                              case_no="X1", granted_at=NOW - timedelta(hours=2), expires_at=expires,
                              revoked_at=revoked)
                    )  # fmt: skip
    yield engine, subjects, users
    engine.dispose()


def _expected_ids(session: Session, model, principal: Principal, state: str, subjects) -> set[int]:
    out = set()
    for row in session.execute(select(model).execution_options(policy="validation")).scalars():
        grant = state
        if state == "valid" and subjects[(model.__tablename__, row.id)] != "A":
            grant = "other_subject"
        rel = relation(principal, row.city_code, getattr(row, "district_code", None))
        if decide(principal.role, row.classification, rel, grant).opens:
            out.add(row.id)
    return out


@pytest.mark.parametrize("home_district", [DISTRICT, None], ids=["district", "no-district"])
def test_sql_filter_agrees_with_decide(policy_store, home_district) -> None:
    engine, subjects, users = policy_store
    checked = 0
    with session_factory(engine)() as s:
        for (role, state), user_id in users.items():
            p = Principal(user_id, f"{role}.{state}", role, role, CITY, home_district)
            grants = grants_in_force(s, p, now=NOW)
            assert bool(grants) is (state in ("valid", "other_subject"))
            for model in (Sighting, Person, Vehicle):
                want = _expected_ids(s, model, p, state, subjects)
                got = set(s.scalars(select(model.id).where(openable_clause(p, model, grants))))
                assert got == want, (role, state, model.__tablename__, sorted(got ^ want))
                checked += 1
    assert checked == len(ROLES) * len(SQL_STATES) * 3


def test_grant_covers_only_its_level_city_and_subject(policy_store) -> None:
    engine, subjects, users = policy_store
    p = Principal(users[("investigator", "none")], "i", "I", "investigator", CITY, None)
    grant = GrantScope(1, "341100", "sensitive", "plate", PLATE_A, NOW + timedelta(hours=1))
    with session_factory(engine)() as s:
        rows = s.execute(
            select(Sighting.city_code, Sighting.classification, Sighting.plate).where(
                openable_clause(p, Sighting, [grant])
            )
        ).all()
    other_city = {(lvl, plate) for city, lvl, plate in rows if city == "341100"}
    # up to sensitive, of plate A, in 341100; secret stays a pointer
    assert other_city == {
        ("public", PLATE_A), ("public", PLATE_B), ("internal", PLATE_A),
        ("internal", PLATE_B), ("sensitive", PLATE_A),
    }  # fmt: skip
    assert not any(lvl == "secret" for _, lvl, _ in rows)


def test_grants_never_widen_roles_without_record_access(policy_store) -> None:
    grant = GrantScope(1, "341100", "secret", "plate", PLATE_A, NOW + timedelta(hours=1))
    engine, _, users = policy_store
    with session_factory(engine)() as s:
        for role in ("auditor", "leader", "admin"):
            p = Principal(users[(role, "none")], role, role, role, CITY, None)
            assert (
                s.scalars(select(Sighting.id).where(openable_clause(p, Sighting, [grant]))).all()
                == []
            )
        analyst = Principal(users[("analyst", "none")], "a", "A", "analyst", CITY, None)
        levels = set(s.scalars(select(Sighting.classification).where(
            openable_clause(analyst, Sighting, [grant]))))  # fmt: skip
        assert levels == {"public", "internal"}


# --- the backstop: an unfiltered query still returns only permitted rows ------------------


def _session_for(engine, principal: Principal | None, grants=()) -> Session:
    s = session_factory(engine)()
    if principal is not None:
        s.info["principal"] = principal
        s.info["grants"] = list(grants)
    return s


@pytest.mark.parametrize("state", ["none", "valid"])
def test_backstop_filters_deliberately_unfiltered_queries(policy_store, state) -> None:
    engine, subjects, users = policy_store
    p = Principal(users[("officer", state)], "o", "O", "officer", CITY, DISTRICT)
    with session_factory(engine)() as plain:
        grants = grants_in_force(plain, p, now=NOW)
        everything = set(plain.scalars(select(Sighting.id)))
        want = _expected_ids(plain, Sighting, p, state, subjects)
        people = _expected_ids(plain, Person, p, state, subjects)
    assert want and want < everything

    with _session_for(engine, p, grants) as s:
        assert {r.id for r in s.scalars(select(Sighting))} == want
        assert set(s.scalars(select(Sighting.id))) == want
        assert s.scalar(select(func.count(Sighting.id))) == len(want)
        assert s.scalar(select(func.count()).select_from(Sighting)) == len(want)
        assert {r.id for r in s.scalars(select(Person))} == people
        hidden = min(everything - want)
        assert s.get(Sighting, hidden) is None
        # a join from an unfiltered table still meets the filter on the record table
        joined = s.execute(
            select(Camera.id, Sighting.id).join(Sighting, Sighting.camera_id == Camera.id)
        ).all()
        assert {sid for _, sid in joined} == want
        # subqueries: rows read only inside them are filtered too
        sub = select(Sighting.id).subquery()
        assert s.scalar(select(func.count()).select_from(sub)) == len(want)
        cams = s.scalars(select(Camera.id).where(Camera.id.in_(select(Sighting.camera_id))))
        assert len(cams.all()) == (1 if want else 0)
        # a policy value that is not one of the greppable bypasses changes nothing
        assert set(s.scalars(select(Sighting.id).execution_options(policy="please"))) == want
        # the deliberate bypasses see everything
        for policy in ("aggregate", "validation"):
            assert (
                set(s.scalars(select(Sighting.id).execution_options(policy=policy))) == everything
            )


def test_backstop_for_roles_without_records(policy_store) -> None:
    engine, _, users = policy_store
    for role in ("auditor", "admin", "leader"):
        p = Principal(users[(role, "none")], role, role, role, None if role == "admin" else CITY)
        with _session_for(engine, p) as s:
            assert s.scalars(select(Sighting)).all() == []
            assert s.scalar(select(func.count()).select_from(Person)) == 0
