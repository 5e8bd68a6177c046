"""Audit page sections beyond the log: the transparency report and leak identification."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from hub import transparency
from hub.exports import MAX_UPLOAD_BYTES, ViewMatch
from hub.security.audit import WARNINGS, Verification
from hub.security.errors import HubError
from ui.errors import show_error
from ui.frame import file_uploader
from ui.i18n import catalogue, label, lang, t
from ui.tables import EMPTY, LOCAL_TZ, duration_text, local_time, localise, subject_text
from ui.text import plain


def audit_actions() -> list[str]:
    """The audited actions the log can be filtered by: those the catalogue names."""
    return sorted(k.removeprefix("action_") for k in catalogue() if k.startswith("action_"))


def alarm_detail(detail: dict[str, object]) -> str:
    """An alarm's particulars as labelled values ("查询次数：30 · 时间窗（分钟）：10")."""
    parts = []
    for key, value in detail.items():
        if key in ("action", "username"):
            continue
        shown = subject_text(value) if key == "key" else EMPTY if value is None else value
        name = t(f"alarm_detail_{key}") if f"alarm_detail_{key}" in catalogue() else key
        parts.append(f"{name}：{shown}" if lang() == "zh" else f"{name}: {shown}")
    return " · ".join(parts)


def chain_result(result: Verification) -> None:
    """The chain check: intact or where it breaks, how far signed checkpoints vouch for
    it, and each finding (a finding against the checkpoint file has no entry number)."""
    if result.ok:
        st.success(t("chain_ok", n=result.checked))
    else:
        first = next((f for f in result.findings if f.kind not in WARNINGS), None)
        kind = first.kind if first else "broken"
        if result.first_broken_seq is None:
            st.error(t("chain_broken_no_seq", reason=t(f"finding_{kind}")))
        else:
            st.error(t("chain_broken", seq=result.first_broken_seq, reason=t(f"finding_{kind}")))
    if result.anchored_seq is not None:
        st.caption(t("chain_anchored", seq=int(result.anchored_seq), n=int(result.unanchored)))
    if result.findings:
        st.markdown(f"**{t('chain_findings')}**")
        for f in result.findings:
            text = t(f"finding_{f.kind}") if f"finding_{f.kind}" in catalogue() else plain(f.kind)
            where = t("finding_at_seq", seq=int(f.seq)) if f.seq is not None else ""
            st.markdown(f"- {text}{where}")


def quarters(now: datetime, n: int = 6) -> list[str]:
    """This quarter and the `n - 1` before it, newest first."""
    local = now.astimezone(ZoneInfo(LOCAL_TZ))
    year, q = local.year, (local.month - 1) // 3 + 1
    out = []
    for _ in range(n):
        out.append(f"{year}Q{q}")
        year, q = (year, q - 1) if q > 1 else (year - 1, 4)
    return out


# Column and index names of the report's tables, as people read them.
_COLUMNS = ("purpose", "city_code", "search", "view", "break_glass", "export", "total",
            "with_grant", "direction", "filed", "approved", "denied", "pending_at_end",
            "median_decision", "rule", "raised", "closed")  # fmt: skip


def _table(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    out = frame.reset_index()
    if "city_code" in out:
        out["city_code"] = out["city_code"].map(lambda c: names.get(c, c))
    if "purpose" in out:
        out["purpose"] = out["purpose"].map(
            lambda p: EMPTY if p == transparency.NO_PURPOSE else label("purpose", p)
        )
    if "direction" in out:
        out["direction"] = out["direction"].map(lambda d: t(f"trc_{d}"))
    if "rule" in out:
        out["rule"] = out["rule"].map(lambda r: t(f"rule_{r}"))
    if "median_decision" in out:
        out["median_decision"] = out["median_decision"].map(_span)
    out = localise(out, names)
    return out.rename(columns={c: t(f"trc_{c}") for c in _COLUMNS if c in out})


def _span(value: object) -> str:
    """A decision time (a Timedelta, or seconds) as people say it."""
    if value is None or value != value:
        return EMPTY
    return duration_text(value.total_seconds() if hasattr(value, "total_seconds") else float(value))


def transparency_section(hub, principal, names: dict[str, str]) -> None:
    cities = [principal.city_code] if principal.role == "city_approver" else list(names)
    c1, c2 = st.columns(2)
    city = c1.selectbox(t("city"), cities, format_func=lambda c: names.get(c, c), key="tr_city")
    quarter = c2.selectbox(t("tr_quarter"), quarters(datetime.now(ZoneInfo(LOCAL_TZ))), key="tr_q")
    if not st.button(t("tr_generate"), type="primary"):
        st.caption(t("tr_explained"))
        return
    try:
        report = hub.transparency(principal, city, quarter)
    except HubError as exc:
        show_error(exc)
        return
    st.subheader(t("tr_title", city=names.get(city, city), quarter=quarter))
    m = st.columns(4)
    req = report.requests
    m[0].metric(t("tr_searches"), f"{int(report.searches_by_purpose['total'].sum()):,}")
    m[1].metric(
        t("tr_cross_in"),
        f"{int(report.cross_city_in['total'].sum()) if len(report.cross_city_in) else 0:,}",
    )
    m[2].metric(
        t("tr_cross_out"),
        f"{int(report.cross_city_out['total'].sum()) if len(report.cross_city_out) else 0:,}",
    )
    m[3].metric(t("tr_break_glass"), f"{report.break_glass_in} / {report.break_glass_out}", help=t("tr_break_glass_help"))  # fmt: skip
    for key, frame in (("tr_by_purpose", report.searches_by_purpose), ("tr_in", report.cross_city_in),
                       ("tr_out", report.cross_city_out), ("tr_requests", req),
                       ("tr_alarms", report.alarms)):  # fmt: skip
        st.markdown(f"**{t(key)}**")
        if frame is None or frame.empty:
            st.caption(t("tr_none"))
        else:
            st.dataframe(_table(frame, names), hide_index=True, width="stretch")
    st.download_button(t("tr_download"), transparency.to_csv(report),
                       f"transparency-{city}-{quarter}.csv", "text/csv", icon=":material/download:")  # fmt: skip
    st.caption(t("tr_print"))


def leak_section(hub, principal) -> None:
    st.caption(t("leak_explained"))
    upload = file_uploader(t("leak_upload"), key="leak_file", types=["csv", "xlsx", "txt"],
                           max_mb=MAX_UPLOAD_BYTES / 2**20)  # fmt: skip
    if upload is None:
        return
    try:
        match = hub.identify_export(principal, upload.getvalue(), upload.name)
    except HubError as exc:
        show_error(exc)
        return
    if match is None:
        st.warning(t("leak_no_match"), icon=":material/help:")
        return
    if isinstance(match, ViewMatch):
        _view_match(match)
        return
    st.error(t("leak_match", id=match.export_id, user=plain(match.username), role=t("role_" + match.role),
               time=local_time(match.ts, "%Y-%m-%d %H:%M"), rows=match.row_count),
             icon=":material/fingerprint:")  # fmt: skip
    facts = {
        t("field_dataset"): label("dataset", match.dataset),
        t("leak_query"): _query_text(match.query),
        t("field_purpose"): label("purpose", match.purpose),
        t("field_case_no"): match.case_no or EMPTY,
        t("leak_file"): match.filename or EMPTY,
        t("leak_same_file"): t("yes") if match.same_file else t("no"),
        t("leak_also_marks_of"): ", ".join(f"#{i}" for i in match.other_ids) or EMPTY,
    }
    st.dataframe(pd.DataFrame({t("leak_fact"): list(facts), t("leak_value"): list(map(str, facts.values()))}),
                 hide_index=True, width="stretch")  # fmt: skip


def _query_text(query: object) -> str:
    """An export's stored query (a dict of filters) as labelled text."""
    if not query:
        return EMPTY
    if not isinstance(query, dict):
        return str(query)
    if set(query) == {"kind", "value"}:
        return subject_text(f"{query['kind']}:{query['value']}")
    return " · ".join(f"{k}={v}" for k, v in query.items() if v not in (None, "", [], ()))


def exports_section(hub, principal) -> None:
    st.dataframe(localise(hub.exports_log(principal)), hide_index=True, width="stretch")


def _view_match(match: ViewMatch) -> None:
    """A copy of an on-screen table: the viewer, the minute, and their reads by then."""
    role = t("role_" + match.role) if match.role else "—"
    who = plain(f"{match.display_name or '—'} ({match.username or match.user_id})")
    st.error(t("leak_view_match", user=who, role=role, time=local_time(match.minute, "%Y-%m-%d %H:%M")),
             icon=":material/fingerprint:")  # fmt: skip
    if match.other_marks:
        st.caption(t("leak_also_marks", n=match.other_marks))
    reads = pd.DataFrame(list(match.reads), columns=["seq", "ts", "action", "dataset", "query",
                                                     "purpose", "case_no", "result_count"])  # fmt: skip
    reads["query"] = reads["query"].map(lambda q: "" if q is None else str(q))
    st.dataframe(localise(reads), hide_index=True, width="stretch")
