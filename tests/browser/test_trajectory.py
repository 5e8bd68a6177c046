"""The pursuit plate's trajectory in a real browser: a 滁州 investigator sees the 滁州 path
on the offline map and 合肥's sightings as a pointer, with nothing fetched from outside.
(滁州's side is used because the pursuit story test grants 合肥's investigator access.)"""

from __future__ import annotations

import pytest

from hub.demo import PURSUIT_PLATE
from tests.browser.conftest import open_case, sign_in

pytestmark = pytest.mark.browser


def test_trajectory_shows_the_path_and_the_neighbours_pointer(visit, seeded_sqlite_url) -> None:
    sign_in(visit, "investigator.cz")
    page = visit.page
    page.get_by_role("link", name="车辆轨迹").click()
    visit.settle()
    page.get_by_label("在办案件编号").fill(open_case(seeded_sqlite_url, "341100"))
    page.get_by_label("在办案件编号").press("Enter")
    visit.settle()
    page.get_by_label("车牌").fill(PURSUIT_PLATE)
    page.get_by_role("button", name="查询").click()
    visit.settle()
    assert page.get_by_test_id("stDeckGlJsonChart").count() == 1
    page.locator("canvas").first.wait_for(state="attached", timeout=30_000)
    assert page.get_by_text("合肥市有 6 条敏感记录", exact=False).count() == 1
    assert page.get_by_role("button", name="提交申请").count() == 1
    visit.shot("trajectory-1")
    page.get_by_text("合肥市有 6 条敏感记录", exact=False).scroll_into_view_if_needed()
    visit.settle()
    visit.shot("trajectory-2-pointer")
    assert visit.external == []
