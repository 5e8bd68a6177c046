"""Hostile input in every field a user types: the peer suite's SQL injection, XSS, path
traversal and CSV-formula payloads (one per line of shared/testdata/peer/payloads.txt),
plus NUL characters, which PostgreSQL refuses to store.

Each payload goes into the plate search, the person search by name, ID number and
phone, the reason's case number and note, a request's justification, and the sign-in
user name and password. The answer must be an ordinary result or a `HubError` with a
code the UI can translate, never another exception; afterwards the store is intact.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError

from hub import demo
from hub.models import AccessRequest, Base, User
from hub.records import LookupResult
from hub.security import audit
from hub.security.errors import HubError
from hub.security.identity import DEMO_PASSWORD, add_demo_user
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS
from tests.security_support import at, principal, seeded_copy

PEER = Path(__file__).resolve().parents[2] / "shared/testdata/peer"
PAYLOAD_FILE = PEER / "payloads.txt"
if not PAYLOAD_FILE.is_file():
    raise FileNotFoundError(
        f"{PAYLOAD_FILE} is missing: the peer test vectors live in shared/testdata/peer beside "
        "the repository (see shared/testdata/peer/SOURCES.md)"
    )
PAYLOADS = [line for line in PAYLOAD_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
EXTRA = ["\x00", "皖A\x0012345", "A340100202600001\x00", "'\x00; DROP TABLE audit_log; --"]
CODE = re.compile(r"^[a-z][a-z_]*[a-z]$")
PURSUIT = Reason("pursuit", demo.PURSUIT_CASE_NO)
TARGET = "payload.target"


def test_payload_file_is_complete() -> None:
    assert len(PAYLOADS) == 64
    assert any("UNION" in p for p in PAYLOADS) and any("<script>" in p for p in PAYLOADS)


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    with transaction(engine) as s:
        add_demo_user(s, username=TARGET, display_name="target", role="officer",
                      city_code="340100", district_code="340102", now=at(day=-5))  # fmt: skip
    hub = Hub(engine, load_settings())
    baseline = hub.search_plate(
        principal(engine, "investigator.hf"), demo.PURSUIT_PLATE, PURSUIT, now=at(day=50)
    )
    yield {
        "engine": engine, "hub": hub, "baseline": baseline,
        "inv": principal(engine, "investigator.hf"), "officer": principal(engine, "officer.hf"),
        "tables": set(inspect(engine).get_table_names()),
    }  # fmt: skip
    engine.dispose()


def _outcome(fn, *args, **kw):
    """The result, or the HubError; any other exception fails the test."""
    try:
        return fn(*args, **kw)
    except HubError as exc:
        assert CODE.match(exc.code), f"unclear refusal code {exc.code!r}"
        return exc


@pytest.mark.parametrize(
    "payload", PAYLOADS + EXTRA, ids=[f"p{i:02d}" for i in range(len(PAYLOADS + EXTRA))]
)
def test_payload_in_every_field(env, payload: str) -> None:
    hub, inv, now = env["hub"], env["inv"], at(day=50)

    got = _outcome(hub.search_plate, inv, payload, PURSUIT, now=now)
    assert isinstance(got, HubError) or (got.rows == [] and got.pointers == [])

    for kind in ("name", "id_number", "phone"):
        got = _outcome(hub.search_person, inv, kind, payload, PURSUIT, now=now)
        if not isinstance(got, HubError):
            assert isinstance(got, LookupResult) and got.rows == [] and got.pointers == [], kind

    got = _outcome(hub.search_plate, inv, demo.PURSUIT_PLATE, Reason("pursuit", payload), now=now)
    assert isinstance(got, HubError) and got.code in ("no_open_case", "too_long", "bad_characters")

    got = _outcome(
        hub.search_plate,
        inv,
        demo.PURSUIT_PLATE,
        Reason("pursuit", demo.PURSUIT_CASE_NO, payload),
        now=now,
    )
    if not isinstance(got, HubError):  # a harmless note changes nothing in the answer
        assert got.rows == env["baseline"].rows and got.pointers == env["baseline"].pointers

    got = _outcome(
        hub.request_access, env["officer"], owner_city="341100", level="sensitive",
        scope_kind="plate", scope_value=demo.PURSUIT_PLATE, reason=PURSUIT,
        justification=payload, now=now,
    )  # fmt: skip
    if not isinstance(got, HubError):  # stored as typed, as data
        with session_factory(env["engine"])() as s:
            assert s.get(AccessRequest, got).justification == payload.strip()

    # A name or password no store can hold (NUL, a lone surrogate) is refused at the
    # hub's boundary before any account is looked at.
    got = _outcome(hub.sign_in, payload, DEMO_PASSWORD, now=now)
    assert isinstance(got, HubError)
    assert got.code in ("bad_credentials", "too_long", "bad_characters"), got
    got = _outcome(hub.sign_in, TARGET, payload, now=now)
    assert isinstance(got, HubError)
    assert got.code in ("bad_credentials", "locked", "too_long", "bad_characters"), got


def test_store_is_intact_afterwards(env) -> None:
    engine = env["engine"]
    tables = set(inspect(engine).get_table_names())
    assert tables == env["tables"] and set(Base.metadata.tables) <= tables
    with session_factory(engine)() as s:
        result = audit.verify(s)
        assert result.ok, result.message()
        assert result.checked > len(PAYLOADS) * 9  # every attempt left its entry
        assert {u.username for u in s.scalars(select(User))} >= {"admin", "auditor", TARGET}
        assert s.scalar(select(User.role).where(User.username == "admin")) == "admin"
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
