"""Record tables as people read them: local time (Asia/Shanghai), labelled columns."""

from __future__ import annotations

import pandas as pd

from ui.i18n import catalogue, t

LOCAL_TZ = "Asia/Shanghai"


def localise(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps shown in Asia/Shanghai; column names from the catalogue (`field_<name>`)."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert(LOCAL_TZ).dt.strftime("%Y-%m-%d %H:%M:%S")
    known = catalogue()
    return out.rename(columns={c: t(f"field_{c}") for c in out.columns if f"field_{c}" in known})
