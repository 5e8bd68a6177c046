"""The founding story in two browsers: a 合肥 investigator follows the pursuit plate, sees
滁州's sightings only as a pointer, requests access to every hidden city in one click; a
滁州 approver approves in their own session; the investigator's results open in place,
without a click or a new search."""

from __future__ import annotations

import pytest

from hub.demo import PURSUIT_CASE_NO, PURSUIT_PLATE
from tests.browser.conftest import Visit, open_case, sign_in

pytestmark = pytest.mark.browser


def _search_pursuit(v: Visit) -> None:
    v.page.get_by_role("link", name="跨市查询").click()
    v.settle()
    v.page.get_by_label("在办案件编号").fill(PURSUIT_CASE_NO)
    v.page.get_by_label("在办案件编号").press("Enter")
    v.settle()
    v.page.get_by_label("查询内容").fill(PURSUIT_PLATE)
    v.page.get_by_role("button", name="查询").click()
    v.settle()


def test_request_and_approval_open_the_neighbours_sightings(browser, app_url):
    requester, approver = Visit(browser, app_url), Visit(browser, app_url)
    try:
        sign_in(requester, "investigator.hf")
        _search_pursuit(requester)
        page = requester.page
        assert page.get_by_text("滁州市有 3 条敏感记录", exact=False).count() == 1
        assert page.get_by_role("heading", name="合肥市").count() == 1
        assert page.get_by_role("heading", name="滁州市").count() == 0
        requester.shot("pursuit-1-pointer")
        form = page.get_by_test_id("stForm").filter(has_text="一键申请")
        form.get_by_label("申请理由").fill("追逃：嫌疑车辆驶入滁州，需调阅卡口记录")
        form.get_by_role("button", name="全部申请").click()
        requester.settle()
        assert page.get_by_text("获批后结果将在本页自动打开", exact=False).count() == 1
        assert page.get_by_text("滁州市 · 敏感 · 待审批", exact=False).count() == 1

        sign_in(approver, "approver.cz")
        approver.page.get_by_role("link", name="权限申请").click()
        approver.settle()
        assert approver.page.get_by_text(PURSUIT_PLATE).count() >= 1
        approver.page.get_by_label("审批意见（必填）").first.fill("同意，限本案使用")
        approver.page.get_by_role("button", name="批准").first.click()
        approver.settle()
        assert approver.page.get_by_text("已批准").count() >= 1
        approver.shot("pursuit-2-approved")

        # No click on the requester's side: the page saw the approval and re-ran the search.
        page.get_by_role("heading", name="滁州市").wait_for(timeout=30_000)
        requester.settle()
        assert page.get_by_text("依据授权").count() == 1
        assert page.get_by_text("滁州市有 3 条敏感记录", exact=False).count() == 0
        requester.shot("pursuit-3-crossed")

        # ... and the trajectory now crosses the border into 滁州.
        page.get_by_role("link", name="车辆轨迹").click()
        requester.settle()
        page.get_by_label("车牌").fill(PURSUIT_PLATE)
        page.get_by_role("button", name="查询").click()
        requester.settle()
        assert page.get_by_role("heading", name="跨市行驶").count() == 1
        assert page.get_by_text("合肥市 → 滁州市").count() >= 1
        assert page.get_by_text("滁州市有 3 条敏感记录", exact=False).count() == 0
        requester.shot("pursuit-4-trajectory-crosses")
        assert requester.external == [] and approver.external == []
    finally:
        requester.context.close()
        approver.context.close()


def test_break_glass_opens_at_once_and_the_auditor_sees_the_alarm(
    browser, app_url, seeded_sqlite_url
):
    inv, auditor = Visit(browser, app_url), Visit(browser, app_url)
    try:
        sign_in(inv, "investigator.wh")
        inv.page.get_by_role("link", name="跨市查询").click()
        inv.settle()
        inv.page.get_by_label("查询目的").click()
        inv.page.get_by_role("option", name="追逃追捕").click()
        inv.page.get_by_label("在办案件编号").fill(open_case(seeded_sqlite_url, "340200"))
        inv.page.get_by_label("在办案件编号").press("Enter")
        inv.settle()
        inv.page.get_by_label("查询内容").fill(PURSUIT_PLATE)
        inv.page.get_by_role("button", name="查询").click()
        inv.settle()
        assert inv.page.get_by_role("heading", name="滁州市").count() == 0
        inv.page.get_by_text("紧急授权（破窗） · 滁州市").click()
        expander = inv.page.get_by_test_id("stExpander").filter(
            has_text="紧急授权（破窗） · 滁州市"
        )
        expander.get_by_label("申请理由").fill("追逃：嫌疑车辆正驶入滁州")
        expander.get_by_role("button", name="确认紧急授权").click()
        inv.settle()
        assert inv.page.get_by_text("已生效（2小时）", exact=False).count() == 1
        inv.page.get_by_role("button", name="查询").click()
        inv.settle()
        assert inv.page.get_by_role("heading", name="滁州市").count() == 1
        inv.shot("break-glass-1-opened")

        sign_in(auditor, "auditor")
        auditor.page.get_by_role("tab", name="告警").click()
        auditor.settle()
        assert auditor.page.get_by_text("紧急授权（破窗）", exact=False).count() >= 1
        auditor.shot("break-glass-2-auditor-alarm")
        assert inv.external == [] and auditor.external == []
    finally:
        inv.context.close()
        auditor.context.close()
