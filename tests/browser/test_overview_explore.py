"""Overview (normal and wall mode), Explore with a watermarked export, and the auditor
tracing that file back to its export — in a real browser, offline."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS, Visit, sign_in

pytestmark = pytest.mark.browser


def test_leader_overview_and_wall_mode(visit):
    sign_in(visit, "leader")
    page = visit.page
    # The first run after the server starts computes the overview cold: wait for it.
    page.get_by_test_id("stMetric").nth(6 + 16 - 1).wait_for(timeout=60_000)
    assert page.get_by_text("全省态势总览").count() == 1
    # Vega-Lite loads its renderer lazily: wait for the first chart before counting.
    page.get_by_test_id("stVegaLiteChart").first.wait_for(timeout=60_000)
    assert page.get_by_test_id("stVegaLiteChart").count() >= 2
    visit.shot("overview-leader")
    page.get_by_role("button", name="大屏模式").click()
    visit.settle()
    assert not page.get_by_test_id("stSidebar").is_visible(), "wall mode hides the controls"
    visit.shot("overview-wall")
    assert visit.external == []


def test_analyst_exports_and_auditor_traces_the_file(visit, browser, app_url):
    sign_in(visit, "analyst")
    page = visit.page
    page.get_by_test_id("stSidebarNav").get_by_text("数据分析").click()
    visit.settle()
    assert page.get_by_text("警情数据分析").count() == 1
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
    visit.shot("explore-analyst")
    page.get_by_role("button", name="生成导出文件").click()
    visit.settle()
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").get_by_role("button").click()
    ARTIFACTS.mkdir(exist_ok=True)
    exported = ARTIFACTS / "explore-export.xlsx"
    download.value.save_as(str(exported))

    auditor = Visit(browser, app_url)
    try:
        sign_in(auditor, "auditor")
        auditor.page.get_by_role("tab", name="外泄文件溯源").click()
        auditor.settle()
        auditor.page.locator("input[type=file]").set_input_files(str(exported))
        auditor.settle()
        assert auditor.page.get_by_text("analyst（数据分析员）").count() >= 1
        auditor.shot("audit-leak-traced")
        assert auditor.external == []
    finally:
        auditor.context.close()
    assert visit.external == []
