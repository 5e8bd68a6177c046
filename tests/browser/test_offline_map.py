"""Signed-in pages in a real browser: the offline map renders, each role sees its own
pages, a forbidden page cannot be opened by URL, and nothing leaves the machine."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_sign_in_page_first(visit):
    visit.goto()
    assert visit.page.get_by_role("button", name="登录").count() == 1
    assert visit.page.get_by_test_id("stDeckGlJsonChart").count() == 0
    visit.shot("sign-in")
    assert visit.external == []


def test_officer_sees_the_offline_province_map(visit):
    sign_in(visit, "officer.hf")
    page = visit.page
    page.get_by_test_id("stDeckGlJsonChart").first.wait_for(timeout=30_000)
    assert page.get_by_text("全省数据资源概况").count() == 1
    assert page.get_by_test_id("stMetric").count() == 7
    assert page.locator("canvas").count() >= 1, "deck.gl drew on a canvas"
    nav = page.get_by_test_id("stSidebarNav")
    assert nav.count() == 0 or nav.get_by_text("审计").count() == 0
    visit.shot("officer-province")
    assert visit.external == [], f"requests tried to leave the machine: {visit.external}"


def test_officer_cannot_open_the_audit_page_by_url(visit):
    sign_in(visit, "officer.hf")
    visit.goto("audit")
    assert visit.page.get_by_text("审计与告警").count() == 0
    assert visit.page.get_by_test_id("stDataFrame").count() <= 1  # the province table at most
    visit.shot("officer-audit-by-url")
    assert visit.external == []


def test_auditor_sees_audit_and_no_records(visit):
    sign_in(visit, "auditor")
    page = visit.page
    assert page.get_by_text("审计与告警").count() == 1
    assert page.get_by_test_id("stDeckGlJsonChart").count() == 0
    page.get_by_role("tab", name="链校验").click()
    page.get_by_role("button", name="校验审计链").click()
    visit.settle()
    assert page.get_by_text("审计链完整").count() == 1
    visit.shot("auditor-audit")
    assert visit.external == []


def test_language_switch_to_english(visit):
    sign_in(visit, "officer.hf")
    visit.page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    visit.page.get_by_role("option", name="English").click()
    visit.settle()
    assert visit.page.get_by_text("Data held across the province").count() == 1
    visit.shot("officer-province-en")
    assert visit.external == []
