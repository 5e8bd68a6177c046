"""Wall mode on the screens command rooms have: the whole overview fits 1920×1080 and
3840×2160 without scrolling (page height ≤ viewport, every element box inside it), with a
clock, "data as of" and the map's legend; at 1,024 px the KPI figures are not cut."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

# Boxes of every element Streamlit drew (hidden ones have no box) and the scroll height of
# the page's scrolling container.
_MEASURE = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const boxes = [...document.querySelectorAll('[data-testid="stElementContainer"]')]
    .map(e => e.getBoundingClientRect())
    .filter(r => r.width > 0 && r.height > 0)
    .map(r => [r.left, r.top, r.right, r.bottom]);
  return {scroll: main.scrollHeight, client: main.clientHeight,
          doc: document.documentElement.scrollHeight, boxes: boxes};
}"""
# Charts (canvas or svg) drawn wider than the column that holds them: a chart that sized
# itself from the scaled (4K) width spills into its neighbour.
_SPILL = """() => [...document.querySelectorAll(
    '[data-testid="stColumn"] canvas, [data-testid="stColumn"] svg.marks')]
  .map(e => [e, e.closest('[data-testid="stColumn"]')])
  .map(([e, col]) => [e.getBoundingClientRect(), col.getBoundingClientRect()])
  .filter(([r, c]) => r.width > 0 && (r.left < c.left - 1 || r.right > c.right + 1))
  .map(([r, c]) => [r.left, r.right, c.left, c.right])"""
_CUT = """() => [...document.querySelectorAll(
    '[data-testid="stMetricValue"] div, [data-testid="stMetricLabel"] p, '
    + '[data-testid="stMetricDelta"], [data-testid="stMetricDelta"] div')]
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160)])
def test_wall_mode_fits_the_screen(visit, size):
    w, h = size
    v = visit
    v.page.set_viewport_size({"width": w, "height": h})
    sign_in(v, "leader")
    v.page.get_by_role("button", name="大屏模式").click()
    v.settle()
    v.page.get_by_test_id("stDeckGlJsonChart").first.wait_for(timeout=30_000)
    v.page.wait_for_timeout(2500)  # charts and the map draw after their elements
    m = v.page.evaluate(_MEASURE)
    assert m["scroll"] <= m["client"] <= h and m["doc"] <= h, m
    outside = [b for b in m["boxes"] if b[0] < -1 or b[1] < -1 or b[2] > w + 1 or b[3] > h + 1]
    assert outside == [], f"{len(outside)} element boxes outside {w}×{h}: {outside[:5]}"
    assert v.page.get_by_text(re.compile(r"^北京时间 \d{2}:\d{2}$")).count() == 1, "the clock"
    assert v.page.get_by_text("数据截至").count() == 1, "data as of"
    assert v.page.get_by_text("近7天警情数", exact=False).count() == 1, "the map's legend"
    assert v.page.evaluate(_CUT) == [], "a KPI figure or label is cut"
    assert v.page.evaluate(_SPILL) == [], "a chart is wider than its column"
    v.shot(f"wall-{w}x{h}")
    assert v.external == []


def test_overview_kpis_are_whole_at_1024(visit):
    v = visit
    v.page.set_viewport_size({"width": 1024, "height": 768})
    sign_in(v, "commander.hf")
    v.page.get_by_test_id("stMetricValue").first.wait_for(timeout=30_000)
    assert v.page.evaluate(_CUT) == []
    v.shot("overview-1024")
