"""Record tables as people read them: local time (Asia/Shanghai), labelled columns."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd

from ui.i18n import catalogue, t

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
