"""The situation map in a real browser: hexagons, points, a city view and playback draw on
the offline map, a click opens a feature, and nothing leaves the machine."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def _open(visit, username: str) -> None:
    sign_in(visit, username)
    visit.page.get_by_test_id("stSidebarNav").get_by_text("态势图").click()
    visit.settle()
    visit.page.get_by_test_id("stDeckGlJsonChart").first.wait_for(timeout=30_000)


def _pick(visit, label: str, option: str) -> None:
    box = visit.page.get_by_test_id("stMultiSelect").filter(has_text=label)
    box.locator("input").click()
    visit.page.get_by_role("option", name=option).first.click()
    visit.page.keyboard.press("Escape")
    visit.settle()


def test_commander_sees_province_then_city_points_then_playback(visit):
    _open(visit, "commander.hf")
    page = visit.page
    assert page.get_by_text("全省态势图").count() == 1
    assert page.locator("canvas").count() >= 1, "deck.gl drew on a canvas"
    visit.shot("situation-province")

    page.get_by_role("radio", name="近7天").click()
    visit.settle()
    page.get_by_role("radio", name="点位").click()
    visit.settle()
    _pick(visit, "城市", "合肥市")
    assert page.get_by_text("可查看点位").count() == 1, "one city's week fits as points"
    visit.shot("situation-city-points")

    page.get_by_text("按小时回放").click()
    visit.settle()
    assert page.get_by_test_id("stSlider").count() == 1
    assert page.get_by_role("button", name="播放").count() == 1
    visit.shot("situation-playback")
    assert visit.external == [], f"requests tried to leave the machine: {visit.external}"
    assert not [e for e in visit.errors if "Traceback" in e]


def test_analyst_sees_the_map_and_officer_has_no_entry(visit):
    _open(visit, "analyst")
    assert visit.page.get_by_text("全省态势图").count() == 1
    assert visit.external == []


def test_officer_has_no_situation_page(visit):
    sign_in(visit, "officer.hf")
    nav = visit.page.get_by_test_id("stSidebarNav")
    assert nav.get_by_text("态势图").count() == 0
    visit.goto("situation")
    assert visit.page.get_by_text("全省态势图").count() == 0


def _incident_dot(png: bytes) -> tuple[int, int]:
    """The centre of an incident dot in a canvas screenshot: the pixel with the most
    neighbours in a severity colour (help requests, borders and labels have others)."""
    import io

    import numpy as np
    from PIL import Image

    from geo.layers import SEVERITY_COLORS

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    mask = np.zeros(rgb.shape[:2], dtype=bool)
    for color in SEVERITY_COLORS.values():
        mask |= np.abs(rgb - np.array(color[:3])).sum(axis=2) < 60
    ys, xs = np.nonzero(mask)
    assert len(xs), "no incident dot drawn"
    padded = np.pad(mask, 3).astype(int)
    windows = sum(padded[3 + dy : 3 + dy + mask.shape[0], 3 + dx : 3 + dx + mask.shape[1]]
                  for dy in range(-3, 4) for dx in range(-3, 4))  # fmt: skip
    best = np.argmax(windows[ys, xs])
    return int(xs[best]), int(ys[best])


def test_a_clicked_incident_starts_a_joint_operation(visit):
    """Click an incident dot: the panel offers the joint response, which opens with the
    incident and its position filled in."""
    _open(visit, "commander.hf")
    page = visit.page
    page.get_by_role("radio", name="近7天").click()
    visit.settle()
    page.get_by_role("radio", name="点位").click()
    visit.settle()
    _pick(visit, "城市", "合肥市")
    canvas = page.get_by_test_id("stDeckGlJsonChart").first.locator("canvas").first
    page.wait_for_timeout(1500)  # the dots are drawn after the chart element appears
    x, y = _incident_dot(canvas.screenshot())
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    visit.settle()
    start = page.get_by_role("button", name="以此警情发起联合处置")
    assert start.count() == 1, "the clicked dot opened in the panel"
    visit.shot("situation-clicked-incident")
    start.click()
    visit.settle()
    assert page.get_by_text("已按态势图上选中的警情").count() == 1
    assert page.get_by_role("spinbutton", name="警情编号").input_value() != "0"
    visit.shot("response-prefilled")
    assert visit.external == [], f"requests tried to leave the machine: {visit.external}"
