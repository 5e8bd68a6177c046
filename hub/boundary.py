"""The hub's boundary: what every public `Hub` method checks before it runs, and the one
path by which a refusal is audited.

Pages, the CLI and tests reach the store only through `Hub`. Wrapping each public
method once (``guard_methods``) means a new method is checked and audited like the old
ones without anyone remembering to: every text argument, however deeply nested in a
query object, is refused if it holds a NUL or a lone surrogate (PostgreSQL cannot store
either and SQLite stores them differently, so both backends answer alike), free text
that people share is refused if it holds an ID number or a phone, and a refused call
(`HubError`) that the method did not already audit is audited here, in a transaction of
its own after the method's was rolled back.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DataError

from hub.security import audit
from hub.security.errors import HubError, InputError
from hub.security.policy import Principal
from hub.validate import find_id_numbers, find_phones

# Text no input needs: NUL (PostgreSQL refuses it, SQLite keeps it) and UTF-16 surrogate
# halves (no encoder can write them: the driver would fail mid-transaction).
_BAD_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
# Parameters holding text that a person typed for other people to read. Identifiers
# belong in the subject fields, where they are encrypted and masked; in free text they
# would be stored in clear (and in the append-only audit log, for ever).
FREE_TEXT_PARAMS = frozenset(
    {"justification", "note", "text", "title", "body", "name", "objectives", "asked", "response"}
)
# Separators between digits (or before an ID number's X), as typed to split a number.
_SPLIT_DIGITS = re.compile(r"(?<=[0-9０-９])[\s\-./_·]+(?=[0-9０-９Xx])")
# No single text argument is longer than this (an EIDO narrative is the largest).
MAX_TEXT = 100_000
# Arguments that are data, not text: uploads are checked by the feed readers.
_OPAQUE = (bytes, bytearray, memoryview)
# No id, count or limit is wider than a signed 64-bit column: a wider number is refused
# here instead of failing in the driver (SQLite) or the server (PostgreSQL).
MAX_INT = 2**63 - 1
# Times a caller may mean: outside these years date arithmetic overflows.
_YEARS = range(1900, 2200)


def holds_identifier(text: str) -> bool:
    """Whether text holds an ID number or a mobile number, also when spaced out or split by
    hyphens, dots or slashes (``110105 19491231 002X``) to slip past a plain search."""
    if find_id_numbers(text) or find_phones(text):
        return True
    compact = _SPLIT_DIGITS.sub("", text)
    return compact != text and bool(find_id_numbers(compact) or find_phones(compact))


def check_input(value: Any, where: str, *, free_text: bool = False, depth: int = 0) -> None:
    """Refuse a value whose text could not be stored or compared the same way everywhere.

    Parameters
    ----------
    value
        An argument as a caller passed it: text, numbers, dates, containers of them, or a
        dataclass (a `Reason`, a query).
    where
        The argument's name, reported in the refusal (never the value).
    free_text
        Also refuse ID numbers and phone numbers in it.

    Raises
    ------
    InputError
        ``bad_characters``, ``too_long``, ``text_has_identifier``, ``bad_input``
        (nesting too deep to be a real argument, a time without a time zone) or
        ``out_of_range`` (an integer wider than 64 bits, NaN or infinity, a year outside
        1900-2199).
    """
    if depth > 8:
        raise InputError("bad_input", "input nested too deeply", field=where)
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise InputError("too_long", f"{where} too long", field=where, limit=MAX_TEXT)
        if _BAD_CHARACTERS.search(value):
            raise InputError(
                "bad_characters", f"{where} has characters no text may hold", field=where
            )
        if free_text and holds_identifier(value):
            raise InputError(
                "text_has_identifier", "free text must not hold ID or phone numbers", field=where
            )
        return
    if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
        raise InputError("out_of_range", f"{where} out of range", field=where)
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError("out_of_range", f"{where} is not a finite number", field=where)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InputError("bad_input", f"{where} has no time zone", field=where)
        if value.year not in _YEARS:
            raise InputError("out_of_range", f"{where} out of range", field=where)
        return
    if value is None or isinstance(value, (int, float, Principal, *_OPAQUE)):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            check_input(key, where, depth=depth + 1)
            check_input(item, f"{where}.{key}" if isinstance(key, str) else where, depth=depth + 1)
        return
    if isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            check_input(item, where, free_text=free_text, depth=depth + 1)
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            check_input(getattr(value, f.name), f"{where}.{f.name}", depth=depth + 1)


def _principal_of(bound: inspect.BoundArguments) -> Principal | None:
    for value in bound.arguments.values():
        if isinstance(value, Principal):
            return value
    return None


def _audit_refusal(hub: Any, method: str, bound: inspect.BoundArguments, exc: HubError) -> None:
    """Audit a refusal the method itself did not, with its code and parameters."""
    principal = _principal_of(bound)
    username = None
    if principal is None:
        name = bound.arguments.get("username")
        # A name that could not be one (too long, unstorable) is not kept: it may be a
        # password typed into the wrong field.
        fits = isinstance(name, str) and len(name) <= 64 and not _BAD_CHARACTERS.search(name)
        username = name if fits else None
    detail = {"code": exc.code, "method": method}
    detail.update({k: str(v)[:200] for k, v in exc.params.items()})
    with hub._session() as session:
        audit.record(
            session, principal, f"{method[:24]}_refused", now=datetime.now(UTC),
            username=username, decision=exc.code[:32], detail=detail,
        )  # fmt: skip
    exc.audited = True


def _guarded(method: str, fn: Callable) -> Callable:
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        bound = signature.bind_partial(self, *args, **kwargs)
        try:
            for name, value in bound.arguments.items():
                if name == "self":
                    continue
                if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    for key, item in value.items():
                        check_input(key, name)  # the name itself is caller's text
                        check_input(item, key, free_text=key in FREE_TEXT_PARAMS)
                else:
                    check_input(value, name, free_text=name in FREE_TEXT_PARAMS)
            try:
                return fn(self, *args, **kwargs)
            except (DataError, OverflowError) as exc:
                # A value the checks above let through but the store or date arithmetic
                # cannot take (a negative LIMIT, an id wider than its int4 column on
                # PostgreSQL): a refusal like any other, on both backends, not a crash.
                # The method's transaction has already been rolled back.
                raise InputError(
                    "out_of_range", "a value is out of the range the store can take",
                    error=type(exc).__name__,
                ) from None  # fmt: skip
        except HubError as exc:
            if not exc.audited:
                _audit_refusal(self, method, bound, exc)
            raise

    return call


def guard_methods(cls: type) -> type:
    """Class decorator: every public method of `cls` checks its input and audits refusals."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _guarded(name, member))
    return cls
