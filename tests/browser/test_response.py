"""A two-city operation in two browsers: 合肥's commander opens an operation on the 滁州
line and requests a 滁州 unit; 滁州's commander accepts the invitation, accepts the
request and dispatches the unit; 合肥's board shows it dispatched. Nothing leaves the
machine, and the units table shows every column (the estimated arrival included) at
1,600 and 1,024 px wide."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import Visit, sign_in

pytestmark = pytest.mark.browser
WAIT = 30_000


def _open_board(visit: Visit, username: str) -> None:
    sign_in(visit, username)
    visit.page.get_by_test_id("stSidebarNav").get_by_text("联合处置").click()
    visit.settle()


def _number(visit: Visit, label: str, value: str) -> None:
    box = visit.page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")


def _choose(visit: Visit, label: str, option: str) -> None:
    """Pick an option; a live fragment's refresh may close the list: open it again."""
    for _ in range(6):
        try:
            visit.page.get_by_label(label).click(timeout=5_000)
            visit.page.get_by_role("option", name=re.compile(option)).first.click(timeout=3_000)
            visit.settle()
            return
        except Exception:  # noqa: BLE001 — redrawn by the 5 s refresh; look again
            visit.page.keyboard.press("Escape")
            visit.page.wait_for_timeout(500)
    raise AssertionError(f"could not choose {option} in {label}")


def _click(visit: Visit, selector: str) -> None:
    """Click a button that a live fragment may redraw under the pointer: retry briefly."""
    for _ in range(5):
        try:
            visit.page.locator(selector).first.click(timeout=5_000)
            visit.settle()
            return
        except Exception:  # noqa: BLE001 — redrawn by the 5 s refresh; look again
            visit.page.wait_for_timeout(1000)
    raise AssertionError(f"could not click {selector}")


def _units_table_fits(visit: Visit) -> None:
    """Every column of the units table is on screen: its grid needs no horizontal scroll,
    and its four headers are there (at 1,600 px the ETA column used to be cut off)."""
    page = visit.page
    for width in (1600, 1024):
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_timeout(1500)
        grid = page.get_by_test_id("stDataFrame").first
        grid.scroll_into_view_if_needed()
        scroll, client = grid.locator(".dvn-scroller").evaluate(
            "e => [e.scrollWidth, e.clientWidth]"
        )
        assert scroll <= client + 1, f"{width} px: the units table scrolls ({scroll} > {client})"
        box, view = grid.bounding_box(), page.viewport_size
        assert box["x"] >= 0 and box["x"] + box["width"] <= view["width"], (width, box)
        headers = [h.strip() for h in grid.locator("[role=columnheader]").all_text_contents()]
        assert headers == ["呼号", "预计到达", "状态", "力量"], (width, headers)
        visit.shot(f"response-units-{width}")
    page.set_viewport_size({"width": 1600, "height": 1000})


def _uploader_speaks_chinese(visit: Visit) -> None:
    """Streamlit's uploader says "Upload" and "200MB per file" in English (it cannot be
    told otherwise): ui.frame draws ours over them, with the real limit."""
    page = visit.page
    page.get_by_text("导入外市共享的警情").first.click()
    zone = page.get_by_test_id("stFileUploaderDropzone").first
    zone.wait_for(timeout=WAIT)
    hint, hidden = (
        zone.get_by_test_id("stFileUploaderDropzoneInstructions")
        .locator("span")
        .evaluate("e => [getComputedStyle(e, '::after').content, getComputedStyle(e).fontSize]")
    )
    assert "单个文件不超过 200 MB" in hint and hidden == "0px", (hint, hidden)
    browse = zone.locator("button p").evaluate("e => getComputedStyle(e, '::after').content")
    assert "选择文件" in browse, browse


def test_two_cities_request_accept_and_dispatch(browser, app_url):
    hf, cz = Visit(browser, app_url), Visit(browser, app_url)
    try:
        _open_board(hf, "commander.hf")
        page = hf.page
        page.get_by_label("行动名称").fill("交界联合处置演示")
        _choose(hf, "类型", "计划性活动")
        _number(hf, "经度", "117.85")
        _number(hf, "纬度", "32.10")
        page.get_by_test_id("stMultiSelect").filter(has_text="邀请参与地市").locator(
            "input"
        ).click()
        page.get_by_role("option", name="滁州市").click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="发起行动").click()
        hf.settle()
        page.get_by_test_id("stDeckGlJsonChart").first.wait_for(timeout=WAIT)
        hf.shot("response-hf-board")

        _open_board(cz, "commander.cz")
        cz.page.get_by_text("邀请本市参与此联合行动").wait_for(timeout=WAIT)
        _click(cz, "[class*='st-key-resp_accept'] button")
        cz.page.get_by_text("选择力量").wait_for(timeout=WAIT)

        # 合肥 asks 滁州 for one of its units (the board refreshed with 滁州 taking part).
        page.get_by_text("已参与").first.wait_for(timeout=WAIT)
        _choose(hf, "选择力量", "滁州市")
        _click(hf, "[class*='st-key-resp_unit_go'] button")
        # the request line (the units table also says it, in its hidden accessibility copy)
        page.locator("text=已请求 >> visible=true").first.wait_for(timeout=WAIT)

        # 滁州 accepts and dispatches it: steps only the owning city may take.
        cz.page.locator("[class*='st-key-rr-'][class*='-accepted'] button").first.wait_for(
            timeout=WAIT
        )
        _click(cz, "[class*='st-key-rr-'][class*='-accepted'] button")
        _click(cz, "[class*='st-key-rr-'][class*='-dispatched'] button")
        cz.page.locator("[class*='st-key-rr-'][class*='-en_route']").first.wait_for(timeout=WAIT)
        cz.shot("response-cz-dispatched")

        page.get_by_text(re.compile(r"已派出（#\d+）")).first.wait_for(timeout=WAIT)
        assert page.locator("[class*='st-key-rr-'][class*='-dispatched']").count() == 0, (
            "合肥 may not dispatch 滁州's unit"
        )
        hf.shot("response-hf-dispatched")
        _units_table_fits(hf)
        _uploader_speaks_chinese(hf)
        for v in (hf, cz):
            assert v.external == [], f"requests tried to leave the machine: {v.external}"
            assert not [e for e in v.errors if "Traceback" in e]
    finally:
        hf.context.close()
        cz.context.close()
