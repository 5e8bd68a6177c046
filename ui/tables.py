"""Record tables as people read them: local time (Asia/Shanghai), labelled columns, and
the viewer's mark on every table of records."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from hub.exports import view_code
from ui.i18n import catalogue, t
from ui.text import plain

LOCAL_TZ = "Asia/Shanghai"


def local_time(value: datetime, fmt: str = "%m-%d %H:%M") -> str:
    """A UTC timestamp as people in the province read it."""
    return value.astimezone(ZoneInfo(LOCAL_TZ)).strftime(fmt)


def local_times(values: pd.Series, fmt: str = "%m-%d %H:%M") -> pd.Series:
    """`local_time` for a whole column at once (thousands of map points per rerun)."""
    return pd.to_datetime(values, utc=True).dt.tz_convert(LOCAL_TZ).dt.strftime(fmt)


def localise(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps shown in Asia/Shanghai; column names from the catalogue (`field_<name>`)."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert(LOCAL_TZ).dt.strftime("%Y-%m-%d %H:%M:%S")
    if "classification" in out:
        out["classification"] = out["classification"].map(lambda level: t(f"level_{level}"))
    known = catalogue()
    return out.rename(columns={c: t(f"field_{c}") for c in out.columns if f"field_{c}" in known})


def record_table(hub, principal, frame: pd.DataFrame, *, transpose: bool = False, **kw) -> None:
    """Records on a page: every row (or, transposed, a row) carries the viewer's visible
    mark, and a line under the table names the viewer, the time and the mark.

    The toolbar's download and the copy are off app-wide (`client.disableDataExport`), but
    that hides buttons only: the data is in the browser. The mark is what traces a copy
    made anyway (a screenshot, a photo, text typed out) back to who saw it and when;
    `hub watermark identify` and the audit page's leak tracing read it.

    Parameters
    ----------
    frame
        The records as they are to be shown (already localised).
    transpose
        One record shown as field / value rows.
    kw
        Passed to `st.dataframe`.
    """
    now = datetime.now(UTC)
    code = view_code(principal, hub.settings.blind_index_key, now)
    shown = frame.copy()
    shown.insert(0, t("view_mark_col"), code)
    if transpose:
        st.dataframe(shown.T, width="stretch", **kw)
    else:
        st.dataframe(shown, hide_index=True, width="stretch", **kw)
    st.caption(t("view_mark_line", name=plain(principal.display_name),
                 username=plain(principal.username), time=local_time(now, "%Y-%m-%d %H:%M"),
                 code=code))  # fmt: skip
