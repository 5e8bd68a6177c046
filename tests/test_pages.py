"""Pages run headless (Streamlit AppTest) against a seeded store, per role and language.

Each page run on its own (as Streamlit does for files under pages/ before navigation
exists) must render no data without a principal or for a role it is not meant for.
"""

from __future__ import annotations

import re

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from hub.security.identity import principal_of
from hub.security.policy import ROLES
from hub.store import transaction
from tests.conftest import ROOT
from ui import notices
from ui.registry import PAGES, PAGES_BY_KEY


@pytest.fixture(scope="module")
def principals(tmp_path_factory):
    from hub.models import User
    from tests.conftest import seeded_engine

    engine = seeded_engine("sqlite", tmp_path_factory)
    with transaction(engine) as session:
        users = session.query(User).all()
        by_role = {}
        for u in users:
            by_role.setdefault(u.role, principal_of(u))
    return by_role


@pytest.fixture
def app_env(seeded_sqlite, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", seeded_sqlite.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def _run(path: str, principal=None, lang: str = "zh") -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=60)
    at.session_state["lang"] = lang
    if principal is not None:
        at.session_state["principal"] = principal
    return at.run()


def _shown(at: AppTest) -> str:
    """The page's Markdown as read: `ui.text.plain` escapes and word joiners removed."""
    return " ".join(re.sub(r"\\(.)", r"\1", m.value).replace("\u2060", "") for m in at.markdown)


def _shows_data(at: AppTest) -> bool:
    return bool(len(at.dataframe) or len(at.metric) or len(at.get("deck_gl_json_chart")))


def test_app_without_principal_shows_only_sign_in(app_env):
    at = _run("app.py")
    assert not at.exception
    assert at.button[0].label == "登录" or at.get("form_submit_button")
    assert not _shows_data(at)


def test_sign_in_form_signs_in_and_shows_the_first_page(app_env):
    at = _run("app.py")
    at.text_input[0].input("officer.hf")
    at.text_input[1].input("demo-2026")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["principal"].username == "officer.hf"
    assert at.title[0].value == "全省数据资源概况"


def test_wrong_password_is_one_message(app_env):
    at = _run("app.py")
    at.text_input[0].input("officer.hf")
    at.text_input[1].input("wrong-password")
    at.button[0].click().run()
    assert not at.exception
    assert at.error[0].value == "用户名或密码错误。"
    assert "principal" not in at.session_state


@pytest.mark.parametrize("spec", PAGES, ids=lambda s: s.key)
def test_page_alone_without_principal_renders_no_data(app_env, spec):
    at = _run(spec.file)
    assert not at.exception
    assert not _shows_data(at)
    assert at.warning[0].value == "请先登录。"


@pytest.mark.parametrize(
    ("spec", "role"),
    [(s, r) for s in PAGES for r in ROLES if r not in s.roles],
    ids=lambda v: getattr(v, "key", v),
)
def test_page_refuses_wrong_roles(app_env, principals, spec, role):
    at = _run(spec.file, principals[role])
    assert not at.exception
    assert not _shows_data(at)
    assert at.error[0].value == "您的角色无权访问此页面。"


@pytest.mark.parametrize(
    ("spec", "role"),
    [(s, r) for s in PAGES for r in sorted(s.roles)],
    ids=lambda v: getattr(v, "key", v),
)
def test_page_renders_for_each_allowed_role(app_env, principals, spec, role):
    at = _run(spec.file, principals[role])
    assert not at.exception
    assert not at.error


def test_province_page_shows_counts_per_class(app_env, principals, seeded_sqlite):
    with seeded_sqlite.connect() as conn:
        expected = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM incidents WHERE classification <> 'secret'"
        ).scalar_one()
    at = _run("pages/province.py", principals["officer"])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["警情"] == f"{expected:,}"
    table = at.dataframe[0].value
    assert len(table) == 16 and "合肥市" in set(table["地市"])


@pytest.mark.parametrize(("role", "secret"), [("province_approver", True), ("leader", False)])
def test_only_province_roles_count_secret_records(app_env, principals, seeded_sqlite, role, secret):
    where = "" if secret else "WHERE classification <> 'secret'"
    with seeded_sqlite.connect() as conn:
        expected = conn.exec_driver_sql(f"SELECT COUNT(*) FROM incidents {where}").scalar_one()
    at = _run("pages/province.py", principals[role])
    assert {m.label: m.value for m in at.metric}["警情"] == f"{expected:,}"


def test_english_switch(app_env, principals):
    at = _run("pages/province.py", principals["officer"], lang="en")
    assert at.title[0].value == "Data held across the province"
    assert "Hefei" in set(at.dataframe[0].value["City"])


def test_app_navigation_follows_the_role(app_env, principals):
    at = _run("app.py", principals["auditor"])
    assert not at.exception
    assert at.title[0].value == "审计与告警"
    assert "audit" in PAGES_BY_KEY


def test_store_down_is_a_message_not_a_traceback(monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    st.cache_resource.clear()
    at = _run("app.py")
    st.cache_resource.clear()
    assert not at.exception
    assert "cannot reach the store" in at.error[0].value


def test_production_refuses_demo_keys_and_passwords(app_env, monkeypatch):
    monkeypatch.setenv("HUB_ENV", "production")
    at = _run("app.py")
    assert not at.exception
    assert at.error[0].value == "生产环境拒绝启动：仍在使用演示密钥或演示密码。"
    problems = _shown(at)
    assert "HUB_SM4_KEY" in problems and "HUB_BLIND_INDEX_KEY" in problems
    assert "officer.hf" in problems
    assert not at.get("form")  # no sign-in form


def test_production_starts_with_real_keys_and_no_demo_passwords(
    app_env, monkeypatch, seeded_sqlite
):
    from hub.security.identity import users_with_demo_password
    from hub.store import transaction

    monkeypatch.setenv("HUB_ENV", "production")
    monkeypatch.setenv("HUB_SM4_KEY", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    monkeypatch.setenv("HUB_BLIND_INDEX_KEY", "a-real-secret-from-the-key-store")
    with transaction(seeded_sqlite) as session:
        assert users_with_demo_password(session)  # the demo store still has them ...
    at = _run("app.py")
    assert at.error[0].value.startswith("生产环境拒绝启动")  # ... so it still refuses
    problems = _shown(at)
    assert "HUB_SM4_KEY" not in problems and "demo password" in problems


def test_idle_session_is_signed_out_and_audited(tmp_path, monkeypatch):
    import time
    from datetime import UTC, datetime

    from sqlalchemy import select

    from hub.models import AuditEntry
    from hub.reference import load_reference
    from hub.security.identity import add_user
    from hub.store import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'idle.db'}")
    upgrade(engine)
    with transaction(engine) as session:
        load_reference(session=session)
        user = add_user(session, None, username="idle.officer", display_name="x", role="officer",
                        password="long-enough-1", city_code="340100", district_code="340102",
                        now=datetime.now(UTC))  # fmt: skip
        principal = principal_of(user)
    monkeypatch.setenv("HUB_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["principal"] = principal
    at.session_state["last_seen"] = time.time() - 31 * 60
    at.run()
    st.cache_resource.clear()
    assert not at.exception
    assert "principal" not in at.session_state
    assert "30 分钟未操作" in at.info[0].value
    with transaction(engine) as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert (last.action, last.decision, last.username) == ("sign_out", "idle", "idle.officer")


def test_requests_page_toasts_a_decision_and_shows_requester_activity(
    tmp_path_factory, monkeypatch
):
    from hub.demo import PURSUIT_CASE_NO, PURSUIT_PLATE
    from hub.security.reasons import Reason
    from hub.service import Hub
    from hub.settings import load_settings
    from tests.security_support import seeded_copy

    engine = seeded_copy("sqlite", tmp_path_factory)
    monkeypatch.setenv("HUB_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    hub = Hub(engine, load_settings())
    inv = hub.sign_in("investigator.hf", "demo-2026")
    rid = hub.request_access(
        inv, owner_city="341100", level="sensitive", scope_kind="plate", scope_value=PURSUIT_PLATE,
        reason=Reason("pursuit", PURSUIT_CASE_NO), justification="追逃",
    )  # fmt: skip
    approver = hub.sign_in("approver.cz", "demo-2026")
    seen = AppTest.from_file(str(ROOT / "pages/requests.py"), default_timeout=60)
    seen.session_state["principal"] = approver
    seen.run()
    assert not seen.exception
    assert any("申请人近7天：查询" in c.value for c in seen.caption), (
        [c.value for c in seen.caption]
        + [m.value for m in seen.markdown]
        + [e.value for e in seen.error]
    )

    def app_run(shown=None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.session_state["principal"] = inv
        if shown is not None:
            at.session_state[notices._SHOWN] = shown
        return at.run()

    # The notification badge (ui/frame.py page_furniture, on every page): the first check
    # only remembers what it listed; a decision after it is a toast on the next check.
    first = app_run()
    assert not first.toast
    shown = first.session_state[notices._SHOWN]
    hub.decide_request(approver, rid, approve=True, note="同意")
    at = app_run(shown)
    st.cache_resource.clear()
    assert not at.exception
    assert [x.value for x in at.toast] == [f"调阅申请 #{rid} 已批准（滁州市）"]
