"""The province page in a real browser: the map renders and nothing leaves the machine."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_province_page_renders_the_offline_map(visit):
    visit.goto()
    page = visit.page
    page.get_by_test_id("stDeckGlJsonChart").first.wait_for(timeout=30_000)
    assert page.get_by_text("全省数据资源概况").count() == 1
    assert page.get_by_test_id("stMetric").count() == 7
    assert page.locator("canvas").count() >= 1, "deck.gl drew on a canvas"
    visit.shot("province-zh")
    assert visit.external == [], f"requests tried to leave the machine: {visit.external}"


def test_language_switch_to_english(visit):
    visit.goto()
    visit.page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    visit.page.get_by_role("option", name="English").click()
    visit.settle()
    assert visit.page.get_by_text("Data held across the province").count() == 1
    visit.shot("province-en")
    assert visit.external == []
