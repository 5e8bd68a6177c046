"""Record tables as people read them: local time (Asia/Shanghai), labelled columns, and
the viewer's mark on every table of records."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from hub.exports import view_code
from ui.i18n import catalogue, label, lang, t
from ui.text import plain

LOCAL_TZ = "Asia/Shanghai"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def local_time(value: datetime, fmt: str = "%m-%d %H:%M") -> str:
    """A UTC timestamp as people in the province read it."""
    return value.astimezone(ZoneInfo(LOCAL_TZ)).strftime(fmt)


def local_times(values: pd.Series, fmt: str = "%m-%d %H:%M") -> pd.Series:
    """`local_time` for a whole column at once (thousands of map points per rerun)."""
    return pd.to_datetime(values, utc=True).dt.tz_convert(LOCAL_TZ).dt.strftime(fmt)


# Columns holding code values, and the code table or catalogue family that labels them.
COLUMN_KINDS = {
    "classification": "classification", "level": "classification", "role": "role", "action": "action",
    "decision": "decision", "dataset": "dataset", "purpose": "purpose", "status": "status",
    "type_code": "incident_type", "incident_type": "incident_type", "case_type": "case_type",
    "unit_kind": "unit_kind", "unit_status": "unit_status", "help_kind": "help_kind",
    "camera_kind": "camera_kind", "risk_level": "risk_level", "kind": "kind",
}  # fmt: skip
# Columns holding city adcodes (one, or a comma-separated list).
CITY_COLUMNS = ("city_code", "owner_city", "owner_cities", "home_city")
EMPTY = "—"


def duration_text(seconds: float | None) -> str:
    """A span as people say it: seconds under a minute, minutes under an hour, then hours
    (an 18 s decision reads "18 秒", not "0 分钟")."""
    if seconds is None or seconds != seconds:
        return EMPTY
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return t("dur_seconds", n=round(seconds))
    if seconds < 3600:
        return t("dur_minutes", n=round(seconds / 60))
    if seconds < 86400:
        return t("dur_hours", n=f"{seconds / 3600:.1f}".removesuffix(".0"))
    return t("dur_days", n=f"{seconds / 86400:.1f}".removesuffix(".0"))


def subject_text(subject: object) -> str:
    """An audited subject (`plate:皖A…`, `record:persons:12`) as a labelled value."""
    if subject is None or subject != subject or not str(subject):
        return EMPTY
    head, _, rest = str(subject).partition(":")
    if head == "record":
        dataset, _, rid = rest.partition(":")
        return f"{label('dataset', dataset)} #{rid}"
    if head == "report":  # a transparency report: city/quarter
        from ui.frame import city_names

        city, _, quarter = rest.partition("/")
        rest = f"{city_names().get(city, city)} {quarter}"
    if head in (
        "alerts_pushed",
        "situation",
        "assists",
        "watch_list",
    ):  # a city and a span, or a time window
        from ui.frame import city_names

        names = city_names()
        rest = re.sub(r"\b\d{6}\b", lambda m: names.get(m.group(0), m.group(0)), rest)
        rest = re.sub(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?",
            lambda m: local_time(datetime.fromisoformat(m.group(0)).replace(tzinfo=UTC)),
            rest,
        )
        rest = re.sub(r":(\d+)d\b", lambda m: " " + t("dur_days", n=m.group(1)), rest)
    if f"kind_{head}" in catalogue() and rest:
        return f"{t('kind_' + head)}：{rest}" if lang() == "zh" else f"{t('kind_' + head)}: {rest}"
    return str(subject)


def _cells(values: pd.Series) -> pd.Series:
    """A column as text: times local, spans spoken, whole numbers without ".0", gaps "—"."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        out = pd.to_datetime(values, utc=True).dt.tz_convert(LOCAL_TZ).dt.strftime(TIME_FORMAT)
        return out.fillna(EMPTY)
    if pd.api.types.is_timedelta64_dtype(values):
        return values.dt.total_seconds().map(duration_text)
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if len(whole) and (whole == whole.round()).all():
            return values.map(lambda v: EMPTY if v != v else f"{int(v)}")
        return values.map(lambda v: EMPTY if v != v else f"{v:g}")
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        return values.astype(object).map(_cell)
    return values


def _cell(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return EMPTY
    if isinstance(value, datetime):
        return local_time(value if value.tzinfo else value.replace(tzinfo=UTC), TIME_FORMAT)
    if isinstance(value, timedelta):
        return duration_text(value.total_seconds())
    if isinstance(value, (dict, list, tuple)):
        return ", ".join(str(v) for v in (value.values() if isinstance(value, dict) else value))
    return value


def localise(frame: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """A table as people read it: every time in Asia/Shanghai, every code value labelled,
    cities by name, spans spoken, gaps as "—", column names from the catalogue
    (`field_<name>`).

    Parameters
    ----------
    frame
        Stored values as the hub returns them.
    names
        adcode -> city name; the reference data's names when not given.
    """
    if names is None:
        from ui.frame import city_names  # ui.frame's furniture imports this module's users

        names = city_names()
    out = frame.copy()
    for col in out.columns:
        if col in COLUMN_KINDS and not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].map(lambda v, k=COLUMN_KINDS[col]: label(k, v))
        elif col in CITY_COLUMNS:
            out[col] = out[col].map(lambda v: _city_text(v, names))
        elif col == "subject":
            out[col] = out[col].map(subject_text)
        elif col == "note":  # a break-glass review's note starts with its subject line
            out[col] = out[col].map(_note_text)
        elif col == "username":  # the command line and the hub itself act unnamed
            out[col] = out[col].map(
                lambda v: t(f"actor_{v}") if v in ("cli", "system") else _cell(v)
            )
        else:
            out[col] = _cells(out[col])
    known = catalogue()
    return out.rename(columns={c: t(f"field_{c}") for c in out.columns if f"field_{c}" in known})


def _note_text(value: object) -> object:
    if not isinstance(value, str):
        return _cell(value)
    head, sep, rest = value.partition("\n")
    if re.fullmatch(r"[a-z_]+:\S+", head):
        return subject_text(head) + sep + rest
    return value


def _city_text(value: object, names: dict[str, str]) -> str:
    if value is None or value != value or not str(value):
        return EMPTY
    return "、".join(names.get(c, c) for c in str(value).split(",") if c) or EMPTY


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
