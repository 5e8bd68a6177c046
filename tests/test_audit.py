"""The audit trail, its append-only triggers and tamper detection, sign-in with lockout,
and the alarm rules, on both backends.

Tests that use the shared writable store work in demo days of their own (`at(day=...)`)
and with users of their own, so that the alarm windows of one do not reach another.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from hub import demo
from hub.models import Alarm, AuditEntry, AuditHead, Grant
from hub.security import audit
from hub.security.errors import AccessDenied, HubError, InputError, SignInError
from hub.security.identity import DEMO_PASSWORD, add_demo_user
from hub.security.policy import Principal
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS
from tests.security_support import at, empty_store, principal, seeded_copy

ROOT = Path(__file__).resolve().parents[1]
PURSUIT = Reason("pursuit", demo.PURSUIT_CASE_NO)


class Env:
    def __init__(self, backend: str, engine: Engine) -> None:
        self.backend, self.engine = backend, engine
        self.hub = Hub(engine, load_settings())
        self._who: dict[str, Principal] = {}

    def who(self, username: str) -> Principal:
        if username not in self._who:
            self._who[username] = principal(self.engine, username)
        return self._who[username]

    def entries(self, *where, n: int = 1) -> list[AuditEntry]:
        with session_factory(self.engine)() as s:
            q = select(AuditEntry).where(*where).order_by(AuditEntry.seq.desc()).limit(n)
            return list(s.scalars(q))

    def alarms(self, rule: str, username: str, since) -> list[Alarm]:
        with session_factory(self.engine)() as s:
            return list(
                s.scalars(
                    select(Alarm)
                    .where(
                        Alarm.rule == rule,
                        Alarm.user_id == self.who(username).user_id,
                        Alarm.ts >= since,
                    )
                    .order_by(Alarm.id)
                )
            )

    def verify(self) -> audit.Verification:
        with session_factory(self.engine)() as s:
            return audit.verify(s)


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    with transaction(engine) as s:
        for name in ("signin.lock", "signin.reset", "signin.same"):
            add_demo_user(s, username=name, display_name=name, role="officer",
                          city_code="340100", district_code="340102", now=at(day=-5))  # fmt: skip
    yield Env(request.param, engine)
    engine.dispose()


def _cli_verify(engine: Engine) -> subprocess.CompletedProcess:
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "hub", "audit", "verify", "--db", url],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


# --- what is audited -----------------------------------------------------------------------


def test_actions_are_audited_with_their_fields(env: Env) -> None:
    hub, t0 = env.hub, at(day=30)
    inv = hub.sign_in("investigator.hf", DEMO_PASSWORD, now=t0)
    ok = env.entries(AuditEntry.username == "investigator.hf")[0]
    assert (ok.action, ok.decision, ok.user_id, ok.role, ok.city_code) == (
        "sign_in", "ok", inv.user_id, "investigator", "340100",
    )  # fmt: skip
    with pytest.raises(SignInError):
        hub.sign_in("investigator.hf", "wrong-password", now=t0)
    assert env.entries(AuditEntry.username == "investigator.hf")[0].decision == "failed"

    res = hub.search_plate(inv, demo.PURSUIT_PLATE, PURSUIT, now=t0 + timedelta(minutes=1))
    search = env.entries(AuditEntry.username == "investigator.hf")[0]
    assert (search.action, search.dataset, search.purpose, search.case_no) == (
        "search", "sightings", "pursuit", demo.PURSUIT_CASE_NO,
    )  # fmt: skip
    assert json.loads(search.query) == {"kind": "plate", "value": demo.PURSUIT_PLATE}
    assert search.result_count == len(res.rows) and search.grant_id is None

    rid = hub.request_access(
        inv, owner_city="341100", level="sensitive", scope_kind="plate",
        scope_value=demo.PURSUIT_PLATE, reason=PURSUIT, justification="嫌疑车辆进入滁州",
        now=t0 + timedelta(minutes=2),
    )  # fmt: skip
    req = env.entries(AuditEntry.username == "investigator.hf")[0]
    assert (req.action, req.decision, req.owner_cities) == ("request", "pending", "341100")
    hub.decide_request(
        env.who("approver.cz"), rid, approve=True, note="同意", now=t0 + timedelta(minutes=3)
    )
    decision = env.entries(AuditEntry.username == "approver.cz")[0]
    with session_factory(env.engine)() as s:
        grant_id = s.scalar(select(Grant.id).where(Grant.request_id == rid))
    assert (decision.action, decision.decision, decision.grant_id) == (
        "decide",
        "approved",
        grant_id,
    )

    hub.search_plate(inv, demo.PURSUIT_PLATE, PURSUIT, now=t0 + timedelta(minutes=4))
    use = env.entries(AuditEntry.username == "investigator.hf")[0]
    assert (use.action, use.grant_id) == ("search", grant_id)
    assert "341100" in use.owner_cities.split(",")
    assert env.verify().ok


def test_every_refusal_code_fits_the_audit_log() -> None:
    """Refusals are audited with their code as the decision: every code must fit."""
    source = "\n".join(p.read_text() for p in (ROOT / "hub").rglob("*.py"))
    codes = set(re.findall(r"(?:Error|Denied)\(\s*\"([a-z_]+)\"", source))
    assert {"role_cannot_break_glass", "self_approval", "already_decided"} <= codes
    width = AuditEntry.__table__.c.decision.type.length
    assert [c for c in codes if len(c) > width] == []


# --- the chain and the append-only table -----------------------------------------------------


def test_chain_verifies_and_cli_says_so(env: Env) -> None:
    result = env.verify()
    assert result.ok and result.checked > 0 and result.first_broken_seq is None
    with session_factory(env.engine)() as s:
        assert s.get(AuditHead, 1).seq == result.checked
    done = _cli_verify(env.engine)
    assert done.returncode == 0, done.stderr
    assert "审计链完整" in done.stdout  # the CLI speaks Chinese by default


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_log SET result_count = 99 WHERE seq = 1",
        "UPDATE audit_log SET decision = 'ok'",
        "DELETE FROM audit_log WHERE seq = 1",
        "DELETE FROM audit_log",
    ],
)
def test_audit_log_refuses_update_and_delete(env: Env, sql: str) -> None:
    before = env.verify()
    with pytest.raises(DBAPIError, match="append-only"), env.engine.begin() as conn:
        conn.execute(text(sql))
    assert env.verify() == before


def test_audit_log_refuses_truncate_on_postgresql(env: Env) -> None:
    if env.backend != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    with pytest.raises(DBAPIError, match="append-only"), env.engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_log"))
    assert env.verify().ok


def _drop_triggers(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_tampering_is_detected_and_named(backend: str, tmp_path) -> None:
    engine = empty_store(backend, tmp_path)
    try:
        user = Principal(1, "someone", "Someone", "investigator", "340100")
        with transaction(engine) as s:
            for i in range(6):
                audit.record(s, user if i % 2 else None, "sign_in", username="x", now=at(minutes=i),
                             result_count=i, decision="ok")  # fmt: skip
        _drop_triggers(engine)

        def change(sql: str) -> None:
            with engine.begin() as conn:
                conn.execute(text(sql))

        def check():
            with session_factory(engine)() as s:
                return audit.verify(s)

        # one entry's content changed in place
        change("UPDATE audit_log SET result_count = 7 WHERE seq = 3")
        result = check()
        assert (result.ok, result.first_broken_seq, result.checked) == (False, 3, 2)
        done = _cli_verify(engine)
        assert done.returncode == 1
        assert "第 3 条" in done.stderr + done.stdout, done.stderr
        # rehashing the changed entry moves the break to the next link, it does not hide it
        with session_factory(engine)() as s:
            third = s.scalar(select(AuditEntry).where(AuditEntry.seq == 3))
            rehashed = audit.entry_hash(third.prev_hash, third)
        change(f"UPDATE audit_log SET hash = '{rehashed}' WHERE seq = 3")
        assert check().first_broken_seq == 4
        change("UPDATE audit_log SET result_count = 2 WHERE seq = 3")
        with session_factory(engine)() as s:
            third = s.scalar(select(AuditEntry).where(AuditEntry.seq == 3))
            original = audit.entry_hash(third.prev_hash, third)
        change(f"UPDATE audit_log SET hash = '{original}' WHERE seq = 3")
        assert check().ok

        # the last entry deleted: the head still counts it
        change("DELETE FROM audit_log WHERE seq = 6")
        result = check()
        assert (result.ok, result.first_broken_seq) == (False, 6)
        # an entry in the middle deleted
        change("DELETE FROM audit_log WHERE seq = 2")
        result = check()
        assert (result.ok, result.first_broken_seq) == (False, 2)
        assert "missing" in result.reason
        done = _cli_verify(engine)
        assert done.returncode == 1 and "第 2 条" in done.stderr + done.stdout
    finally:
        engine.dispose()


# --- sign-in ---------------------------------------------------------------------------------


def _sign_in(env: Env, username: str, password: str, now) -> str:
    try:
        # A source per account: the tests' failures must not slow one another's.
        env.hub.sign_in(username, password, now=now, source=f"test:{username}")
    except SignInError as exc:
        return exc.code
    return "ok"


def _decisions(env: Env, username: str, since) -> list[str]:
    with session_factory(env.engine)() as s:
        return list(
            s.scalars(
                select(AuditEntry.decision)
                .where(
                    AuditEntry.username == username,
                    AuditEntry.action == "sign_in",
                    AuditEntry.ts >= since,
                )
                .order_by(AuditEntry.seq)
            )
        )


def test_failures_are_delayed_never_locked(env: Env) -> None:
    """Sign-in failures slow the next attempt (`hub.security.throttle`, tested in
    test_identity) but never lock the account: anyone could lock anyone out."""
    t0, user = at(day=31), "signin.lock"
    codes = [_sign_in(env, user, "wrong-password", t0 + timedelta(minutes=i)) for i in range(6)]
    assert codes == ["bad_credentials"] * 6
    assert _sign_in(env, user, DEMO_PASSWORD, t0 + timedelta(minutes=7)) == "ok"
    assert _decisions(env, user, t0) == ["failed"] * 6 + ["ok"]


def test_success_resets_the_failure_count(env: Env) -> None:
    t0, user = at(day=32), "signin.reset"
    minutes = [timedelta(minutes=i) for i in range(10)]
    codes = [_sign_in(env, user, "wrong-password", t0 + minutes[i]) for i in range(4)]
    codes.append(_sign_in(env, user, DEMO_PASSWORD, t0 + minutes[4]))
    codes += [_sign_in(env, user, "wrong-password", t0 + minutes[5 + i]) for i in range(4)]
    codes.append(_sign_in(env, user, DEMO_PASSWORD, t0 + minutes[9]))
    assert codes == ["bad_credentials"] * 4 + ["ok"] + ["bad_credentials"] * 4 + ["ok"]
    assert _decisions(env, user, t0) == ["failed"] * 4 + ["ok"] + ["failed"] * 4 + ["ok"]


def test_unknown_user_and_wrong_password_look_the_same(env: Env) -> None:
    t0 = at(day=33)
    errors = []
    for username, password in (("signin.same", "wrong-password"), ("nobody.here", DEMO_PASSWORD)):
        with pytest.raises(SignInError) as exc:
            env.hub.sign_in(username, password, now=t0)
        errors.append((exc.value.code, str(exc.value), exc.value.params))
    assert errors[0] == errors[1] and errors[0][0] == "bad_credentials"
    unknown = env.entries(AuditEntry.username == "nobody.here")[0]
    assert (unknown.action, unknown.decision, unknown.user_id) == ("sign_in", "failed", None)
    assert _decisions(env, "signin.same", t0) == ["failed"]


# --- alarms ----------------------------------------------------------------------------------


def _search(env: Env, username: str, plate: str, now, reason: Reason | None = None):
    who = env.who(username)
    case = demo.PURSUIT_CASE_NO if who.city_code == "340100" else _open_case(env, who.city_code)
    return env.hub.search_plate(who, plate, reason or Reason("case_investigation", case), now=now)


def _open_case(env: Env, city: str) -> str:
    from hub.models import Case

    with session_factory(env.engine)() as s:
        return s.scalar(
            select(Case.case_no).where(Case.city_code == city, Case.status == "open").limit(1)
        )


def test_burst_of_lookups(env: Env) -> None:
    t0, user = at(day=40), "investigator.cz"
    for i in range(29):
        _search(env, user, "皖M12345", t0 + timedelta(seconds=15 * i))
    assert env.alarms("burst", user, t0) == []
    _search(env, user, "皖M12345", t0 + timedelta(seconds=15 * 29))
    [alarm] = env.alarms("burst", user, t0)
    assert json.loads(alarm.detail)["lookups"] == 30 and alarm.city_code == "341100"
    for i in range(5):  # still inside the window: no second alarm
        _search(env, user, "皖M12345", t0 + timedelta(seconds=15 * (30 + i)))
    assert len(env.alarms("burst", user, t0)) == 1
    # 30 lookups spread over more than ten minutes are no burst
    t1, other = at(day=45), "investigator.wh"
    for i in range(30):
        _search(env, other, "皖B12345", t1 + timedelta(seconds=25 * i))
    assert env.alarms("burst", other, t1) == []


def test_off_hours_lookup(env: Env) -> None:
    day, user = 41, "commander.cz"
    _search(env, user, "皖M23456", at(day=day))  # 16:00 in Asia/Shanghai
    assert env.alarms("off_hours", user, at(day=day)) == []
    late = at(day=day, minutes=7 * 60)  # 15:00 UTC = 23:00 Asia/Shanghai
    _search(env, user, "皖M23456", late)
    [alarm] = env.alarms("off_hours", user, at(day=day))
    assert json.loads(alarm.detail)["local_hour"] == 23
    _search(env, user, "皖M23456", late + timedelta(minutes=20))
    assert len(env.alarms("off_hours", user, at(day=day))) == 1


def test_repeated_refusals(env: Env) -> None:
    t0, user = at(day=42), "officer.cz"
    who = env.who(user)
    for i in range(5):
        with pytest.raises(HubError):
            env.hub.search_plate(
                who, "皖M34567", Reason("curiosity", "X"), now=t0 + timedelta(minutes=i)
            )
        assert len(env.alarms("repeated_refusals", user, t0)) == (1 if i == 4 else 0)
    with pytest.raises(HubError):
        env.hub.search_plate(
            who, "皖M34567", Reason("curiosity", "X"), now=t0 + timedelta(minutes=6)
        )
    [alarm] = env.alarms("repeated_refusals", user, t0)
    assert json.loads(alarm.detail)["refusals"] == 5


def test_many_users_one_subject(env: Env) -> None:
    t0, plate = at(day=43), "皖A77777"
    users = ["officer.hf", "investigator.hf", "commander.hf"]
    for i, user in enumerate(users):
        _search(env, user, plate, t0 + timedelta(minutes=10 * i))
    with session_factory(env.engine)() as s:
        alarms = list(
            s.scalars(select(Alarm).where(Alarm.rule == "many_users_one_subject", Alarm.ts >= t0))
        )
    assert len(alarms) == 1
    detail = json.loads(alarms[0].detail)
    assert detail["key"] == f"plate:{plate}" and detail["users"] == 3
    _search(env, "approver.hf", plate, t0 + timedelta(minutes=40))  # a fourth: no new alarm
    with session_factory(env.engine)() as s:
        n = s.scalar(
            select(func.count())
            .select_from(Alarm)
            .where(Alarm.rule == "many_users_one_subject", Alarm.ts >= t0)
        )
    assert n == 1


def test_break_glass_raises_an_alarm(env: Env) -> None:
    t0, user = at(day=44), "investigator.hf"
    gid = env.hub.break_glass(
        env.who(user), plate=demo.PURSUIT_PLATE, owner_city="341100", reason=PURSUIT,
        justification="追逃：嫌疑车辆驶入滁州", now=t0,
    )  # fmt: skip
    [alarm] = env.alarms("break_glass", user, t0)
    assert json.loads(alarm.detail)["grant_id"] == gid and alarm.severity == "high"


def test_alarms_reach_the_users_city_and_closing_needs_a_note(env: Env) -> None:
    hub, t0 = env.hub, at(day=46)
    for i in range(30):  # a burst by a 滁州 user, and one by a 合肥 user
        _search(env, "investigator.cz", "皖M45678", t0 + timedelta(seconds=10 * i))
        _search(env, "commander.hf", "皖A45678", t0 + timedelta(seconds=10 * i))
    [cz_alarm] = env.alarms("burst", "investigator.cz", t0)
    [hf_alarm] = env.alarms("burst", "commander.hf", t0)

    seen_cz = hub.alarms(env.who("approver.cz"))
    assert {a.city_code for a in seen_cz} == {"341100"}
    assert cz_alarm.id in {a.id for a in seen_cz} and hf_alarm.id not in {a.id for a in seen_cz}
    seen_hf = {a.id for a in hub.alarms(env.who("approver.hf"))}
    assert hf_alarm.id in seen_hf and cz_alarm.id not in seen_hf
    assert {cz_alarm.id, hf_alarm.id} <= {a.id for a in hub.alarms(env.who("auditor"))}
    for username in ("officer.hf", "investigator.cz", "admin", "leader"):
        with pytest.raises(AccessDenied):
            hub.alarms(env.who(username))

    auditor = env.who("auditor")
    with pytest.raises(InputError) as exc:
        hub.close_alarm(auditor, cz_alarm.id, "   ", now=t0 + timedelta(hours=1))
    assert exc.value.code == "note_required"
    refused = env.entries(AuditEntry.username == "auditor")[0]
    assert (refused.action, refused.decision) == ("alarm_close_refused", "note_required")
    with pytest.raises(InputError) as exc:  # another city's approver cannot see it
        hub.close_alarm(env.who("approver.hf"), cz_alarm.id, "看过", now=t0 + timedelta(hours=1))
    assert exc.value.code == "unknown_alarm"

    hub.close_alarm(
        env.who("approver.cz"), cz_alarm.id, "已核实：专案查询", now=t0 + timedelta(hours=1)
    )
    closed = env.entries(AuditEntry.username == "approver.cz")[0]
    assert closed.action == "alarm_close"
    assert json.loads(closed.detail) == {"rule": "burst", "note": "已核实：专案查询"}
    with session_factory(env.engine)() as s:
        alarm = s.get(Alarm, cz_alarm.id)
        assert (alarm.status, alarm.close_note) == ("closed", "已核实：专案查询")
    with pytest.raises(InputError) as exc:
        hub.close_alarm(auditor, cz_alarm.id, "again", now=t0 + timedelta(hours=2))
    assert exc.value.code == "alarm_closed"
    assert cz_alarm.id not in {a.id for a in hub.alarms(env.who("approver.cz"))}
    assert env.verify().ok


def test_rules_count_no_further_than_their_threshold(env: Env) -> None:
    """A rule only asks whether its threshold is reached: the count stops there, so a busy
    user's audited lookups cost the same as a quiet one's."""
    from hub.security.alarms import _count_upto

    rows = select(AuditEntry.seq)
    with session_factory(env.engine)() as s:
        total = s.scalar(select(func.count()).select_from(AuditEntry))
        assert total > 5
        assert _count_upto(s, rows, 5) == 5
        assert _count_upto(s, rows, total + 10) == total
