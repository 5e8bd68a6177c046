"""Every role signs in and opens every page it may see, from the navigation and by its
address (a reload or a shared link), in a real browser started as in production
(`streamlit run serve.py`): each page draws without an exception, the navigation shows no
other page, the browser's console shows no error and no request answers 4xx or 5xx, and
nothing leaves the machine. A page the role may not open, and an address that names no
page, say so in Chinese (never Streamlit's English "Page not found")."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Visit, running_app, sign_in
from ui.i18n import catalogue
from ui.registry import PAGES, pages_for

pytestmark = pytest.mark.browser

ROLE_USERS = {
    "officer": "officer.hf", "investigator": "investigator.hf", "city_approver": "approver.hf",
    "province_approver": "province.approver", "commander": "commander.hf", "analyst": "analyst",
    "auditor": "auditor", "leader": "leader", "admin": "admin",
}  # fmt: skip


@pytest.fixture(scope="module")
def served_url(seeded_sqlite_url):
    with running_app("serve.py", {"HUB_DATABASE_URL": seeded_sqlite_url}) as url:
        yield url


@pytest.fixture
def served(browser, served_url, request):
    v = Visit(browser, served_url)
    v.failed: list[str] = []  # responses with status >= 400
    v.page.on(
        "response", lambda r: v.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    yield v
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        v.shot(f"FAILED-{request.node.name}")
    v.context.close()


def _clean(visit: Visit, where: str) -> None:
    page = visit.page
    assert page.get_by_test_id("stException").count() == 0, where
    assert page.get_by_text("This app has encountered an error").count() == 0, where
    assert page.get_by_text("Page not found").count() == 0, where
    assert visit.errors == [], f"{where}: console errors {visit.errors}"
    assert visit.failed == [], f"{where}: failed responses {visit.failed}"


def _zh(key: str) -> str:
    return catalogue()[key]["zh"]


# Pages already opened in this run, from the navigation and by their address: a page's
# drawing differs by role, which the AppTest runs check for every page and role
# (tests/test_language.py, tests/test_pages.py); what only a browser shows (console errors,
# failed requests, requests leaving the machine) is the page's own, so each page is opened
# once each way over the roles, and every role opens at least one page each way.
_CLICKED: set[str] = set()
_BY_ADDRESS: set[str] = set()


@pytest.mark.parametrize("role", list(ROLE_USERS))
def test_each_allowed_page_opens_and_no_other_is_offered(served, role):
    visit = served
    sign_in(visit, ROLE_USERS[role])
    page = visit.page
    # The sign-in hands its session to the cookie route and reloads: wait for the reload.
    page.get_by_role("button", name="退出登录").wait_for(timeout=60_000)
    visit.settle()
    _clean(visit, f"{role} signed in")
    nav = page.get_by_test_id("stSidebarNav")
    allowed = pages_for(role)
    titles = {p.key: _zh(p.title_key) for p in PAGES}
    for spec in PAGES:
        shown = nav.get_by_text(titles[spec.key], exact=True).count()
        # With a single page Streamlit shows no navigation at all.
        expected = 1 if spec in allowed and len(allowed) > 1 else 0
        assert shown == expected, f"{role}: nav entry for {spec.key}"
    clicked = [p for p in allowed[1:] if p.key not in _CLICKED] or allowed[1:2]
    _CLICKED.update(p.key for p in clicked)
    for spec in clicked:
        nav.get_by_text(titles[spec.key], exact=True).click()
        visit.settle()
        _clean(visit, f"{role} on {spec.key} from the navigation")
    # By address: a reload or a shared link keeps the session and opens that page.
    by_address = [p for p in allowed if p.key not in _BY_ADDRESS] or allowed[:1]
    _BY_ADDRESS.update(p.key for p in by_address)
    for spec in by_address:
        visit.goto(spec.key)
        assert page.url.endswith(f"/{spec.key}"), (role, spec.key, page.url)
        assert page.get_by_label("密码").count() == 0, (
            f"{role}: signed out on /{spec.key}",
            [c["name"] for c in visit.context.cookies()],
            page.get_by_test_id("stAlert").all_inner_texts(),
        )
        _clean(visit, f"{role} on /{spec.key}")
    visit.shot(f"role-{role}-last-page")
    other = next((p for p in PAGES if p not in allowed), None)
    if other is not None:
        visit.goto(other.key)
        page.get_by_text(_zh("page_not_allowed")).wait_for(timeout=30_000)
        _clean(visit, f"{role} on /{other.key}, not allowed")
    if role in ("officer", "admin"):  # the answer does not depend on the role
        visit.goto("no/such/page")
        assert page.url.endswith("/not-found"), page.url
        page.get_by_text(_zh("frame_page_not_found")).wait_for(timeout=30_000)
        _clean(visit, f"{role} on an address that names no page")
    assert visit.external == [], f"requests tried to leave the machine: {visit.external}"
