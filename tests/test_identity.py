"""Identity (issue 15, items 1-3): sessions end when access ends or when too old; sign-in
answers alike for every refusal and is throttled per source and account without letting
anyone elsewhere shut the owner out; passwords are strong and never arguments; the
production switch fails closed and production stores are never seeded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub import demo
from hub.models import AuditEntry, SignInThrottle, User
from hub.security import identity, throttle
from hub.security.errors import HubError, InputError, SignInError
from hub.security.identity import DEMO_PASSWORD, SessionEnded
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS, ROOT
from tests.security_support import at, seeded_copy

PURSUIT = Reason("pursuit", demo.PURSUIT_CASE_NO)
STRONG = "kq7-Vx2m-Rt9p-Lw4z"


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    with transaction(engine) as s:
        for name in ("id.lock", "id.role", "id.reset", "id.old", "id.same", "id.throttle",
                     "id.victim", "id.crowd", "id.prod"):  # fmt: skip
            identity.add_demo_user(s, username=name, display_name=name, role="investigator",
                                   city_code="340100", now=at(day=-5))  # fmt: skip
    yield engine
    engine.dispose()


@pytest.fixture
def hub(env) -> Hub:
    return Hub(env, load_settings(environ={}))


def _admin(engine, fn, *args) -> None:
    """What the CLI does: an identity change in a transaction of its own."""
    with transaction(engine) as s:
        fn(s, None, *args, now=at(day=40))


def _search(hub: Hub, principal, now):
    return hub.search_plate(principal, demo.PURSUIT_PLATE, PURSUIT, now=now)


def _request(hub: Hub, principal, now):
    return hub.request_access(
        principal, owner_city="341100", level="sensitive", scope_kind="plate",
        scope_value=demo.PURSUIT_PLATE, reason=PURSUIT, justification="嫌疑车辆进入滁州", now=now,
    )  # fmt: skip


def _ended(fn, *args, **kw) -> str:
    with pytest.raises(SessionEnded) as exc:
        fn(*args, **kw)
    assert exc.value.code == "session_ended"
    return exc.value.params["why"]


# --- item 1: sessions end when access ends ------------------------------------------------


def test_lock_ends_the_open_session_at_its_next_call(env, hub) -> None:
    t0 = at(day=40)
    p = hub.sign_in("id.lock", DEMO_PASSWORD, now=t0)
    _search(hub, p, t0)
    _admin(env, identity.set_locked, "id.lock", True)
    assert _ended(_search, hub, p, t0 + timedelta(minutes=1)) == "access_changed"
    assert _ended(_request, hub, p, t0 + timedelta(minutes=1)) == "access_changed"
    assert _ended(hub.check_session, p) == "access_changed"
    # Unlocked again, the old session stays ended; a new sign-in works.
    _admin(env, identity.set_locked, "id.lock", False)
    assert _ended(_search, hub, p, t0 + timedelta(minutes=2)) == "access_changed"
    _search(hub, hub.sign_in("id.lock", DEMO_PASSWORD, now=t0 + timedelta(minutes=3)), t0)
    with session_factory(env)() as s:
        refused = s.scalar(
            select(AuditEntry).where(AuditEntry.username == "id.lock",
                                     AuditEntry.action == "search_refused").order_by(AuditEntry.seq)
        )  # fmt: skip
    assert refused.decision == "session_ended"


def test_role_change_ends_the_session_even_when_changed_back(env, hub) -> None:
    t0 = at(day=41)
    p = hub.sign_in("id.role", DEMO_PASSWORD, now=t0)
    _admin(env, identity.set_role, "id.role", "leader", "340100", None)
    assert _ended(_search, hub, p, t0) == "access_changed"
    # Back to the very role the session holds: the version, not the role, says it ended.
    _admin(env, identity.set_role, "id.role", "investigator", "340100", None)
    assert _ended(_request, hub, p, t0) == "access_changed"


def test_password_reset_ends_the_session(env, hub) -> None:
    t0 = at(day=42)
    p = hub.sign_in("id.reset", DEMO_PASSWORD, now=t0)
    _admin(env, identity.reset_password, "id.reset", STRONG)
    assert _ended(_search, hub, p, t0) == "access_changed"
    assert hub.sign_in("id.reset", STRONG, now=t0).session_version == p.session_version + 1


def test_no_session_outlives_the_longest_allowed(env) -> None:
    hub = Hub(env, load_settings(environ={"HUB_SESSION_MAX_HOURS": "2"}))
    t0 = at(day=43)
    p = hub.sign_in("id.old", DEMO_PASSWORD, now=t0)
    assert p.signed_in_at == t0
    _search(hub, p, t0 + timedelta(hours=1, minutes=59))
    assert _ended(_search, hub, p, t0 + timedelta(hours=2, minutes=1)) == "too_long"
    assert Hub(env, load_settings(environ={})).settings.session_max_hours == 12


def test_a_principal_for_no_real_user_is_refused(env, hub) -> None:
    from hub.security.policy import Principal

    ghost = Principal(999_999, "ghost", "ghost", "province_approver", "340100")
    assert _ended(_search, hub, ghost, at(day=44)) == "access_changed"


# --- item 2: sign-in that an attacker does not control ----------------------------------------


def _attempt(hub: Hub, name: str, password: str, now, source: str) -> tuple:
    with pytest.raises(SignInError) as exc:
        hub.sign_in(name, password, now=now, source=source)
    return exc.value.code, str(exc.value), exc.value.params


def _last_sign_in(engine, **where) -> AuditEntry:
    with session_factory(engine)() as s:
        q = select(AuditEntry).where(AuditEntry.action == "sign_in")
        for column, value in where.items():
            q = q.where(getattr(AuditEntry, column) == value)
        return s.scalars(q.order_by(AuditEntry.seq.desc())).first()


def test_every_refusal_answers_alike_and_the_audit_keeps_the_truth(env, hub) -> None:
    t0 = at(day=50)
    _admin(env, identity.set_locked, "id.same", True)
    answers = {
        "unknown": _attempt(hub, "nobody.here", DEMO_PASSWORD, t0, "10.1.0.1"),
        "wrong": _attempt(hub, "officer.cz", "wrong-password", t0, "10.1.0.2"),
        "inactive": _attempt(hub, "id.same", DEMO_PASSWORD, t0, "10.1.0.3"),
    }
    for _ in range(6):  # from the third failure on, the source waits
        _attempt(hub, "officer.wh", "wrong-password", t0, "10.1.0.4")
    answers["throttled"] = _attempt(hub, "officer.wh", DEMO_PASSWORD, t0, "10.1.0.4")
    assert len(set(map(repr, answers.values()))) == 1, answers
    assert answers["wrong"][0] == "bad_credentials"
    seen = {
        "unknown": _last_sign_in(env, username="nobody.here"),
        "wrong": _last_sign_in(env, username="officer.cz"),
        "inactive": _last_sign_in(env, username="id.same"),
        "throttled": _last_sign_in(env, username="officer.wh"),
    }
    assert {k: e.decision for k, e in seen.items()} == {
        "unknown": "failed", "wrong": "failed", "inactive": "inactive", "throttled": "throttled",
    }  # fmt: skip
    assert seen["unknown"].user_id is None and seen["wrong"].user_id is not None
    sources = {k: json.loads(e.detail)["source"] for k, e in seen.items()}
    assert sources == {"unknown": "10.1.0.1", "wrong": "10.1.0.2", "inactive": "10.1.0.3",
                       "throttled": "10.1.0.4"}  # fmt: skip


def test_unknown_names_cost_the_same_work(env, hub) -> None:
    t0 = at(day=51)

    def seconds(name: str, source: str) -> float:
        started = time.perf_counter()
        _attempt(hub, name, "wrong-password", t0, source)
        return time.perf_counter() - started

    seconds("warm.up", "10.2.0.9")  # the dummy hash is made once per process
    known, unknown = [], []
    for i in range(3):  # interleaved, and the fastest of each: load on the machine is noise
        known.append(seconds("officer.hf", f"10.2.0.{i}"))
        unknown.append(seconds(f"no.one{i}", f"10.2.1.{i}"))
    known, unknown = min(known), min(unknown)
    # Before: ~2 ms against ~150 ms. Both now check one argon2 hash.
    assert 0.5 < unknown / known < 2, (unknown, known)


def test_delays_grow_and_an_attempt_too_early_is_not_heard(env, hub) -> None:
    t0, src = at(day=52), "10.3.0.1"
    assert [throttle.delay_after(n).total_seconds() for n in range(1, 8)] == [0, 0, 1, 2, 4, 8, 16]
    assert throttle.delay_after(100) == throttle.MAX_DELAY
    for _ in range(3):
        _attempt(hub, "id.throttle", "wrong-password", t0, src)
    # Third failure: one second. The right password before then is refused like any other.
    _attempt(hub, "id.throttle", DEMO_PASSWORD, t0 + timedelta(milliseconds=500), src)
    assert _last_sign_in(env, username="id.throttle").decision == "throttled"
    _attempt(hub, "id.throttle", "wrong-password", t0 + timedelta(seconds=1), src)  # heard: 2 s
    _attempt(hub, "id.throttle", DEMO_PASSWORD, t0 + timedelta(seconds=2.5), src)
    assert _last_sign_in(env, username="id.throttle").decision == "throttled"
    p = hub.sign_in("id.throttle", DEMO_PASSWORD, now=t0 + timedelta(seconds=3), source=src)
    assert p.username == "id.throttle"


def test_one_source_guessing_every_account_locks_nobody_out(backend, tmp_path_factory) -> None:
    """The issue's attack: 95 guesses in 17 s from one address locked all 19 accounts."""
    engine = seeded_copy(backend, tmp_path_factory)  # every demo account: a store of its own
    hub, t0, attacker = Hub(engine, load_settings(environ={})), at(day=53), "203.0.113.7"
    names = [u[0] for u in demo.DEMO_USERS]
    for i in range(95):
        _attempt(hub, names[i % len(names)], f"guess-{i}", t0 + timedelta(seconds=i * 17 / 95),
                 attacker)  # fmt: skip
    with session_factory(engine)() as s:
        decisions = s.scalars(
            select(AuditEntry.decision).where(
                AuditEntry.action == "sign_in", AuditEntry.ts >= t0,
                AuditEntry.ts <= t0 + timedelta(seconds=17))
        ).all()  # fmt: skip
    assert decisions.count("failed") <= 8, decisions.count("failed")  # the rest not even heard
    later = t0 + timedelta(seconds=18)
    for name in names:  # everyone else signs in at once, the admin included
        assert hub.sign_in(name, DEMO_PASSWORD, now=later, source="10.9.0.1").username == name
    engine.dispose()


def test_guesses_from_many_sources_do_not_shut_out_a_known_source(env, hub) -> None:
    t0, home = at(day=54), "10.4.0.1"
    hub.sign_in("id.victim", DEMO_PASSWORD, now=t0, source=home)
    t1 = t0 + timedelta(hours=1)
    for i in range(40):  # a botnet: each address fails, the account's count grows
        _attempt(hub, "id.victim", f"guess-{i}", t1 + timedelta(seconds=i), f"198.51.100.{i}")
    soon = t1 + timedelta(seconds=41)
    # From where the owner signed in before: heard at once.
    assert hub.sign_in("id.victim", DEMO_PASSWORD, now=soon, source=home).username == "id.victim"
    # From a new address the account's delay applies (same answer as a wrong password) ...
    _attempt(hub, "id.victim", DEMO_PASSWORD, soon, "10.4.0.99")
    assert json.loads(_last_sign_in(env, username="id.victim").detail)["throttled_by"] == "account"
    # ... until an admin unlocks the account.
    _admin(env, identity.set_locked, "id.victim", False)
    assert hub.sign_in("id.victim", DEMO_PASSWORD, now=soon, source="10.4.0.99")


def test_a_flood_from_one_address_stores_nothing_per_name(env, hub) -> None:
    t0, src = at(day=55), "192.0.2.50"
    for i in range(30):
        _attempt(hub, f"random{i}", "x", t0, src)
    with session_factory(env)() as s:
        keys = s.scalar(
            select(func.count()).select_from(SignInThrottle).where(
                SignInThrottle.key.like(f"pair:random%|{src}"))
        )  # fmt: skip
    assert keys == 3  # the three failures heard before the source's delay began


# --- item 3: strong passwords, never arguments; production fails closed ----------------------


@pytest.mark.parametrize(
    "password",
    ["12345678", "password", "demo-2026", "passwordpassword", "iloveyou2026", "qwertyuiop123",
     "1qaz2wsx3edc4rfv", "xx-demo-2026-xx", "id.crowd2026!"],
)  # fmt: skip
def test_weak_and_common_passwords_are_refused(password) -> None:
    with pytest.raises(InputError) as exc:
        identity.check_password(password, username="id.crowd", display_name="id.crowd")
    assert exc.value.code in ("password_short", "password_common", "password_weak")


def test_a_strong_password_passes() -> None:
    identity.check_password(STRONG, username="id.crowd")
    identity.check_password("correct horse battery staple", username="id.crowd")


def test_add_and_reset_apply_the_policy(env) -> None:
    with pytest.raises(InputError), transaction(env) as s:
        identity.reset_password(s, None, "id.crowd", "12345678", now=at(day=56))
    with pytest.raises(InputError), transaction(env) as s:
        identity.add_user(s, None, username="id.weak", display_name="w", role="analyst",
                          password="password", city_code="340100", now=at(day=56))  # fmt: skip


def _cli(url: str, *args: str, stdin: str = "", env: dict | None = None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return subprocess.run(
        [sys.executable, "-m", "hub", *args, "--db", url], input=stdin, capture_output=True,
        text=True, cwd=ROOT, timeout=120, env={**environ, **(env or {})},
    )  # fmt: skip


def test_the_cli_takes_passwords_from_stdin_never_as_arguments(store) -> None:
    url = store.url.render_as_string(hide_password=False)
    add = ["users", "add", "li.na", "--role", "analyst", "--city", "340100"]
    argv = _cli(url, *add, "--password", STRONG)
    assert argv.returncode == 1 and "ps 和 shell 历史" in argv.stderr
    weak = _cli(url, *add, "--password-stdin", stdin="12345678\n")
    assert weak.returncode == 1 and "12 个字符" in weak.stderr and "Traceback" not in weak.stderr
    assert _cli(url, *add, "--password-stdin", stdin=f"{STRONG}\n").returncode == 0
    reset = ["users", "reset-password", "li.na", "--password-stdin"]
    assert _cli(url, *reset, stdin="demo-2026\n").returncode == 1
    assert _cli(url, *reset, stdin=f"{STRONG}-2\n").returncode == 0
    with transaction(store) as s:
        user = s.scalar(select(User).where(User.username == "li.na"))
        assert identity.password_matches(user.password_hash, f"{STRONG}-2")
        assert user.session_version == 1


@pytest.mark.parametrize("value", ["Production", "prod", "production ", "PRODUCTION"])
def test_a_misspelt_environment_is_refused_by_name(store, value) -> None:
    proc = _cli(store.url.render_as_string(hide_password=False), "users", "list",
                env={"HUB_ENV": value})  # fmt: skip
    assert proc.returncode == 2 and "HUB_ENV" in proc.stderr and repr(value) in proc.stderr


def test_production_never_seeds_or_resets_a_store(store) -> None:
    url = store.url.render_as_string(hide_password=False)
    prod = {"HUB_ENV": "production"}
    for args in (("demo", "--size", "small"), ("demo", "--size", "small", "--reset"),
                 ("bench", "--only", "sign_in")):  # fmt: skip
        proc = _cli(url, *args, env=prod)
        assert proc.returncode == 1 and "HUB_ENV=production" in proc.stderr, (args, proc.stderr)
    start = _cli(url, "demo", "--size", "small", "--if-empty", "--quiet", env=prod)
    assert start.returncode == 0 and "从不灌入演示数据" in start.stdout
    with transaction(store) as s:
        assert s.scalar(select(func.count()).select_from(User)) == 0
        assert demo.record_count(store) == 0


def test_production_start_names_every_demo_password_even_deactivated(env) -> None:
    _admin(env, identity.set_locked, "id.prod", True)
    settings = load_settings(environ={"HUB_ENV": "production", "HUB_SM4_KEY": "ab" * 16,
                                      "HUB_BLIND_INDEX_KEY": "k" * 40})  # fmt: skip
    problems = Hub(env, settings).startup_problems()
    assert len(problems) == 1 and "id.prod" in problems[0] and "admin" in problems[0]


def test_session_ended_is_a_hub_error_with_strings() -> None:
    from ui.i18n import catalogue

    assert issubclass(SessionEnded, HubError)
    for key in ("err_session_ended", "id_session_too_long", "id_session_access_changed",
                "err_password_short", "err_password_common", "err_password_weak"):  # fmt: skip
        assert set(catalogue()[key]) == {"zh", "en"}


# --- the app: a session that ends signs the person out, saying why ------------------------


@pytest.fixture
def app_store(tmp_path, monkeypatch):
    import streamlit as st

    from hub.reference import load_reference
    from hub.store import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    upgrade(engine)
    with transaction(engine) as s:
        load_reference(session=s)
        identity.add_user(s, None, username="ui.officer", display_name="x", role="officer",
                          password=STRONG, city_code="340100", district_code="340102",
                          now=at())  # fmt: skip
    for key in [k for k in os.environ if k.startswith("HUB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HUB_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    yield engine
    st.cache_resource.clear()
    engine.dispose()


def _app(principal, last_seen: float | None = None):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.session_state["principal"] = principal
    app.session_state["last_seen"] = time.time() if last_seen is None else last_seen
    return app


def _last_sign_out(engine) -> str:
    with session_factory(engine)() as s:
        return s.scalars(
            select(AuditEntry.decision).where(AuditEntry.action == "sign_out")
            .order_by(AuditEntry.seq.desc())
        ).first()  # fmt: skip


def test_the_app_signs_out_a_session_whose_access_ended(app_store) -> None:
    from datetime import UTC, datetime

    hub = Hub(app_store, load_settings(environ={}))
    app = _app(hub.sign_in("ui.officer", STRONG, now=datetime.now(UTC)))
    app.run()
    assert not app.exception and "principal" in app.session_state
    with transaction(app_store) as s:
        identity.set_locked(s, None, "ui.officer", True, now=datetime.now(UTC))
    app.run()
    assert not app.exception and "principal" not in app.session_state
    assert "权限已变更" in app.info[0].value
    assert _last_sign_out(app_store) == "session_ended"


def test_the_app_ends_a_session_older_than_the_setting(app_store, monkeypatch) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime

    monkeypatch.setenv("HUB_SESSION_MAX_HOURS", "1")
    hub = Hub(app_store, load_settings(environ={}))
    p = hub.sign_in("ui.officer", STRONG, now=datetime.now(UTC))
    app = _app(replace(p, signed_in_at=p.signed_in_at - timedelta(hours=1, minutes=1)))
    app.run()
    assert not app.exception and "principal" not in app.session_state
    assert "超过 1 小时" in app.info[0].value


def test_the_idle_limit_is_the_setting(app_store, monkeypatch) -> None:
    from datetime import UTC, datetime

    monkeypatch.setenv("HUB_SESSION_IDLE_MINUTES", "5")
    p = Hub(app_store, load_settings(environ={})).sign_in(
        "ui.officer", STRONG, now=datetime.now(UTC)
    )
    app = _app(p, last_seen=time.time() - 6 * 60)
    app.run()
    assert "principal" not in app.session_state and "5 分钟未操作" in app.info[0].value
    assert _last_sign_out(app_store) == "idle"
