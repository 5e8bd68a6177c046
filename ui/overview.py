"""Overview furniture: the wall-mode stylesheet and how KPI changes are written."""

from __future__ import annotations

from datetime import timedelta

import altair as alt

from ui.i18n import t

# Command-room wall: dark, no sidebar, header or toolbar, the whole board on one screen
# (1920×1080; a 3840×2160 wall shows the same board scaled to twice the size), numbers and
# labels readable across a room. Streamlit's chrome is hidden and its gaps tightened so
# that the board's fixed heights (WALL_HEIGHTS) add up to less than the screen.
WALL_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stHeader"], [data-testid="stToolbar"],
[data-testid="stSidebarCollapsedControl"], [data-testid="stDecoration"],
[data-testid="stStatusWidget"] { display: none !important; }
[data-testid="stApp"], [data-testid="stAppViewContainer"] { background: #0e1117; color: #e8e8e8; }
[data-testid="stMainBlockContainer"] { padding: 0.6rem 1.2rem 0 1.2rem !important; max-width: 100%; }
[data-testid="stVerticalBlock"] { gap: 0.5rem; }
h1, h2, h3, h4, [data-testid="stMetricLabel"] p, [data-testid="stCaptionContainer"] p,
[data-testid="stMarkdownContainer"] p { color: #e8e8e8 !important; }
h2 { font-size: 1.9rem !important; padding: 0 !important; }
h4 { font-size: 1.3rem !important; padding: 0.3rem 0 0.3rem 0 !important; line-height: 1.4; }
[data-testid="stMetricValue"] { font-size: 2.6rem !important; color: #ffffff; line-height: 1.1; }
[data-testid="stMetricLabel"] p { font-size: 1.1rem !important; }
[data-testid="stMetricDelta"] { font-size: 1rem !important; background: transparent !important; }
[data-testid="stMetricDelta"] div { color: #ffb86b !important; }
.st-key-wall-cities [data-testid="stMetricValue"] { font-size: 1.8rem !important; }
[data-testid="stCaptionContainer"] p { font-size: 1.05rem !important; }
@media (min-width: 3000px) and (min-height: 1800px) {
  /* The 1920×1080 board, drawn at twice the size: charts measure the unscaled width. */
  [data-testid="stMain"] { width: 50vw; height: 50vh; transform: scale(2); transform-origin: 0 0; }
}
</style>"""
# Pixel heights of the wall's charts and map at 1920×1080 (scaled twice at 4K).
WALL_HEIGHTS = {"map": 680, "trend": 300, "hour_of_week": 220, "type_mix": 300}
# The wall's three columns (map | trend and hour of week | cities and type mix) and the
# 1920-px layout they share: WALL_CSS's side padding (1.2rem) and Streamlit's column gap
# (1rem). A chart sized from its container would measure the *scaled* box at 4K (twice
# as wide) and spill into the next column, so the wall's charts get these widths.
WALL_COLUMNS = (5, 5, 4)
_WALL_PX, _WALL_PAD_PX, _WALL_GAP_PX = 1920, 2 * 19.2, 16
# Every page: KPI figures shrink with the window instead of being cut to "1,…" at
# 1,024 px, and their labels wrap instead of being cut to "合…".
KPI_CSS = """<style>
[data-testid="stMetricValue"] { font-size: clamp(1.2rem, 2.3vw, 2.25rem); }
[data-testid="stMetricValue"] > div { overflow: visible; text-overflow: clip; }
[data-testid="stMetricLabel"] p, [data-testid="stMetricDelta"] div {
  white-space: normal; overflow-wrap: anywhere; }
[data-testid="stMetricDelta"] { max-width: 100%; height: auto; }
[data-testid="stMetricDelta"] p { white-space: normal; overflow-wrap: break-word; }
</style>"""


def wall_width(column: int) -> int:
    """Pixels a chart may take in wall column `column` (0, 1, 2) at 1920 px, with a
    margin for the scrollbar and rounding."""
    room = _WALL_PX - _WALL_PAD_PX - _WALL_GAP_PX * (len(WALL_COLUMNS) - 1)
    return int(room * WALL_COLUMNS[column] / sum(WALL_COLUMNS)) - 12


def wall_chart(chart: alt.Chart, column: int, height: int) -> alt.Chart:
    """`chart` drawn exactly `wall_width(column)` wide, legend and axes included."""
    return chart.properties(
        width=wall_width(column), height=height,
        autosize=alt.AutoSizeParams(type="fit", contains="padding"),
    )  # fmt: skip


def kpi_delta(change_pct: float | None) -> str | None:
    """'+12% vs 7-day mean', or None when there is nothing to compare with."""
    if change_pct is None or change_pct != change_pct:  # None or NaN
        return None
    return t("ov_delta", pct=f"{change_pct:+.0f}")


def minutes(value: timedelta | None) -> str | None:
    """A median decision time as people say it, or None without decisions."""
    if value is None:
        return None
    m = value.total_seconds() / 60
    return t("ov_median_decision", time=f"{m:.0f} min" if m < 120 else f"{m / 60:.1f} h")
