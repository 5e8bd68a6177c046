"""Altair charts shared by Overview and Explore (Vega-Lite ships with Streamlit: nothing
is fetched from the network to draw them)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from ui.i18n import t

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _theme(chart: alt.Chart, dark: bool) -> alt.Chart:
    """Light or wall (dark) colours for the chart's background, axes and legend."""
    ink = "#dddddd" if dark else "#333333"
    return (
        chart.configure(background="#0e1117" if dark else "#ffffff")
        .configure_view(strokeWidth=0)
        .configure_axis(labelColor=ink, titleColor=ink, gridColor="#333" if dark else "#ddd")
        .configure_legend(labelColor=ink, titleColor=ink)
    )


def trend(frame: pd.DataFrame, names: dict[str, str], *, dark: bool = False) -> alt.Chart:
    """Daily counts per city (`city_code`, `day`, `count`), one line per city."""
    data = frame.assign(city=frame.city_code.map(names), day=pd.to_datetime(frame.day))
    chart = (
        alt.Chart(data, height=300)
        .mark_line(point=False, strokeWidth=2)
        .encode(
            x=alt.X("day:T", title=None, axis=alt.Axis(format="%m-%d")),
            y=alt.Y("count:Q", title=t("chart_incidents")),
            color=alt.Color("city:N", title=t("city"), legend=alt.Legend(columns=2)),
            tooltip=[alt.Tooltip("city:N", title=t("city")),
                     alt.Tooltip("day:T", title=t("chart_day"), format="%Y-%m-%d"),
                     alt.Tooltip("count:Q", title=t("chart_incidents"))],
        )
    )  # fmt: skip
    return _theme(chart, dark)


def bars(frame: pd.DataFrame, category: str, *, title: str, dark: bool = False) -> alt.Chart:
    """Counts per category (`category`, `count`), largest first."""
    chart = (
        alt.Chart(frame, height=300)
        .mark_bar(color="#e4572e")
        .encode(
            y=alt.Y(f"{category}:N", sort="-x", title=None),
            x=alt.X("count:Q", title=title),
            tooltip=[alt.Tooltip(f"{category}:N", title=title), alt.Tooltip("count:Q")],
        )
    )  # fmt: skip
    return _theme(chart, dark)


def hour_of_week(frame: pd.DataFrame, *, dark: bool = False) -> alt.Chart:
    """A weekday × local hour grid of counts (`weekday` 0=Monday, `hour`, `count`)."""
    days = [t(f"weekday_{d}") for d in WEEKDAYS]
    grid = pd.MultiIndex.from_product([range(7), range(24)], names=["weekday", "hour"])
    data = (
        frame.set_index(["weekday", "hour"])["count"].reindex(grid, fill_value=0).reset_index()
        if len(frame) else grid.to_frame(index=False).assign(count=0)
    )  # fmt: skip
    data["day"] = data.weekday.map(dict(enumerate(days)))
    chart = (
        alt.Chart(data, height=230)
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title=t("chart_hour")),
            y=alt.Y("day:N", sort=days, title=None),
            color=alt.Color("count:Q", scale=alt.Scale(scheme="orangered"), title=t("chart_incidents")),
            tooltip=[alt.Tooltip("day:N", title=t("chart_weekday")),
                     alt.Tooltip("hour:O", title=t("chart_hour")), alt.Tooltip("count:Q")],
        )
    )  # fmt: skip
    return _theme(chart, dark)
