"""Joint-response state machines and permissions, enumerated exhaustively."""

from __future__ import annotations

import itertools

import pytest

from hub.codes import code_values
from hub.response_rules import (
    DISPATCHABLE,
    REQUEST_STATES,
    REQUEST_TRANSITIONS,
    UNIT_STATUS_FOR_REQUEST,
    UNIT_STATUSES,
    UNIT_TRANSITIONS,
    IllegalTransition,
    allowed_next,
    can_act,
    can_dispatch,
    can_dispatch_status,
    can_transition,
    require_dispatchable,
    require_may_act,
    require_may_dispatch,
    require_may_request,
    require_transition,
)
from hub.security.errors import AccessDenied, HubError, InputError
from hub.security.policy import ROLES, Principal

HEFEI, CHUZHOU, LUAN = "340100", "341100", "341500"

# Written out by hand from the issue ("requested -> accepted or declined by the owning
# city's commander -> dispatched -> en route -> on scene -> released", cancel from
# requested/accepted) plus the stand-down release documented in the module; the tables
# in the module must say exactly this, no more.
LEGAL_REQUEST = {
    ("requested", "accepted"),
    ("requested", "declined"),
    ("requested", "cancelled"),
    ("accepted", "cancelled"),
    ("accepted", "dispatched"),
    ("dispatched", "en_route"),
    ("en_route", "on_scene"),
    ("on_scene", "released"),
    ("dispatched", "released"),
    ("en_route", "released"),
}
LEGAL_UNIT = {
    ("available", "dispatched"),
    ("dispatched", "en_route"),
    ("en_route", "on_scene"),
    ("on_scene", "available"),
    ("dispatched", "available"),
    ("en_route", "available"),
    ("available", "out_of_service"),
    ("dispatched", "out_of_service"),
    ("en_route", "out_of_service"),
    ("on_scene", "out_of_service"),
    ("out_of_service", "available"),
}
ALL_REQUEST = list(itertools.product(REQUEST_STATES, repeat=2))
ALL_UNIT = list(itertools.product(UNIT_STATUSES, repeat=2))


def who(role: str, city: str | None = HEFEI, user_id: int = 1) -> Principal:
    return Principal(user_id, f"u{user_id}", f"user {user_id}", role, city)


def test_tables_are_the_documented_ones():
    assert set(REQUEST_TRANSITIONS) == LEGAL_REQUEST
    assert UNIT_TRANSITIONS == LEGAL_UNIT
    # Unit statuses are the standard's code table, not a copy of it.
    assert code_values("unit_status") == UNIT_STATUSES
    assert set(UNIT_STATUS_FOR_REQUEST) == set(REQUEST_STATES)
    assert {s for s in UNIT_STATUS_FOR_REQUEST.values() if s} <= set(UNIT_STATUSES)


@pytest.mark.parametrize(("old", "new"), ALL_REQUEST)
def test_every_request_transition(old, new):
    if (old, new) in LEGAL_REQUEST:
        require_transition("resource_request", old, new)
        assert can_transition("resource_request", old, new)
    else:
        with pytest.raises(IllegalTransition) as refused:
            require_transition("resource_request", old, new)
        assert refused.value.code == "illegal_transition"
        assert refused.value.params["old"] == old and refused.value.params["new"] == new
        assert not can_transition("resource_request", old, new)


@pytest.mark.parametrize(("old", "new"), ALL_UNIT)
def test_every_unit_transition(old, new):
    if (old, new) in LEGAL_UNIT:
        require_transition("unit", old, new)
        assert can_transition("unit", old, new)
    else:
        with pytest.raises(IllegalTransition):
            require_transition("unit", old, new)
        assert not can_transition("unit", old, new)


def test_refusal_is_a_hub_error_naming_the_legal_steps():
    with pytest.raises(HubError) as refused:
        require_transition("resource_request", "requested", "on_scene")
    assert isinstance(refused.value, InputError)
    assert refused.value.params["allowed"] == "accepted, declined, cancelled"
    assert allowed_next("resource_request", "released") == ()


def test_request_unit_state_pairs_are_legal_walks():
    # Following a request from dispatch to release walks the unit machine legally.
    walk = ["dispatched", "en_route", "on_scene", "released"]
    statuses = ["available", *(UNIT_STATUS_FOR_REQUEST[s] for s in walk)]
    for old, new in itertools.pairwise(statuses):
        require_transition("unit", old, new)
    for stand_down in ("dispatched", "en_route"):
        require_transition("unit", UNIT_STATUS_FOR_REQUEST[stand_down], "available")


@pytest.mark.parametrize("state", ["", "arrived", "Available"])
def test_unknown_states_are_refused(state):
    for kind, known in (("resource_request", "requested"), ("unit", "available")):
        with pytest.raises(InputError) as refused:
            require_transition(kind, known, state)
        assert refused.value.code == "unknown_state"
        assert not can_transition(kind, state, known)


def test_unknown_machine_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown state machine"):
        require_transition("operation", "a", "b")


@pytest.mark.parametrize("status", UNIT_STATUSES)
def test_only_available_units_are_dispatchable(status):
    assert can_dispatch_status(status) is (status == "available")
    if status not in DISPATCHABLE:
        with pytest.raises(InputError) as refused:
            require_dispatchable(status, "patrol_car")
        assert refused.value.code == "unit_unavailable"


def test_fixed_facilities_are_never_dispatched():
    with pytest.raises(InputError) as refused:
        require_dispatchable("available", "hospital")
    assert refused.value.code == "unit_not_mobile"
    assert can_dispatch_status("available", "ambulance")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("city", [HEFEI, CHUZHOU, None])
def test_only_a_commander_of_the_owning_city_dispatches(role, city):
    principal = who(role, city)
    allowed = role == "commander" and city == HEFEI
    assert can_dispatch(principal, HEFEI) is allowed
    if not allowed:
        with pytest.raises(AccessDenied) as refused:
            require_may_dispatch(principal, HEFEI)
        assert refused.value.code == "not_unit_commander"


@pytest.mark.parametrize(("old", "new"), sorted(LEGAL_REQUEST))
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("city", [HEFEI, CHUZHOU, LUAN, None])
def test_who_takes_each_request_step(old, new, role, city):
    # 滁州 asks 合肥 for a unit; 六安 is a bystander.
    party = {
        "accepted": {HEFEI},
        "declined": {HEFEI},
        "dispatched": {HEFEI},
        "en_route": {HEFEI},
        "on_scene": {HEFEI},
        "cancelled": {CHUZHOU},
        "released": {HEFEI, CHUZHOU},
    }[new]
    principal = who(role, city)
    allowed = role == "commander" and city in party
    assert can_act(principal, old, new, owner_city=HEFEI, requesting_city=CHUZHOU) is allowed
    if not allowed:
        with pytest.raises(AccessDenied) as refused:
            require_may_act(principal, old, new, owner_city=HEFEI, requesting_city=CHUZHOU)
        assert refused.value.code == "not_request_party"


@pytest.mark.parametrize(("old", "new"), [p for p in ALL_REQUEST if p not in LEGAL_REQUEST])
def test_even_the_right_commander_cannot_take_an_illegal_step(old, new):
    for city in (HEFEI, CHUZHOU):
        with pytest.raises(IllegalTransition):
            require_may_act(
                who("commander", city), old, new, owner_city=HEFEI, requesting_city=CHUZHOU
            )


def test_cancel_by_any_commander_of_the_requesting_city():
    # The duty commander who filed it may have handed over: a colleague cancels.
    other_shift = who("commander", CHUZHOU, user_id=99)
    assert can_act(other_shift, "requested", "cancelled", owner_city=HEFEI, requesting_city=CHUZHOU)


def test_who_may_request():
    require_may_request(who("commander", CHUZHOU), CHUZHOU, HEFEI)
    with pytest.raises(AccessDenied) as refused:
        require_may_request(who("commander", LUAN), CHUZHOU, HEFEI)
    assert refused.value.code == "not_city_commander"
    with pytest.raises(AccessDenied):
        require_may_request(who("investigator", CHUZHOU), CHUZHOU, HEFEI)
    with pytest.raises(InputError) as own:
        require_may_request(who("commander", HEFEI), HEFEI, HEFEI)
    assert own.value.code == "request_own_unit"
