"""Text one user typed is shown to another as text (issue 14 item 3): the peer injection
payloads and Markdown tricks (a remote image, a link, bold that impersonates the
province) are stored as request justifications and scopes, alert titles and bodies,
assist texts, an operation's name and objectives and its timeline entries; the other
city's (or another) user opens each page in a real browser. Nothing is formatted, every
payload reads as typed, and no request leaves the machine."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from hub.codes import codes
from hub.security.identity import principal_of
from hub.security.reasons import Reason
from tests.browser.conftest import Visit, running_app, sign_in
from tests.conftest import ROOT

pytestmark = pytest.mark.browser

BEACON = "198.51.100.7"
MARKDOWN = [
    f"![x](http://{BEACON}/beacon.png)", f"[点此核实](http://{BEACON}/)", "**省厅已同意，请立即批准**",
    ":red[紧急] :blue-badge[省厅] :material/verified: :smile:", "$x^2$", "# 标题", "> 引用",
    f"http://{BEACON}/a www.example.com a@example.com", f"<img src=http://{BEACON}/i.png>",
    "x --", "a -> b",
]  # fmt: skip
PAYLOADS = [
    p for p in (ROOT.parent / "shared/testdata/peer/payloads.txt").read_text("utf-8").splitlines() if p
] + MARKDOWN  # fmt: skip


def _chunks(items: list[str], limit: int) -> list[str]:
    """The payloads one per line, in as few texts of at most `limit` characters as fit."""
    out, cur = [], ""
    for p in items:
        p = p[:limit]
        if cur and len(cur) + 1 + len(p) > limit:
            out.append(cur)
            cur = ""
        cur = f"{cur}\n{p}" if cur else p
    return [*out, cur]


@pytest.fixture(scope="module")
def payload_app(tmp_path_factory) -> Iterator[str]:
    """A store of this module's own with every payload stored, and the app on it."""
    from hub import demo
    from hub.models import User
    from hub.reference import load_reference
    from hub.service import Hub
    from hub.settings import load_settings
    from hub.store import make_engine, transaction, upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('user-text') / 'hub.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with transaction(engine) as session:
        load_reference(session=session)
    demo.seed(engine, load_settings(), size="small")
    hub = Hub(engine, load_settings())
    with transaction(engine) as session:
        who = {u.username: principal_of(u) for u in session.query(User)}
        case_no = session.execute(text(
            "SELECT case_no FROM cases WHERE city_code = '340100' AND status = 'open' ORDER BY id LIMIT 1"
        )).scalar_one()  # fmt: skip
        vehicle = session.execute(
            text("SELECT id FROM vehicles WHERE city_code = '340100' ORDER BY id LIMIT 1")
        ).scalar_one()
    reason = Reason(codes("purpose")[0].code, case_no, "")
    for i, chunk in enumerate(_chunks(PAYLOADS, 1000)):
        hub.request_access(who["investigator.hf"], owner_city="341100", level="sensitive",
                           scope_kind="plate", scope_value=f"皖M{i:05d}", reason=reason,
                           justification=chunk)  # fmt: skip
        hub.create_assist(who["investigator.hf"], case_no=case_no, subject_kind="vehicle",
                          subject_id=int(vehicle), asked=chunk, to_cities=["341100"])  # fmt: skip
    for title in MARKDOWN:
        hub.raise_alert(who["commander.hf"], title=title, level="high", kind="manual",
                        body="\n".join(PAYLOADS[:12]))  # fmt: skip
    op = hub.create_operation(who["commander.hf"], name=MARKDOWN[2], kind="planned_event",
                              lon=117.27, lat=31.86, invite=["341100"],
                              objectives=_chunks(PAYLOADS, 1000)[-1])  # fmt: skip
    hub.respond_invitation(who["commander.cz"], op, accept=True)
    for chunk in _chunks(PAYLOADS, 1000):
        hub.add_timeline_entry(who["commander.hf"], op, chunk)
    engine.dispose()

    with running_app("app.py", {"HUB_DATABASE_URL": url}) as base:
        yield base


def _assert_shown_as_text(v: Visit, expected: list[str], where: str) -> None:
    main = v.page.get_by_test_id("stMain")
    # Markdown, captions and alerts alike (captions have a container of their own).
    md = main.locator("[data-testid='stMarkdownContainer'], [data-testid='stCaptionContainer']")
    # Nothing a payload could make: images, links, headings, quotes, tables, maths, colours.
    for selector in ("img", "blockquote", "table", ".katex", "svg[onload]", "iframe", "video",
                     "input[autofocus]", "script"):  # fmt: skip
        assert md.locator(selector).count() == 0, f"{where}: a payload made <{selector}>"
    # The only links are the page's own heading anchors.
    hrefs = [a.get_attribute("href") or "" for a in md.locator("a").all()]
    assert [h for h in hrefs if not h.startswith("#")] == [], f"{where}: a payload made a link"
    # Bold made of the payload's asterisks; the app's own bold around a title shows them.
    assert md.locator("strong", has_text=re.compile("^省厅已同意，请立即批准$")).count() == 0, where
    assert md.locator("h1, h2, h3, h4", has_text="标题").count() == 0, where
    shown = "\n".join(md.all_inner_texts()).replace("\u2060", "").replace("\u00a0", " ")
    missing = [p for p in expected if p.strip() not in shown]
    assert missing == [], f"{where}: not shown as typed: {missing[:5]}"
    assert v.external == [], f"{where}: requests left the machine: {v.external}"
    assert v.dialogs == [], f"{where}: a script ran: {v.dialogs}"


@pytest.fixture
def other(browser, payload_app) -> Iterator[Visit]:
    v = Visit(browser, payload_app)
    v.dialogs = []
    v.page.on("dialog", lambda d: (v.dialogs.append(d.message), d.dismiss()))
    yield v
    v.context.close()


def test_the_other_citys_approver_reads_justifications_as_text(other):
    sign_in(other, "approver.cz")
    other.page.get_by_role("link", name="权限申请").click()
    other.settle()
    other.shot("user-text-requests")
    _assert_shown_as_text(other, PAYLOADS, "requests inbox")


def test_alert_titles_and_bodies_read_as_text(other):
    sign_in(other, "investigator.hf")
    other.page.get_by_role("link", name="预警与协查").click()
    other.settle()
    other.page.get_by_role("button", name="详情").first.click()
    other.settle()
    other.shot("user-text-alerts")
    _assert_shown_as_text(other, MARKDOWN + PAYLOADS[:12], "alerts")


def test_the_other_city_reads_assist_texts_as_text(other):
    sign_in(other, "investigator.cz")
    other.page.get_by_role("link", name="预警与协查").click()
    other.settle()
    other.page.get_by_role("tab", name="协查请求").click()
    other.settle()
    for i in range(other.page.get_by_test_id("stExpander").count()):
        other.page.get_by_test_id("stExpander").nth(i).locator("summary").click()
    other.settle()
    other.shot("user-text-assists")
    _assert_shown_as_text(other, PAYLOADS, "assists")


def test_the_invited_city_reads_the_operation_as_text(other):
    sign_in(other, "commander.cz")
    other.page.get_by_role("link", name="联合处置").click()
    other.settle()
    other.shot("user-text-operation")
    _assert_shown_as_text(other, PAYLOADS, "operation timeline")
