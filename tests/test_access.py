"""Reasons, requests, grants, the two-approver race, break-glass, pointers and masking,
through the `Hub` services (which put the principal into the session) on both backends.

Each test works in its own demo day (`at(day=...)`) so that grants and alarms made by
one test are not in force in another; they share one writable seeded store per backend.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field, fields
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, event, func, select, text

from hub import demo
from hub.models import AccessRequest, Alarm, AuditEntry, Case, Grant, Person, Review, Sighting
from hub.security import access
from hub.security.errors import AccessDenied, HubError, InputError, RequestError
from hub.security.policy import DECISIONS, Outcome, Principal, base_outcome, relation
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from hub.validate import id_check_digit, make_id_number
from tests.conftest import ANCHOR, BACKENDS
from tests.security_support import at, principal, seeded_copy

PLATE, CASE_NO = demo.PURSUIT_PLATE, demo.PURSUIT_CASE_NO
HEFEI, CHUZHOU = demo.PURSUIT_FROM, demo.PURSUIT_TO
PURSUIT = Reason("pursuit", CASE_NO)
ID_1 = make_id_number("340102", date(1990, 3, 7), 123)
PHONE_1 = "13812345678"
ID_IN_NOTE = "340104199003071235"  # valid check digit


@dataclass
class Env:
    backend: str
    engine: Engine
    hub: Hub
    ids: dict = field(default_factory=dict)
    _who: dict = field(default_factory=dict)

    def who(self, username: str) -> Principal:
        if username not in self._who:
            self._who[username] = principal(self.engine, username)
        return self._who[username]

    def scalar(self, stmt):
        with session_factory(self.engine)() as s:
            return s.scalar(stmt)

    def count(self, model, *where) -> int:
        return self.scalar(select(func.count()).select_from(model).where(*where))

    def audit(self, *where, n: int = 1) -> list[AuditEntry]:
        with session_factory(self.engine)() as s:
            return list(
                s.scalars(select(AuditEntry).where(*where).order_by(AuditEntry.seq.desc()).limit(n))
            )

    def last_audit(self, username: str) -> AuditEntry:
        return self.audit(AuditEntry.username == username)[0]


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    hub = Hub(engine, load_settings())
    e = Env(request.param, engine, hub)
    cipher = hub.cipher
    with transaction(engine) as s:
        people = [
            ("sec-1", HEFEI, "340102", "internal", "欧阳一鸣", ID_1, PHONE_1),
            ("sec-2", HEFEI, "340103", "internal", "欧阳二丫", make_id_number("340103", date(1985, 1, 2), 8), "13900001111"),
            ("sec-3", CHUZHOU, "341102", "sensitive", "欧阳三思", make_id_number("341102", date(1970, 5, 6), 41), "13700002222"),
            ("sec-4", CHUZHOU, "341102", "secret", "欧阳四海", make_id_number("341102", date(1975, 5, 6), 51), "13600003333"),
        ]  # fmt: skip
        for source, city, district, level, name, idn, phone in people:
            p = Person(
                source_id=source, city_code=city, district_code=district, classification=level,
                name=name, id_enc=cipher.encrypt("id_number", idn),
                id_bidx=cipher.blind_index("id_number", idn), phone_enc=cipher.encrypt("phone", phone),
                phone_bidx=cipher.blind_index("phone", phone), key_id=cipher.key_id,
                address="瑶海区长江路1号",
            )  # fmt: skip
            s.add(p)
            s.flush()
            e.ids[source] = p.id
    yield e
    engine.dispose()


def _hidden_sighting_ids(env: Env, city: str, plate: str = PLATE) -> set[int]:
    with session_factory(env.engine)() as s:
        return set(
            s.scalars(
                select(Sighting.id).where(Sighting.plate == plate, Sighting.city_code == city)
            )
        )


def _pointer_counts(result) -> dict[tuple[str, str], tuple[int, Outcome]]:
    return {(p.city_code, p.level): (p.count, p.route) for p in result.pointers}


# --- pointers: hidden records never leave, they are counted -------------------------------


def test_hidden_sightings_become_pointers(env: Env) -> None:
    inv = env.who("investigator.hf")
    hefei, chuzhou = _hidden_sighting_ids(env, HEFEI), _hidden_sighting_ids(env, CHUZHOU)
    assert len(hefei) == 6 and len(chuzhou) == 3
    res = env.hub.search_plate(inv, PLATE, PURSUIT, now=at(day=0))
    assert {r["id"] for r in res.rows} == hefei
    assert not {r["id"] for r in res.rows} & chuzhou
    assert _pointer_counts(res) == {(CHUZHOU, "sensitive"): (3, Outcome.REQUEST_CITY)}
    [pointer] = res.pointers
    assert pointer.first_day is not None and pointer.first_day <= pointer.last_day
    entry = env.last_audit("investigator.hf")
    assert entry.action == "search" and entry.result_count == 6 and entry.decision == "ok"
    assert set(json.loads(entry.record_ids)) == {f"sightings:{i}" for i in hefei}
    assert entry.owner_cities == HEFEI
    assert json.loads(entry.detail)["pointers"] == 3


def test_officer_sees_only_pointers_for_sensitive_sightings(env: Env) -> None:
    res = env.hub.search_plate(env.who("officer.hf"), PLATE, PURSUIT, now=at(day=0))
    assert res.rows == []
    assert _pointer_counts(res) == {
        (HEFEI, "sensitive"): (6, Outcome.REQUEST_CITY),
        (CHUZHOU, "sensitive"): (3, Outcome.REQUEST_CITY),
    }
    entry = env.last_audit("officer.hf")
    assert entry.decision == "pointer" and entry.record_ids is None and entry.result_count == 0


def test_person_pointers_route_by_level(env: Env) -> None:
    res = env.hub.search_person(env.who("investigator.hf"), "name", "欧阳", PURSUIT, now=at(day=0))
    assert {r["id"] for r in res.rows} == {env.ids["sec-1"], env.ids["sec-2"]}
    # The one secret person of 滁州 gets no pointer: a single secret record is not shown
    # to exist at all (several would be a count, routed to the province).
    assert _pointer_counts(res) == {(CHUZHOU, "sensitive"): (1, Outcome.REQUEST_CITY)}
    assert "欧阳三思" not in json.dumps(res.rows, ensure_ascii=False, default=str)


def test_roles_without_records_are_refused_and_audited(env: Env) -> None:
    for username in ("auditor", "admin", "leader"):
        with pytest.raises(AccessDenied) as exc:
            env.hub.search_plate(env.who(username), PLATE, PURSUIT, now=at(day=0))
        assert exc.value.code == "role_no_records"
        entry = env.last_audit(username)
        assert (entry.action, entry.decision) == ("search_refused", "role_no_records")


def test_analyst_gets_no_pointer_where_the_answer_is_never(env: Env) -> None:
    """Sensitive sightings are "never" for analysts: counted in aggregates, not pointed to."""
    res = env.hub.search_plate(env.who("analyst"), PLATE, PURSUIT, now=at(day=0))
    assert res.rows == [] and res.pointers == []
    entry = env.last_audit("analyst")
    assert (entry.decision, entry.result_count, entry.detail) == ("ok", 0, None)


# --- reasons -----------------------------------------------------------------------------


def _closed_case(env: Env, city: str = HEFEI) -> str:
    return env.scalar(
        select(Case.case_no).where(Case.city_code == city, Case.status == "closed").limit(1)
    )


def _open_case(env: Env, city: str) -> str:
    return env.scalar(
        select(Case.case_no).where(Case.city_code == city, Case.status == "open").limit(1)
    )


BAD_REASONS = [
    ("unknown_purpose", lambda env: Reason("curiosity", CASE_NO)),
    ("no_open_case", lambda env: Reason("pursuit", _closed_case(env))),
    ("no_open_case", lambda env: Reason("pursuit", "A340100209999999")),
    ("case_other_city", lambda env: Reason("pursuit", _open_case(env, CHUZHOU))),
    ("note_has_identifier", lambda env: Reason("pursuit", CASE_NO, f"嫌疑人身份证{ID_IN_NOTE}")),
    ("note_has_identifier", lambda env: Reason("pursuit", CASE_NO, "联系人电话 138-1234-5678")),
    ("too_long", lambda env: Reason("pursuit", "A" * 33)),
    ("too_long", lambda env: Reason("pursuit", CASE_NO, "说明" * 251)),
]
BAD_IDS = [
    "unknown_purpose", "closed_case", "unknown_case", "other_city_case", "note_id",
    "note_phone", "long_case_no", "long_note",
]  # fmt: skip


@pytest.mark.parametrize(("code", "make"), BAD_REASONS, ids=BAD_IDS)
def test_bad_reasons_are_refused_audited_and_write_nothing(env: Env, code, make) -> None:
    inv = env.who("investigator.hf")
    reason = make(env)
    before = (env.count(AccessRequest), env.count(Grant), env.count(Review))
    with pytest.raises(HubError) as exc:
        env.hub.search_plate(inv, PLATE, reason, now=at(day=1))
    assert exc.value.code == code
    entry = env.last_audit("investigator.hf")
    assert (entry.action, entry.decision, entry.dataset) == ("search_refused", code, "sightings")
    with pytest.raises(HubError) as exc:
        env.hub.request_access(
            inv, owner_city=CHUZHOU, level="sensitive", scope_kind="plate", scope_value=PLATE,
            reason=reason, justification="追逃", now=at(day=1),
        )  # fmt: skip
    assert exc.value.code == code
    entry = env.last_audit("investigator.hf")
    assert (entry.action, entry.decision) == ("request_refused", code)
    with pytest.raises(HubError) as exc:
        env.hub.break_glass(
            inv, plate=PLATE, owner_city=CHUZHOU, reason=reason, justification="追逃", now=at(day=1)
        )
    assert exc.value.code == code
    assert env.last_audit("investigator.hf").action == "break_glass_refused"
    assert (env.count(AccessRequest), env.count(Grant), env.count(Review)) == before
    # what the note carried never reaches the log
    for e in env.audit(AuditEntry.username == "investigator.hf", n=3):
        assert ID_IN_NOTE not in str([getattr(e, c) for c in ("query", "detail", "case_no")])


@pytest.mark.parametrize(
    ("value", "code"),
    [("", "empty_query"), ("   ", "empty_query"), ("皖" * 65, "too_long"), ("ABC", "bad_plate")],
)
def test_bad_search_text(env: Env, value: str, code: str) -> None:
    with pytest.raises(InputError) as exc:
        env.hub.search_plate(env.who("investigator.hf"), value, PURSUIT, now=at(day=1))
    assert exc.value.code == code
    assert env.last_audit("investigator.hf").decision == code


# --- requests and grants -----------------------------------------------------------------


def _request(env: Env, username: str, *, now, owner=CHUZHOU, level="sensitive", kind="plate",
             value=PLATE, reason=PURSUIT, justification="嫌疑车辆已驶入滁州") -> int:  # fmt: skip
    return env.hub.request_access(
        env.who(username), owner_city=owner, level=level, scope_kind=kind, scope_value=value,
        reason=reason, justification=justification, now=now,
    )  # fmt: skip


def _refused(code: str, fn, *args, **kw) -> HubError:
    with pytest.raises(HubError) as exc:
        fn(*args, **kw)
    assert exc.value.code == code, exc.value
    return exc.value


def test_sensitive_request_goes_to_the_owning_city_and_grants_its_scope(env: Env) -> None:
    hub, t0 = env.hub, at(day=2)
    officer = env.who("officer.hf")
    rid = _request(env, "officer.hf", now=t0)
    req = env.scalar(select(AccessRequest).where(AccessRequest.id == rid))
    assert (req.route, req.status, req.urgent, req.owner_city) == (
        "city_approver",
        "pending",
        True,
        CHUZHOU,
    )
    assert rid in [r.id for r in hub.inbox(env.who("approver.cz"))]
    for other in ("approver.hf", "approver.wh", "province.approver"):
        assert rid not in [r.id for r in hub.inbox(env.who(other))]
        _refused(
            "not_your_request",
            hub.decide_request,
            env.who(other),
            rid,
            approve=True,
            note="ok",
            now=t0,
        )
        assert env.last_audit(other).action == "decide_refused"
    for role_user in ("investigator.cz", "commander.cz", "officer.cz"):
        _refused(
            "not_your_request",
            hub.decide_request,
            env.who(role_user),
            rid,
            approve=True,
            note="ok",
            now=t0,
        )
    _refused(
        "note_required",
        hub.decide_request,
        env.who("approver.cz"),
        rid,
        approve=True,
        note="  ",
        now=t0,
    )
    assert env.count(Grant, Grant.request_id == rid) == 0
    assert env.scalar(select(AccessRequest.status).where(AccessRequest.id == rid)) == "pending"

    assert (
        hub.decide_request(env.who("approver.cz"), rid, approve=True, note="同意，限本案", now=t0)
        == "approved"
    )
    grant = env.scalar(select(Grant).where(Grant.request_id == rid))
    assert (grant.user_id, grant.owner_city, grant.level, grant.scope_kind, grant.scope_value) == (
        officer.user_id, CHUZHOU, "sensitive", "plate", PLATE,
    )  # fmt: skip
    assert grant.expires_at - grant.granted_at == timedelta(hours=24)
    decision = env.last_audit("approver.cz")
    assert (decision.action, decision.decision, decision.grant_id) == (
        "decide",
        "approved",
        grant.id,
    )
    request_entry = env.audit(AuditEntry.action == "request", AuditEntry.username == "officer.hf")[
        0
    ]
    assert (
        request_entry.decision == "pending"
        and json.loads(request_entry.detail)["request_id"] == rid
    )

    # the grant opens the 滁州 sightings of this plate, unmasked; 合肥's stay pointers
    statements: list[str] = []
    listen = (hub.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    event.listen(*listen)
    try:
        res = hub.search_plate(officer, PLATE, PURSUIT, now=t0 + timedelta(hours=1))
    finally:
        event.remove(*listen)
    assert {r["id"] for r in res.rows} == _hidden_sighting_ids(env, CHUZHOU)
    assert len(res.rows) > 1
    attribution = [q for q in statements if q.lstrip().startswith("SELECT sightings.id")]
    assert len(attribution) == 1, "one query finds the grant of every row it opened"
    assert all(r["plate"] == PLATE for r in res.rows)
    assert _pointer_counts(res) == {(HEFEI, "sensitive"): (6, Outcome.REQUEST_CITY)}
    assert res.grants_used == (grant.id,)
    use = env.last_audit("officer.hf")
    assert (use.action, use.grant_id) == ("search", grant.id)

    # only its scope: another plate's 滁州 sightings stay pointers
    other = env.scalar(
        select(Sighting.plate)
        .where(Sighting.city_code == CHUZHOU, Sighting.plate != PLATE)
        .limit(1)
    )
    res = hub.search_plate(officer, other, PURSUIT, now=t0 + timedelta(hours=1))
    assert res.rows == [] and res.grants_used == ()
    assert (CHUZHOU, "sensitive") in _pointer_counts(res)

    # and only until it expires
    res = hub.search_plate(officer, PLATE, PURSUIT, now=t0 + timedelta(hours=24, seconds=1))
    assert res.rows == [] and (CHUZHOU, "sensitive") in _pointer_counts(res)

    # decided once: a second decision is refused with the first one named
    err = _refused(
        "already_decided",
        hub.decide_request,
        env.who("approver.cz"),
        rid,
        approve=False,
        note="再议",
        now=t0,
    )
    assert err.params["status"] == "approved"
    assert env.count(Grant, Grant.request_id == rid) == 1


def test_a_grant_decided_in_the_past_has_expired(env: Env) -> None:
    t0 = at(day=5)
    rid = _request(env, "officer.hf", now=t0 - timedelta(hours=49))
    env.hub.decide_request(
        env.who("approver.cz"), rid, approve=True, note="同意", now=t0 - timedelta(hours=48)
    )
    res = env.hub.search_plate(env.who("officer.hf"), PLATE, PURSUIT, now=t0)
    assert res.rows == [] and res.grants_used == ()
    assert (CHUZHOU, "sensitive") in _pointer_counts(res)


def test_denied_request_grants_nothing(env: Env) -> None:
    rid = _request(env, "investigator.hf", now=at(day=3))
    assert (
        env.hub.decide_request(
            env.who("approver.cz"), rid, approve=False, note="理由不足", now=at(day=3)
        )
        == "denied"
    )
    assert env.count(Grant, Grant.request_id == rid) == 0
    assert env.last_audit("approver.cz").decision == "denied"
    view = [r for r in env.hub.my_requests(env.who("investigator.hf")) if r.id == rid][0]
    assert (view.status, view.decision_note) == ("denied", "理由不足")


def test_secret_requests_go_to_a_province_approver(env: Env) -> None:
    hub, t0 = env.hub, at(day=6)
    inv = env.who("investigator.hf")
    person = str(env.ids["sec-4"])
    rid = _request(env, "investigator.hf", now=t0, level="secret", kind="person", value=person)
    assert (
        env.scalar(select(AccessRequest.route).where(AccessRequest.id == rid))
        == "province_approver"
    )
    assert rid not in [r.id for r in hub.inbox(env.who("approver.cz"))]
    assert rid in [r.id for r in hub.inbox(env.who("province.approver"))]
    _refused(
        "not_your_request",
        hub.decide_request,
        env.who("approver.cz"),
        rid,
        approve=True,
        note="ok",
        now=t0,
    )
    assert (
        hub.decide_request(env.who("province.approver"), rid, approve=True, note="同意", now=t0)
        == "approved"
    )
    res = hub.search_person(inv, "name", "欧阳四海", PURSUIT, now=t0 + timedelta(minutes=5))
    assert [r["id"] for r in res.rows] == [env.ids["sec-4"]]
    assert res.rows[0]["id_number"] and "*" not in res.rows[0]["id_number"]
    assert res.grants_used and env.last_audit("investigator.hf").grant_id == res.grants_used[0]
    # the other secret person, and the sensitive one of 滁州, are not in the grant's scope
    res = hub.search_person(inv, "name", "欧阳三思", PURSUIT, now=t0 + timedelta(minutes=5))
    assert res.rows == [] and res.pointers


def test_nobody_approves_their_own_request(env: Env) -> None:
    hub, t0 = env.hub, at(day=7)
    # a province approver asks for secret records: another province approver decides
    rid = _request(env, "province.approver", now=t0, level="secret")
    _refused(
        "self_approval",
        hub.decide_request,
        env.who("province.approver"),
        rid,
        approve=True,
        note="自批",
        now=t0,
    )
    assert env.last_audit("province.approver").decision == "self_approval"
    assert rid not in [r.id for r in hub.inbox(env.who("province.approver"))]
    assert (
        hub.decide_request(env.who("province.approver2"), rid, approve=True, note="同意", now=t0)
        == "approved"
    )
    # a city approver's request to another city is not theirs to decide either
    rid = _request(env, "approver.hf", now=t0)
    _refused(
        "self_approval",
        hub.decide_request,
        env.who("approver.hf"),
        rid,
        approve=True,
        note="自批",
        now=t0,
    )
    assert env.count(Grant, Grant.request_id == rid) == 0


@pytest.mark.parametrize(
    ("username", "overrides", "code"),
    [
        ("analyst", {}, "role_cannot_request"),
        ("auditor", {}, "role_cannot_request"),
        ("admin", {}, "role_cannot_request"),
        ("officer.hf", {"level": "public"}, "bad_level"),
        ("officer.hf", {"level": "top"}, "bad_level"),
        ("officer.hf", {"owner": "999999"}, "unknown_city"),
        ("officer.hf", {"justification": "  "}, "justification_required"),
        ("officer.hf", {"justification": "因" * 1001}, "too_long"),
        ("officer.hf", {"kind": "everything"}, "bad_scope"),
        ("officer.hf", {"value": "not a plate"}, "bad_plate"),
        ("officer.hf", {"kind": "person", "value": "张三"}, "bad_scope"),
        # own-city records the role already opens need no request
        ("investigator.hf", {"owner": HEFEI}, "already_covered"),
        ("province.approver", {"owner": CHUZHOU}, "already_covered"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(env: Env, username, overrides, code) -> None:
    before = (env.count(AccessRequest), env.count(Grant))
    kw = {"now": at(day=3), **overrides}
    _refused(code, _request, env, username, **kw)
    assert (env.count(AccessRequest), env.count(Grant)) == before
    assert env.last_audit(username).action == "request_refused"


# --- two approvers at once -----------------------------------------------------------------


def _secret_request(env: Env, day: int) -> int:
    return _request(env, "investigator.hf", now=at(day=day), level="secret", owner=CHUZHOU)


def test_two_approvers_sequentially(env: Env) -> None:
    rid = _secret_request(env, 10)
    a, b = env.who("province.approver"), env.who("province.approver2")
    assert env.hub.decide_request(a, rid, approve=True, note="同意", now=at(day=10)) == "approved"
    err = _refused(
        "already_decided",
        env.hub.decide_request,
        b,
        rid,
        approve=False,
        note="不同意",
        now=at(day=10),
    )
    assert err.params["status"] == "approved" and err.params["by"] == a.display_name
    assert env.count(Grant, Grant.request_id == rid) == 1
    assert env.last_audit(b.username).decision == "already_decided"


def _wait_for_lock_wait(env: Env, timeout: float = 10.0) -> None:
    with env.engine.connect() as conn:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second approver's update never waited for the first one's lock")


def test_two_approvers_at_once_on_postgresql(env: Env) -> None:
    """Two connections load the same pending request; A decides and holds its
    transaction open; B's decision blocks on the row, then finds it decided."""
    if env.backend != "postgresql":
        pytest.skip("row locks between two connections: PostgreSQL")
    rid = _secret_request(env, 11)
    now = at(day=11)
    a, b = env.who("province.approver"), env.who("province.approver2")
    factory = session_factory(env.engine)
    with factory() as sa, factory() as sb:
        assert sa.get(AccessRequest, rid).status == sb.get(AccessRequest, rid).status == "pending"
        access.decide_request(sa, a, rid, approve=True, note="同意", now=now)  # not committed yet
        outcome: dict = {}

        def second() -> None:
            try:
                outcome["status"] = access.decide_request(
                    sb, b, rid, approve=True, note="也同意", now=now
                ).status
            except HubError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=second)
        thread.start()
        _wait_for_lock_wait(env)
        assert thread.is_alive()
        sa.commit()
        thread.join(20)
        assert not thread.is_alive()
        sb.rollback()
    assert "status" not in outcome
    err = outcome["error"]
    assert isinstance(err, RequestError) and err.code == "already_decided"
    assert err.params["status"] == "approved" and err.params["by"] == a.display_name
    assert env.count(Grant, Grant.request_id == rid) == 1
    req = env.scalar(select(AccessRequest).where(AccessRequest.id == rid))
    assert (req.status, req.decided_by, req.decision_note) == ("approved", a.user_id, "同意")


def test_two_approvers_race_through_the_service(env: Env) -> None:
    """Both decide at the same moment from two threads: exactly one decision stands."""
    rid = _secret_request(env, 12)
    approvers = [env.who("province.approver"), env.who("province.approver2")]
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def decide(p: Principal) -> None:
        barrier.wait()
        try:
            results[p.username] = env.hub.decide_request(
                p, rid, approve=True, note="同意", now=at(day=12)
            )
        except HubError as exc:
            results[p.username] = exc

    threads = [threading.Thread(target=decide, args=(p,)) for p in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    outcomes = sorted(results.values(), key=lambda r: isinstance(r, HubError))
    assert len(outcomes) == 2
    assert outcomes[0] == "approved"
    assert isinstance(outcomes[1], RequestError) and outcomes[1].code == "already_decided"
    assert env.count(Grant, Grant.request_id == rid) == 1
    assert (
        env.count(
            AuditEntry,
            AuditEntry.action == "decide_refused",
            AuditEntry.decision == "already_decided",
        )
        >= 1
    )


# --- break-glass -------------------------------------------------------------------------


def test_break_glass(env: Env) -> None:
    hub, t0 = env.hub, at(day=8)
    inv = env.who("investigator.hf")
    kw = {
        "plate": PLATE,
        "owner_city": CHUZHOU,
        "reason": PURSUIT,
        "justification": "追逃：嫌疑车辆驶入滁州",
    }
    glass_before = env.count(Grant, Grant.kind == "break_glass")
    for username in ("officer.hf", "approver.hf", "commander.hf", "province.approver", "analyst"):
        _refused("role_cannot_break_glass", hub.break_glass, env.who(username), now=t0, **kw)
    _refused("break_glass_own_city", hub.break_glass, inv, now=t0, **{**kw, "owner_city": HEFEI})
    _refused("justification_required", hub.break_glass, inv, now=t0, **{**kw, "justification": " "})
    _refused("too_long", hub.break_glass, inv, now=t0, **{**kw, "justification": "因" * 1001})
    _refused("bad_plate", hub.break_glass, inv, now=t0, **{**kw, "plate": "x"})
    assert env.count(Grant, Grant.kind == "break_glass") == glass_before

    gid = hub.break_glass(inv, now=t0, **kw)
    grant = env.scalar(select(Grant).where(Grant.id == gid))
    assert (grant.kind, grant.user_id, grant.owner_city, grant.level, grant.scope_value) == (
        "break_glass", inv.user_id, CHUZHOU, "sensitive", PLATE,
    )  # fmt: skip
    assert grant.expires_at - grant.granted_at == timedelta(hours=2)
    review = env.scalar(select(Review).where(Review.grant_id == gid))
    assert (review.city_code, review.kind, review.status) == (CHUZHOU, "break_glass", "open")
    entry = env.last_audit("investigator.hf")
    assert (entry.action, entry.grant_id, entry.owner_cities) == ("break_glass", gid, CHUZHOU)
    alarm = env.scalar(
        select(Alarm).where(Alarm.audit_seq == entry.seq, Alarm.rule == "break_glass")
    )
    assert alarm is not None and alarm.user_id == inv.user_id and alarm.severity == "high"

    res = hub.search_plate(inv, PLATE, PURSUIT, now=t0 + timedelta(minutes=10))
    assert {r["id"] for r in res.rows} == _hidden_sighting_ids(env, HEFEI) | _hidden_sighting_ids(
        env, CHUZHOU
    )
    assert res.pointers == [] and res.grants_used == (gid,)
    assert env.last_audit("investigator.hf").grant_id == gid
    # the owning city sees the access in its owner view
    later = hub.search_plate(inv, PLATE, PURSUIT, now=t0 + timedelta(hours=2, minutes=1))
    assert _pointer_counts(later) == {(CHUZHOU, "sensitive"): (3, Outcome.REQUEST_CITY)}


# --- masking through the services ----------------------------------------------------------

ID_MASK = re.compile(r"^\d{6}\*{8}\d{3}[\dX]$")
PHONE_MASK = re.compile(r"^1\d{2}\*{4}\d{4}$")


def test_officer_sees_masked_identifiers(env: Env) -> None:
    res = env.hub.search_person(env.who("officer.hf"), "name", "欧阳", PURSUIT, now=at(day=0))
    # own district internal opens; another district's internal and 滁州's are pointers
    assert [r["id"] for r in res.rows] == [env.ids["sec-1"]]
    [row] = res.rows
    assert row["id_number"] == ID_1[:6] + "********" + ID_1[-4:] and ID_MASK.match(row["id_number"])
    assert row["phone"] == "138****5678" and PHONE_MASK.match(row["phone"])
    assert row["name"] == "欧阳一鸣"
    assert ID_1 not in json.dumps(res.rows, default=str) and PHONE_1 not in json.dumps(
        res.rows, default=str
    )
    assert (HEFEI, "internal") in _pointer_counts(res)


def test_analyst_sees_names_masked_too(env: Env) -> None:
    # the full name: a masked kind is searched whole (a prefix would spell the mask out)
    res = env.hub.search_person(env.who("analyst"), "name", "欧阳一鸣", PURSUIT, now=at(day=0))
    rows = {r["id"]: r for r in res.rows}
    assert set(rows) == {env.ids["sec-1"]}
    row = rows[env.ids["sec-1"]]
    assert "*" in row["name"] and row["name"] != "欧阳一鸣" and row["name"][0] == "欧"
    assert ID_MASK.match(row["id_number"]) and PHONE_MASK.match(row["phone"])


def test_investigator_of_the_city_sees_clear_values(env: Env) -> None:
    res = env.hub.search_person(
        env.who("investigator.hf"), "name", "欧阳一", PURSUIT, now=at(day=0)
    )
    [row] = res.rows
    assert (row["id_number"], row["phone"], row["name"]) == (ID_1, PHONE_1, "欧阳一鸣")


@pytest.mark.parametrize(
    ("kind", "typed", "plain"),
    [
        ("id_number", ID_1, ID_1),
        ("id_number", f"{ID_1[:6]} {ID_1[6:14]} {ID_1[14:]}", ID_1),
        ("phone", "138-1234-5678", PHONE_1),
        ("phone", "+86 13812345678", PHONE_1),
    ],
)
def test_identifier_search_uses_the_blind_index(env: Env, kind, typed, plain) -> None:
    res = env.hub.search_person(env.who("investigator.hf"), kind, typed, PURSUIT, now=at(day=0))
    assert [r["id"] for r in res.rows] == [env.ids["sec-1"]]
    entry = env.last_audit("investigator.hf")
    assert json.loads(entry.query) == {
        "kind": kind,
        "value": env.hub.cipher.blind_index(kind, plain),
    }
    for column in ("query", "detail", "record_ids", "case_no", "purpose"):
        value = getattr(entry, column) or ""
        assert plain not in value and plain[-8:] not in value, column
    # a near miss is not a match: exact only
    near = plain[:-1] + ("0" if plain[-1] != "0" else "1")
    if kind == "phone":
        assert (
            env.hub.search_person(
                env.who("investigator.hf"), kind, near, PURSUIT, now=at(day=0)
            ).rows
            == []
        )


@pytest.mark.parametrize(
    ("kind", "typed", "code"),
    [
        ("id_number", ID_1[:-1] + ("0" if ID_1[-1] != "0" else "1"), "bad_id_number"),
        ("phone", "1381234567", "bad_phone"),
    ],
)
def test_refused_identifier_search_keeps_the_number_out_of_the_log(
    env: Env, kind, typed, code
) -> None:
    _refused(
        code, env.hub.search_person, env.who("investigator.hf"), kind, typed, PURSUIT, now=at(day=0)
    )
    entry = env.last_audit("investigator.hf")
    assert (entry.action, entry.decision) == ("search_refused", code)
    for column in ("query", "detail", "record_ids", "case_no"):
        value = getattr(entry, column) or ""
        assert typed not in value and typed[-8:] not in value, (column, value)


# --- the access matrix: every demo user × every service that returns records ------------
# Issue 14: a mask that the same row cannot undo (item 1), pointers that say no more than
# they should (item 4), rejected feed rows are records (item 5). Every demo account (each
# role, in each of its cities) runs every record service over the whole demo; every row
# and every pointer it gets back is checked.

MATRIX_DAY = 25  # later than every grant the tests above make, so none is in force
RECORD_USERS = tuple(
    u for u, _, role, *_ in demo.DEMO_USERS
    if any(o.opens for levels in DECISIONS[role].values() for o in levels.values())
)  # fmt: skip
POINTER_FIELDS = {"dataset", "city_code", "level", "count", "route", "first_day", "last_day"}
PERSON_SHOWN = re.compile(r"(\d{4}|\*{4})-(\d{2}|\*{2})-(\d{2}|\*{2})")


@dataclass(frozen=True)
class Answer:
    service: str
    dataset: str
    rows: list
    pointers: list


def _reason_for(env: Env, who: Principal) -> Reason:
    if who.city_code == HEFEI or who.role == "province_approver":
        return PURSUIT
    return Reason("pursuit", _open_case(env, who.city_code))


def _days_shown(shown) -> list[date] | None:
    """Every birth date consistent with what a row shows (None: it shows nothing)."""
    if shown is None:
        return None
    if isinstance(shown, date):
        return [shown]
    m = PERSON_SHOWN.fullmatch(str(shown))
    assert m, f"birth date shown as {shown!r}"
    years = [int(m[1])] if "*" not in m[1] else range(1900, 2031)
    out = []
    for y in years:
        d = date(y, 1, 1)
        while d.year == y:
            if ("*" in m[2] or d.month == int(m[2])) and ("*" in m[3] or d.day == int(m[3])):
                out.append(d)
            d += timedelta(days=1)
    return out


def id_candidates(row: dict) -> set[str] | None:
    """Every valid ID number consistent with all the fields a person row shows: the kept
    characters of the masked number, the birth date beside it, and the check digit."""
    masked = row["id_number"]
    days = _days_shown(row.get("birth_date"))
    if days is None:
        return None
    region, tail = masked[:6], masked[-4:]
    if row.get("sex") is not None:  # the 17th character is kept: sex adds no constraint
        assert row["sex"] == ("M" if int(tail[2]) % 2 else "F")
    return {
        n17 + tail[3]
        for d in days
        if id_check_digit(n17 := f"{region}{d:%Y%m%d}{tail[:3]}") == tail[3]
    }


@pytest.fixture(scope="module")
def stored_ids(env: Env) -> dict[int, str]:
    cipher = env.hub.cipher
    with session_factory(env.engine)() as s:
        rows = s.execute(select(Person.id, Person.id_enc, Person.key_id)).all()
    return {pid: cipher.decrypt("id_number", enc, key) for pid, enc, key in rows if enc}


@pytest.fixture(scope="module")
def matrix(env: Env) -> dict[str, list[Answer]]:
    """Each record user's answers from every record service, over the whole demo."""
    hub, now = env.hub, at(day=MATRIX_DAY)
    with session_factory(env.engine)() as s:
        initials = sorted({n[0] for n in s.scalars(select(Person.name))})
        pursuit_case = s.scalar(select(Case.id).where(Case.case_no == CASE_NO))
        subject = s.scalar(
            select(Person.id).where(Person.city_code == HEFEI, Person.classification == "sensitive")
            .order_by(Person.id).limit(1)
        )  # fmt: skip
    assist_id = hub.create_assist(
        env.who("investigator.hf"), case_no=CASE_NO, subject_kind="person", subject_id=subject,
        asked="请协查此人近期行踪", to_cities="all", now=now,
    )  # fmt: skip
    out: dict[str, list[Answer]] = {}
    for username in RECORD_USERS:
        who = env.who(username)
        reason = _reason_for(env, who)
        got = [
            Answer("search_person", "persons", r.rows, r.pointers)
            for r in (hub.search_person(who, "name", c, reason, now=now) for c in initials)
        ]
        for service, res in (
            ("search_text", hub.search_text(who, "合成", reason, now=now)),
            ("search_plate", hub.search_plate(who, PLATE, reason, now=now)),
            ("search_case", hub.search_case(who, "合成", reason, now=now)),
        ):
            got.append(Answer(service, res.dataset, res.rows, res.pointers))
        views = [("view_record", hub.view_record(who, "cases", pursuit_case, reason, now=now))]
        if who.role in ("investigator", "commander"):
            views.append(("assist_subject", hub.assist_subject(who, assist_id, reason, now=now)))
        for service, view in views:
            for res in (view.record, *view.links.values()):
                got.append(Answer(service, res.dataset, res.rows, res.pointers))
        tr = hub.plate_trajectory(who, PLATE, ANCHOR - timedelta(days=30), ANCHOR, reason, now=now)
        got.append(Answer("plate_trajectory", "sightings", tr.points, tr.pointers))
        out[username] = got
    return out


def test_matrix_masked_id_numbers_cannot_be_rebuilt_from_the_row(
    matrix: dict[str, list[Answer]], stored_ids: dict[int, str]
) -> None:
    """Item 1: for every user who is shown a masked ID number, no combination of the
    fields of that row rebuilds the stored number (the birth date is the masked middle)."""
    masked_rows = 0
    fewest = None
    seen_by: set[str] = set()
    for username, answers in matrix.items():
        for a in answers:
            for row in a.rows if a.dataset == "persons" else ():
                shown, stored = row["id_number"], stored_ids.get(row["id"])
                if shown is None or "*" not in shown:
                    assert shown == stored  # clear: the viewer may see it anyway
                    continue
                masked_rows += 1
                seen_by.add(username)
                assert stored not in json.dumps(row, ensure_ascii=False, default=str)
                assert stored[6:14] not in json.dumps(row, default=str).replace("-", "")
                candidates = id_candidates(row)
                assert candidates is None or stored in candidates, (username, row)
                n = len(candidates) if candidates is not None else 10**6
                assert n > 1, f"{username} rebuilds person {row['id']}'s ID number"
                fewest = n if fewest is None else min(fewest, n)
    # Officers (without a grant) and the analyst see masked numbers: the check ran on both.
    assert {"officer.hf", "analyst"} <= seen_by
    assert masked_rows > 50 and fewest is not None and fewest >= 10


def test_matrix_pointers_say_no_more_than_they_should(env: Env, matrix) -> None:
    """Item 4: a pointer carries counts, owner city, level, route and days (never times);
    no days for secret records, none for a single secret record; no pointer at all where the
    viewer's outcome is never."""
    secret_groups = 0
    for username, answers in matrix.items():
        who = env.who(username)
        for a in answers:
            for p in a.pointers:
                assert {f.name for f in fields(p)} == POINTER_FIELDS
                assert p.route.requestable, (username, a.service, p)
                assert base_outcome(who.role, p.level, relation(who, p.city_code, None)) == p.route
                assert p.count >= 1
                for day in (p.first_day, p.last_day):
                    assert day is None or (type(day) is date), (a.service, p)
                if p.level == "secret":
                    assert (p.first_day, p.last_day) == (None, None), (username, a.service, p)
                    assert p.count > 1, (username, a.service, p)
                    secret_groups += 1
                elif a.dataset in ("sightings", "incidents", "help_requests"):
                    assert p.first_day is not None and p.first_day <= p.last_day
    # The demo's text search meets groups of secret incidents: counted, without days.
    assert secret_groups > 0
    assert all(not a.pointers for a in matrix["analyst"])


def test_matrix_analyst_search_is_silent_about_what_it_may_never_open(env: Env) -> None:
    """Item 4: the analyst's text search over every incident opens the public and internal
    ones and says nothing of the sensitive and secret ones, not even that they matched."""
    res = env.hub.search_text(env.who("analyst"), "合成", PURSUIT, now=at(day=MATRIX_DAY))
    assert res.rows and {r["classification"] for r in res.rows} <= {"public", "internal"}
    assert res.pointers == []


def test_matrix_map_layers_and_exports_carry_no_personal_fields(env: Env, stored_ids) -> None:
    """The situation map's features (and so its tooltips) and the analyst's export hold
    no personal field and no identifier, for every user allowed to see them."""
    from hub import analytics
    from hub import situation as sit

    personal = {"id_number", "phone", "birth_date", "sex", "summary", "address", "note"}
    query = sit.SituationQuery(ANCHOR - timedelta(days=7), ANCHOR, layers=frozenset(sit.LAYERS))
    for username in RECORD_USERS:
        who = env.who(username)
        if who.role not in sit.SITUATION_ROLES:
            continue
        view = env.hub.situation(who, query, now=at(day=MATRIX_DAY))
        for frame in (view.points, view.cameras, view.risk_zones, view.help_requests, view.units):
            if frame is not None:
                assert not personal & set(frame.columns), (username, list(frame.columns))
    export = env.hub.export_exploration(
        env.who("analyst"), analytics.ExploreQuery(ANCHOR - timedelta(days=30), ANCHOR), "csv",
        now=at(day=MATRIX_DAY),
    )  # fmt: skip
    content = export.data.decode("utf-8-sig", errors="replace")
    assert not any(n in content for n in stored_ids.values())


def test_matrix_admin_reads_no_rejected_row_in_clear(env: Env) -> None:
    """Item 5: rejected feed rows are records; the admin, who opens no records, runs the
    feeds but reads neither names, addresses, ID numbers nor phones of rejected rows."""
    admin = env.who("admin")
    name, idn, phone, address = (
        "（合成）驳回测试人",
        "340302199211014305",
        "13849482548",
        "蚌山区驳回路9号",
    )
    data = (
        f"姓名;性别;出生日期;身份证号;联系电话;住址\n{name};未知;19921101;{idn};{phone};{address}\n"
    ).encode()
    report = env.hub.ingest_feed(
        admin, city="340300", spec_name="bengbu_persons_nokey", filename="rejects.csv", data=data
    )
    assert report.batch_id
    shown = env.hub.feed_rejects(admin, report.batch_id)
    assert len(shown) == 1
    texts = [
        shown.to_csv(index=False),
        env.hub.reject_file(admin, report.batch_id).decode("utf-8-sig"),
    ]
    for shown_text in texts:
        for secret in (name, idn, idn[6:14], phone, address):
            assert secret not in shown_text, secret


def test_identifiers_sealed_in_narratives_are_revealed_by_the_viewers_masks(env: Env) -> None:
    """A phone sealed into a narrative at ingest comes back masked for whoever sees the
    structured phone masked, and in clear for whoever sees it clear."""
    from hub.models import Incident
    from hub.security.narrative import seal

    phone = "13912345678"
    with transaction(env.engine) as s:
        incident = s.scalars(
            select(Incident).where(
                Incident.city_code == HEFEI, Incident.district_code == "340102",
                Incident.classification == "internal",
            ).limit(1)
        ).one()  # fmt: skip
        incident.summary = seal(f"（合成）封存测试，联系电话{phone}，已派员处置。", env.hub.cipher)
        assert phone not in incident.summary
    now = at(day=MATRIX_DAY)
    shown = {
        username: {r["id"]: r["summary"] for r in env.hub.search_text(
            env.who(username), "封存测试", PURSUIT, now=now).rows}[incident.id]
        for username in ("officer.hf", "analyst", "investigator.hf")
    }  # fmt: skip
    assert "联系电话139****5678" in shown["officer.hf"] and phone not in shown["officer.hf"]
    assert "联系电话139****5678" in shown["analyst"]
    assert f"联系电话{phone}" in shown["investigator.hf"]
