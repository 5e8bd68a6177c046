"""Rules of joint response as data: resource-request lifecycle, unit status, who may act.

Two state machines, each a table of legal transitions read by pure functions:

Resource request (NIMS resource-request lifecycle, several cities):

===========  ==========================================  =========================
from         to                                          taken by a commander of
===========  ==========================================  =========================
requested    accepted, declined                          the unit's (owning) city
requested    cancelled                                   the requesting city
accepted     dispatched                                  the owning city
accepted     cancelled                                   the requesting city
dispatched   en_route                                    the owning city
en_route     on_scene                                    the owning city
dispatched,  released                                    either city
en_route,
on_scene
===========  ==========================================  =========================

- Cancelling is only possible before the unit rolls; afterwards the request ends by
  release, so the owner knows to stand its unit down.
- Release from ``dispatched`` / ``en_route`` is the stand-down before arrival (the
  incident resolved itself, or the owner must recall its unit); from ``on_scene`` it
  is the normal end. Either side may take it: the requester when done, the owner when
  it needs the unit back.
- ``declined``, ``cancelled``, ``released`` are final.

Unit status (``unit_status`` in ``data/codes.toml``, Resgrid-style):
``available -> dispatched -> en_route -> on_scene -> available``; ``dispatched`` and
``en_route`` may also go back to ``available`` (stood down); any status may go to
``out_of_service`` (breakdown, crew off duty), which only returns to ``available``.
Only an ``available`` unit of a mobile kind may be dispatched (:data:`DISPATCHABLE`,
``mobile`` in the ``unit_kind`` table).

:data:`UNIT_STATUS_FOR_REQUEST` says which unit status each request state implies, so
a service can move both in one transaction and check both with this module.

"The requesting city" and "the owning city" are acted for by any of their commanders,
not only the person who filed the request: duty commanders hand over every shift and
the request must survive the hand-over.
"""

from __future__ import annotations

from types import MappingProxyType

from hub.codes import code_values, codes
from hub.security.errors import AccessDenied, InputError
from hub.security.policy import Principal

REQUEST_STATES = (
    "requested",
    "accepted",
    "declined",
    "dispatched",
    "en_route",
    "on_scene",
    "released",
    "cancelled",
)
UNIT_STATUSES: tuple[str, ...] = code_values("unit_status")

# (old, new) -> which party acts: "owner" (the unit's city), "requester" (the city that
# asked), or "either".
REQUEST_TRANSITIONS: MappingProxyType[tuple[str, str], str] = MappingProxyType(
    {
        ("requested", "accepted"): "owner",
        ("requested", "declined"): "owner",
        ("requested", "cancelled"): "requester",
        ("accepted", "cancelled"): "requester",
        ("accepted", "dispatched"): "owner",
        ("dispatched", "en_route"): "owner",
        ("en_route", "on_scene"): "owner",
        ("dispatched", "released"): "either",
        ("en_route", "released"): "either",
        ("on_scene", "released"): "either",
    }
)
UNIT_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("available", "dispatched"),
        ("dispatched", "en_route"),
        ("en_route", "on_scene"),
        ("dispatched", "available"),
        ("en_route", "available"),
        ("on_scene", "available"),
        ("available", "out_of_service"),
        ("dispatched", "out_of_service"),
        ("en_route", "out_of_service"),
        ("on_scene", "out_of_service"),
        ("out_of_service", "available"),
    }
)
FINAL_REQUEST_STATES = frozenset({"declined", "cancelled", "released"})
DISPATCHABLE = frozenset({"available"})
# The unit status a request state puts its unit in; states before dispatch leave the
# unit where it is (None), final states after dispatch give it back.
UNIT_STATUS_FOR_REQUEST: MappingProxyType[str, str | None] = MappingProxyType(
    {
        "requested": None,
        "accepted": None,
        "declined": None,
        "cancelled": None,
        "dispatched": "dispatched",
        "en_route": "en_route",
        "on_scene": "on_scene",
        "released": "available",
    }
)
_MACHINES = {
    "resource_request": (REQUEST_STATES, frozenset(REQUEST_TRANSITIONS)),
    "unit": (UNIT_STATUSES, UNIT_TRANSITIONS),
}
KINDS = tuple(_MACHINES)
DISPATCH_ROLE = "commander"


class IllegalTransition(InputError):
    """A state change the lifecycle does not allow (code ``illegal_transition``)."""


def _machine(kind: str) -> tuple[tuple[str, ...], frozenset[tuple[str, str]]]:
    try:
        return _MACHINES[kind]
    except KeyError:
        raise ValueError(f"unknown state machine {kind!r}; expected one of {KINDS}") from None


def allowed_next(kind: str, old: str) -> tuple[str, ...]:
    """States reachable from ``old`` in one step.

    Parameters
    ----------
    kind : str
        ``"resource_request"`` or ``"unit"``.
    old : str
        Current state.

    Returns
    -------
    tuple of str
        Next states in the machine's state order; empty for a final state.

    Raises
    ------
    ValueError
        If ``kind`` is unknown (a programming error, not a user's).
    """
    states, edges = _machine(kind)
    return tuple(s for s in states if (old, s) in edges)


def require_transition(kind: str, old: str, new: str) -> None:
    """Refuse a state change its machine does not allow.

    Parameters
    ----------
    kind : str
        ``"resource_request"`` or ``"unit"``.
    old, new : str
        Current and wanted state.

    Raises
    ------
    InputError
        Code ``unknown_state`` (params ``kind``, ``state``) if either state is not one
        of the machine's.
    IllegalTransition
        Code ``illegal_transition`` (params ``kind``, ``old``, ``new``, ``allowed``: the
        comma-separated legal next states, or empty) otherwise.
    ValueError
        If ``kind`` is unknown.
    """
    states, edges = _machine(kind)
    for state in (old, new):
        if state not in states:
            raise InputError(
                "unknown_state", f"{state!r} is not a {kind} state", kind=kind, state=state
            )
    if (old, new) not in edges:
        allowed = ", ".join(allowed_next(kind, old))
        raise IllegalTransition(
            "illegal_transition",
            f"{kind} cannot go from {old} to {new} (allowed: {allowed or 'none, final'})",
            kind=kind,
            old=old,
            new=new,
            allowed=allowed,
        )


def can_transition(kind: str, old: str, new: str) -> bool:
    """Whether :func:`require_transition` would allow the change.

    Parameters
    ----------
    kind : str
        ``"resource_request"`` or ``"unit"``.
    old, new : str
        Current and wanted state.

    Returns
    -------
    bool
        True if the transition is legal; False for illegal ones and unknown states.
    """
    try:
        require_transition(kind, old, new)
    except InputError:
        return False
    return True


def _mobile_kinds() -> frozenset[str]:
    return frozenset(c.code for c in codes("unit_kind") if c.attrs.get("mobile", True))


def require_dispatchable(status: str, kind: str | None = None) -> None:
    """Refuse to dispatch a unit that is not available or cannot move.

    Parameters
    ----------
    status : str
        The unit's current status.
    kind : str, optional
        The unit's kind; when given, fixed facilities (a hospital) are refused.

    Raises
    ------
    InputError
        Code ``unit_unavailable`` (params ``status``) if the status does not allow
        dispatch, or ``unit_not_mobile`` (params ``kind``) for a fixed facility.
    """
    if kind is not None and kind not in _mobile_kinds():
        raise InputError("unit_not_mobile", f"a {kind} cannot be dispatched", kind=kind)
    if status not in DISPATCHABLE:
        raise InputError(
            "unit_unavailable", f"a unit that is {status} cannot be dispatched", status=status
        )


def can_dispatch_status(status: str, kind: str | None = None) -> bool:
    """Whether :func:`require_dispatchable` would allow the unit.

    Parameters
    ----------
    status : str
        The unit's current status.
    kind : str, optional
        The unit's kind.

    Returns
    -------
    bool
        True if a unit with this status (and kind) may be dispatched.
    """
    try:
        require_dispatchable(status, kind)
    except InputError:
        return False
    return True


def _is_city_commander(principal: Principal, city_code: str) -> bool:
    return principal.role == DISPATCH_ROLE and principal.city_code == city_code


def require_may_dispatch(principal: Principal, unit_city: str) -> None:
    """Only a commander of the unit's own city dispatches it; others request it.

    Parameters
    ----------
    principal : Principal
        Who acts.
    unit_city : str
        Adcode of the city that owns the unit.

    Raises
    ------
    AccessDenied
        Code ``not_unit_commander`` (params ``city``).
    """
    if not _is_city_commander(principal, unit_city):
        raise AccessDenied(
            "not_unit_commander",
            "only a commander of the unit's city may dispatch it",
            city=unit_city,
        )


def can_dispatch(principal: Principal, unit_city: str) -> bool:
    """Whether :func:`require_may_dispatch` would allow it.

    Parameters
    ----------
    principal : Principal
        Who acts.
    unit_city : str
        Adcode of the unit's city.

    Returns
    -------
    bool
        True for a commander of that city.
    """
    try:
        require_may_dispatch(principal, unit_city)
    except AccessDenied:
        return False
    return True


def require_may_request(principal: Principal, requesting_city: str, owner_city: str) -> None:
    """A commander asks another city for one of its units on behalf of their own city.

    Parameters
    ----------
    principal : Principal
        Who files the request.
    requesting_city : str
        Adcode of the city the request is filed for.
    owner_city : str
        Adcode of the city that owns the unit.

    Raises
    ------
    AccessDenied
        Code ``not_city_commander`` (params ``city``) unless the principal is a
        commander of ``requesting_city``.
    InputError
        Code ``request_own_unit`` when the unit is the requester's own: dispatch it.
    """
    if not _is_city_commander(principal, requesting_city):
        raise AccessDenied(
            "not_city_commander",
            "only a commander of the requesting city may request a unit",
            city=requesting_city,
        )
    if owner_city == requesting_city:
        raise InputError("request_own_unit", "this is your own city's unit: dispatch it")


def require_may_act(
    principal: Principal, old: str, new: str, *, owner_city: str, requesting_city: str
) -> None:
    """Refuse a resource-request step that is illegal or not this principal's to take.

    Parameters
    ----------
    principal : Principal
        Who acts.
    old, new : str
        Current and wanted request state.
    owner_city : str
        Adcode of the city that owns the requested unit.
    requesting_city : str
        Adcode of the city that asked for it.

    Raises
    ------
    InputError, IllegalTransition
        As :func:`require_transition` for ``"resource_request"``.
    AccessDenied
        Code ``not_request_party`` (params ``new``, ``city``: the city whose
        commander may take the step, or both joined by a comma).
    """
    require_transition("resource_request", old, new)
    party = REQUEST_TRANSITIONS[(old, new)]
    cities = {
        "owner": (owner_city,),
        "requester": (requesting_city,),
        "either": (owner_city, requesting_city),
    }[party]
    if not any(_is_city_commander(principal, city) for city in cities):
        raise AccessDenied(
            "not_request_party",
            f"only a commander of {' or '.join(cities)} may set this request to {new}",
            new=new,
            city=",".join(cities),
        )


def can_act(
    principal: Principal, old: str, new: str, *, owner_city: str, requesting_city: str
) -> bool:
    """Whether :func:`require_may_act` would allow the step.

    Parameters
    ----------
    principal : Principal
        Who acts.
    old, new : str
        Current and wanted request state.
    owner_city, requesting_city : str
        Adcodes of the unit's city and of the asking city.

    Returns
    -------
    bool
        True if the step is legal and this principal's to take.
    """
    try:
        require_may_act(principal, old, new, owner_city=owner_city, requesting_city=requesting_city)
    except (InputError, AccessDenied):
        return False
    return True
