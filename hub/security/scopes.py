"""What a request or a grant covers: one subject, parsed, bounded and stored canonical.

A scope is filed once and read at every lookup its holder makes afterwards
(`hub.security.policy.scope_predicate` turns it into SQL), so whatever is filed must
parse there: a malformed scope would not fail where it was typed but in every later
search of the requester. Each kind is therefore parsed here before it is filed, and
bounded so that one approval cannot hand out a whole city:

- ``plate``: a valid plate, normalised;
- ``person``, ``case``: the id of a record of the owning city;
- ``camera_area``: JSON ``{"camera_ids": [...], "from": ..., "to": ...}`` naming at
  most `MAX_AREA_CAMERAS` cameras of the owning city and a window of at most
  `MAX_AREA_WINDOW` (timestamps with an offset; stored in UTC);
- ``id_number``, ``phone``: the blind index of the number (`hub.security.access`
  computes it; the number itself is never filed).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import Camera, Case, Person
from hub.security.errors import InputError
from hub.validate import is_valid_plate, normalize_plate

SCOPE_KINDS = ("plate", "person", "case", "camera_area", "id_number", "phone")
IDENTIFIER_KINDS = frozenset({"id_number", "phone"})
MAX_SCOPE = 400  # the column's length
MAX_AREA_CAMERAS = 20
MAX_AREA_WINDOW = timedelta(days=7)
_AREA_KEYS = frozenset({"camera_ids", "from", "to"})
# Record ids are positive BIGINTs written in ASCII digits: `str.isdigit` would also
# accept "²" or "١", which `int()` then refuses at every lookup.
_RECORD_ID = re.compile(r"[0-9]{1,19}")
_MAX_ID = 2**63 - 1
_BLIND_INDEX = re.compile(r"[0-9a-f]{64}")


def _record_id(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and _RECORD_ID.fullmatch(value):
        n = int(value)
    else:
        raise ValueError("not a record id")
    if not 0 < n <= _MAX_ID:
        raise ValueError("record id out of range")
    return n


def _area_error() -> InputError:
    return InputError(
        "bad_camera_area", "a camera area is JSON with camera_ids, from and to",
        cameras=MAX_AREA_CAMERAS, days=MAX_AREA_WINDOW.days,
    )  # fmt: skip


def _stamp(value: object) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("not a timestamp")
    ts = datetime.fromisoformat(value)
    if ts.tzinfo is None:
        raise ValueError("a timestamp needs its offset")
    return ts.astimezone(UTC)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # With a key twice, readers disagree on what the area is (the first or the last):
    # the approver could be shown one area and the hub grant another.
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate key")
    return dict(pairs)


def _camera_area(value: str) -> str:
    try:
        area = json.loads(value, object_pairs_hook=_no_duplicate_keys)
        if not isinstance(area, dict) or set(area) != _AREA_KEYS:
            raise ValueError("keys")
        ids = area["camera_ids"]
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_AREA_CAMERAS:
            raise ValueError("camera count")
        cameras = sorted({_record_id(c) for c in ids})
        start, end = _stamp(area["from"]), _stamp(area["to"])
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise _area_error() from None
    if not start < end <= start + MAX_AREA_WINDOW:
        raise _area_error()
    return json.dumps(
        {"camera_ids": cameras, "from": start.isoformat(), "to": end.isoformat()},
        separators=(",", ":"),
        sort_keys=True,
    )


def parse_scope(scope_kind: str, scope_value: str) -> str:
    """The canonical form of a scope; no database needed.

    Parameters
    ----------
    scope_kind : str
        One of `SCOPE_KINDS`.
    scope_value : str
        As typed (plate, record id, camera-area JSON) or, for identifier kinds, the
        blind index already computed.

    Returns
    -------
    str
        The value to store: the same subject always gives the same text.

    Raises
    ------
    InputError
        ``bad_scope`` (unknown kind, a record id that is not one, a malformed blind
        index), ``bad_plate``, ``bad_camera_area`` (params ``cameras``, ``days``), or
        ``too_long``.
    """
    if scope_kind not in SCOPE_KINDS or not isinstance(scope_value, str):
        raise InputError("bad_scope", f"unknown scope {scope_kind!r}")
    value = scope_value.strip()
    if scope_kind in IDENTIFIER_KINDS:
        if not _BLIND_INDEX.fullmatch(value):
            raise InputError("bad_scope", "an identifier scope is its blind index")
    elif scope_kind == "plate":
        value = normalize_plate(value)
        if not is_valid_plate(value):
            raise InputError("bad_plate", "not a valid plate", value=scope_value[:20])
    elif scope_kind in ("person", "case"):
        try:
            value = str(_record_id(value))
        except ValueError:
            raise InputError("bad_scope", "person and case scopes name a record id") from None
    else:
        value = _camera_area(value)
    if len(value) > MAX_SCOPE:
        raise InputError("too_long", "scope too long", field="scope", limit=MAX_SCOPE)
    return value


def well_formed(scope_kind: str, scope_value: str) -> bool:
    """Whether a stored scope parses; a grant whose scope does not covers nothing.

    Scopes filed before they were parsed (``not-json{`` as a camera area) must not
    break their holder's lookups: `hub.security.access.grants_in_force` drops them.
    """
    try:
        parse_scope(scope_kind, scope_value)
    except InputError:
        return False
    return True


def check_subject(session: Session, scope_kind: str, value: str, owner_city: str) -> None:
    """Refuse a canonical scope whose records are not the owning city's.

    Checking that the subject exists is validation, not a read: nothing of the record
    is returned, and only records of the city the request is addressed to count.

    Raises
    ------
    InputError
        ``unknown_scope_subject`` (person or case), ``unknown_camera``.
    """
    if scope_kind in ("person", "case"):
        model = Person if scope_kind == "person" else Case
        found = session.scalar(
            select(model.id)
            .where(model.id == int(value), model.city_code == owner_city)
            .execution_options(policy="validation")
        )
        if found is None:
            raise InputError("unknown_scope_subject", f"no {scope_kind} {value} in {owner_city}")
    elif scope_kind == "camera_area":
        cameras = json.loads(value)["camera_ids"]
        found = session.scalar(
            select(func.count())
            .select_from(Camera)
            .where(Camera.id.in_(cameras), Camera.city_code == owner_city)
            .execution_options(policy="validation")
        )
        if found != len(cameras):
            raise InputError("unknown_camera", "the area names cameras the city does not have")
