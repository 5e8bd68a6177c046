"""Sessions that survive a reload (issue 16 item 5), in a real browser against
`streamlit run serve.py` (Streamlit plus the session cookie's route): a reload keeps the
person signed in on the same page; a lock in the hub ends the session at the next reload,
with the reason on the sign-in form; a deep link opened while signed out opens its item
after signing in; the cookie is HttpOnly and SameSite=Strict and no token is in a URL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.browser.conftest import Visit, running_app, sign_in

pytestmark = pytest.mark.browser
USER = "session.user"  # made for these tests: locking it touches nobody else's


@pytest.fixture(scope="module")
def store_url(seeded_sqlite_url, tmp_path_factory) -> str:
    """A copy of the browser store with a user of this module's own."""
    from hub.security import identity
    from hub.store import make_engine, transaction

    target = tmp_path_factory.mktemp("session") / "hub.db"
    shutil.copyfile(seeded_sqlite_url.removeprefix("sqlite:///"), target)
    url = f"sqlite:///{target}"
    engine = make_engine(url)
    with transaction(engine) as s:
        identity.add_demo_user(s, username=USER, display_name="会话测试", role="commander",
                               city_code="340100", now=_utcnow())  # fmt: skip
    # Two operations of 合肥's: the link names the one the page would not open by itself.
    from hub.service import Hub
    from hub.settings import load_settings

    hub = Hub(engine, load_settings(environ={}))
    hf = hub.sign_in("commander.hf", "demo-2026")
    for name in ("会话行动甲", "会话行动乙"):
        hub.create_operation(hf, name=name, kind="planned_event", lon=117.95, lat=31.85)
    engine.dispose()
    return url


def _utcnow():
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.fixture(scope="module")
def served(store_url) -> Iterator[str]:
    """`streamlit run serve.py`: the app with the cookie route, on a free port."""
    with running_app("serve.py", {"HUB_DATABASE_URL": store_url}) as url:
        yield url


def _sql(url: str, query: str, **params):
    engine = create_engine(url)
    with engine.begin() as conn:
        result = conn.execute(text(query), params)
        rows = result.fetchall() if result.returns_rows else []
    engine.dispose()
    return rows


def _signed_in_as(visit: Visit, name: str) -> bool:
    return visit.page.get_by_test_id("stSidebar").get_by_text(name).count() > 0


def _wait_signed_in(visit: Visit, name: str) -> None:
    """The sign-in hands its code to the cookie route and reloads: wait for the reload."""
    visit.page.get_by_test_id("stSidebar").get_by_text(name).wait_for(timeout=60_000)
    visit.settle()


def test_reload_keeps_the_session_and_a_lock_ends_it(browser, served, store_url):
    visit = Visit(browser, served)
    try:
        sign_in(visit, USER)
        _wait_signed_in(visit, "会话测试")
        visit.page.get_by_test_id("stSidebarNav").get_by_text("联合处置").click()
        visit.settle()
        assert visit.page.url.endswith("/response")

        cookie = next(c for c in visit.context.cookies() if c["name"] == "hub_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert cookie["value"] not in visit.page.url
        # The page's scripts cannot read it.
        assert "hub_session" not in visit.page.evaluate("document.cookie")
        # This person's (the browser store is shared with the other browser tests).
        (stored,) = _sql(store_url, "SELECT token_hash FROM web_sessions WHERE claimed_at "
                         "IS NOT NULL AND ended_at IS NULL AND user_id = "
                         "(SELECT id FROM users WHERE username = :u)", u=USER)  # fmt: skip
        assert cookie["value"] not in stored[0]  # only its hash is kept

        visit.page.reload()
        _wait_signed_in(visit, "会话测试")
        visit.shot("session-after-reload")
        assert visit.page.url.endswith("/response"), "a reload stays on the page"
        assert _signed_in_as(visit, "会话测试"), "a reload keeps the person signed in"
        assert visit.page.get_by_label("用户名").count() == 0

        # A second tab of the same browser is signed in too.
        second = visit.context.new_page()
        second.goto(f"{served}/response")
        second.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
            state="attached", timeout=60_000
        )
        second.get_by_test_id("stSidebar").get_by_text("会话测试").wait_for(timeout=30_000)
        second.close()

        # An administrator locks the account (what the CLI does): the next reload ends it.
        _sql(store_url, "UPDATE users SET active = false, session_version = session_version + 1 "
             "WHERE username = :u", u=USER)  # fmt: skip
        visit.page.reload()
        visit.page.get_by_label("用户名").wait_for(timeout=60_000)
        visit.settle()
        visit.shot("session-locked-after-reload")
        assert visit.page.get_by_label("用户名").count() == 1, "signed out"
        assert not _signed_in_as(visit, "会话测试")
        visit.page.get_by_text("您的账号权限已变更").wait_for()  # the form says why
        ended = _sql(store_url, "SELECT ended_why FROM web_sessions WHERE ended_at IS NOT NULL "
                     "AND user_id = (SELECT id FROM users WHERE username = :u)", u=USER)  # fmt: skip
        assert ("access_changed",) in ended
        assert not visit.external
    finally:
        _sql(store_url, "UPDATE users SET active = true WHERE username = :u", u=USER)
        visit.context.close()


def test_deep_link_survives_sign_in(browser, served, store_url):
    ((op_id,),) = _sql(store_url, "SELECT id FROM operations WHERE name = '会话行动甲'")
    visit = Visit(browser, served)
    try:
        visit.goto(f"response?operation={op_id}")
        visit.shot("session-deep-link-signed-out")
        assert visit.page.get_by_label("用户名").count() == 1, "signed out: the sign-in form"
        assert f"operation={op_id}" in visit.page.url, "the link is still in the address bar"
        visit.page.get_by_label("用户名").fill("commander.hf")
        visit.page.get_by_label("密码").fill("demo-2026")
        visit.page.get_by_role("button", name="登录").click()
        _wait_signed_in(visit, "马指挥长（合肥）")
        assert "/response" in visit.page.url and f"operation={op_id}" in visit.page.url
        visit.shot("session-deep-link-after-sign-in")
        main = visit.page.get_by_test_id("stMain")
        # The linked operation is the one open (without the link the page opens the other).
        box = main.get_by_test_id("stSelectbox").first
        shown = box.inner_text() + box.locator("input").first.input_value()
        assert f"#{op_id} 会话行动甲" in shown
        assert not visit.external
    finally:
        visit.context.close()
