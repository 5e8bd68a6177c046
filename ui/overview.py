"""Overview furniture: the wall-mode stylesheet and how KPI changes are written."""

from __future__ import annotations

from datetime import timedelta

from ui.i18n import t

# Command-room wall: dark, no sidebar, header or toolbar, numbers readable across a room.
WALL_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stHeader"], [data-testid="stToolbar"],
[data-testid="stSidebarCollapsedControl"] { display: none !important; }
[data-testid="stApp"], [data-testid="stAppViewContainer"] { background: #0e1117; color: #e8e8e8; }
[data-testid="stMainBlockContainer"] { padding-top: 1rem; max-width: 100%; }
h1, h2, h3, [data-testid="stMetricLabel"] p { color: #e8e8e8 !important; }
[data-testid="stMetricValue"] { font-size: 3.2rem !important; color: #ffffff; }
[data-testid="stMetricLabel"] p { font-size: 1.15rem !important; }
</style>"""


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
