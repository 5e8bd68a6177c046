"""What the Feeds and Quality pages show of feed batches: specs, sources, codes and
findings as people name them, rejection reasons as sentences, percentages and hours with
a dash where there is none, every time in Asia/Shanghai."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from hub.security.errors import HubError
from hub.security.watermark import safe_csv
from ui.errors import show_error
from ui.i18n import catalogue, t
from ui.standard_view import field_label
from ui.tables import LOCAL_TZ, localise, record_table
from ui.text import plain

MISSING = "—"
PCT = ["completeness", "validity", "duplicate_share"]
ROW_KEYS = ["read", "inserted", "updated", "unchanged", "duplicate", "rejected"]
UPLOAD_TYPES = ["csv", "txt", "jsonl", "json", "geojson", "xlsx"]


def label(prefix: str, value: str) -> str:
    """A code as people read it; the code itself when the catalogue has no label yet
    (tests/test_language.py finds it)."""
    return t(prefix + value) if prefix + value in catalogue() else value


def spec_label(name: str | None) -> str:
    """A shipped mapping spec as people name it (city · dataset · form)."""
    if name is None or name != name or not name:
        return t("fd_spec_none")
    return label("fspec_", name)


def spec_about(name: str, description: str) -> str:
    """What a spec reads, in the reader's language; the spec file's own description for a
    spec the catalogue does not know yet."""
    return label("fspec_", f"{name}_about") if f"fspec_{name}_about" in catalogue() else description


def source_text(source: str | None) -> str:
    """Where a batch came from: the demo, the live bus (its message range), or a file."""
    if source is None or source != source:
        return MISSING
    if source == "demo:synthetic":
        return t("fd_source_demo")
    if source.startswith("stream:"):
        first, _, last = source.rpartition(":")[2].partition("-")
        return t("fd_source_stream", first=first, last=last or first)
    return source  # the uploaded file's name, as the operator chose it


def code_text(code: str | None) -> str:
    """A batch's error or guardrail code as a short phrase."""
    if code is None or code != code or not code:
        return MISSING
    return label("fd_error_", code)


def reason_line(reasons: list[dict]) -> str:
    """A rejected row's reasons as one line of sentences."""
    out = []
    for r in reasons:
        shown = {**r, "field": field_label("", r["field"])} if r.get("field") else r
        try:
            out.append(t(f"rej_{r['code']}", **shown))
        except KeyError:  # a code the catalogue does not know yet
            out.append(r["code"])
    return "；".join(out)


def feed_label(city: str, dataset: str, names: dict[str, str]) -> str:
    return f"{names.get(city, city)} · {label('dataset_', dataset)}"


def readable(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Batches or scorecard rows for display: names, labels, %, hours, local times, dashes."""
    frame = frame.copy()
    if "city_code" in frame:
        frame["city_code"] = frame["city_code"].map(lambda c: names.get(c, c))
    if "dataset" in frame:
        frame["dataset"] = frame["dataset"].map(lambda d: label("dataset_", d))
    if "status" in frame:
        frame["status"] = frame["status"].map(lambda s: label("feed_status_", s))
    if "spec_name" in frame:
        frame["spec_name"] = frame["spec_name"].map(spec_label)
    if "source_name" in frame:
        frame["source_name"] = frame["source_name"].map(source_text)
    for c in ("error_code", "last_finding"):
        if c in frame:
            frame[c] = frame[c].map(code_text)
    for c in (*PCT, "timely_share"):
        if c in frame:
            frame[c] = frame[c].map(lambda v: MISSING if v is None or v != v else f"{v:.1%}")
    for c in ("lag_p50_h", "lag_p90_h", "freshness_h"):
        if c in frame:
            frame[c] = frame[c].map(lambda v: MISSING if v is None or v != v else f"{v:.1f}")
    shown = localise(frame.rename(columns={"dataset": "dataset_name"})).astype(object)
    return shown.where(shown.notna(), MISSING)


def trend_chart(batches: pd.DataFrame) -> alt.Chart:
    """Completeness, validity and duplicates per batch over arrival time, on the province's
    clock: the times are turned into Beijing wall-clock time and drawn on a UTC scale, so
    the axis reads the same in every browser."""
    local = pd.to_datetime(batches["started_at"], utc=True).dt.tz_convert(LOCAL_TZ)
    frame = batches[PCT].assign(when=local.dt.tz_localize(None),
                                shown=local.dt.strftime("%Y-%m-%d %H:%M"))  # fmt: skip
    long = frame.melt(["when", "shown"], var_name="measure", value_name="share").dropna()
    long["measure"] = long["measure"].map(lambda c: t(f"field_{c}"))
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "when:T",
                scale=alt.Scale(type="utc"),
                title=t("qa_trend_time"),
                axis=alt.Axis(format="%m-%d %H:%M", labelAngle=0),
            ),
            y=alt.Y("share:Q", title=t("qa_trend_share"), axis=alt.Axis(format="%")),
            color=alt.Color("measure:N", title=t("qa_trend_measure")),
            tooltip=[
                alt.Tooltip("shown:N", title=t("qa_trend_time")),
                alt.Tooltip("measure:N", title=t("qa_trend_measure")),
                alt.Tooltip("share:Q", title=t("qa_trend_share"), format=".1%"),
            ],
        )  # fmt: skip
    )


def reject_csv(hub, principal, batch_id: int) -> bytes:
    """Every rejected row of a batch as CSV in the reader's language (audited export)."""
    rows = hub.feeds.reject_rows(principal, batch_id)
    rows["reasons"] = rows["reasons"].map(reason_line)
    shown = rows.rename(columns={c: t(f"field_{c}") for c in rows.columns})
    return safe_csv(shown)


def rejects_table(hub, principal, batch_id: int) -> None:
    """A batch's rejected rows with their reasons as sentences, and the reject file."""
    rejects = hub.feed_rejects(principal, batch_id)
    rejects["reasons"] = rejects["reasons"].map(reason_line)
    record_table(hub, principal, localise(rejects))
    st.download_button(t("fd_reject_download"), reject_csv(hub, principal, batch_id),
                       file_name=f"rejects-batch-{batch_id}.csv", mime="text/csv")  # fmt: skip


def finding_line(finding: dict) -> str:
    """A guardrail finding as a sentence (the hub's English one for a code not known)."""
    fields = [field_label("", f) for f in str(finding.get("field") or "").split(",") if f]
    shown = {**finding, **finding.get("params", {}), "field": "、".join(fields)}
    try:
        return t(f"fd_finding_{finding['code']}", **shown)
    except KeyError:
        return finding.get("message", finding["code"])


def counts(report) -> None:
    """A batch's row counts, one metric each."""
    for col, key in zip(st.columns(len(ROW_KEYS)), ROW_KEYS, strict=True):
        col.metric(t(f"fd_rows_{key}"), f"{getattr(report, f'rows_{key}'):,}")


def report_view(hub, principal, report) -> None:
    """The last upload's outcome: a dry run's preview, or the stored batch with its
    counts (which add up) and rejected rows."""
    if report.dry_run:
        st.subheader(t("fd_preview_heading"))
        counts(report)
        preview_view(report)
        return
    if report.status == "done":
        st.success(t("fd_done", batch=report.batch_id, inserted=f"{report.rows_inserted:,}",
                     updated=f"{report.rows_updated:,}", seconds=f"{report.seconds:.1f}"))  # fmt: skip
    else:
        same = t("fd_same_file", batch=report.same_file_as) if report.same_file_as else ""
        st.info(t("fd_unchanged", batch=report.batch_id) + " " + same)
    counts(report)
    st.caption(t("fd_adds_up", **{k: f"{getattr(report, f'rows_{k}'):,}" for k in ROW_KEYS}))
    if report.rows_rejected:
        st.subheader(t("fd_rejects"))
        if principal.role == "admin":
            st.caption(t("fd_raw_withheld"))
        rejects_table(hub, principal, report.batch_id)


def preview_view(report) -> None:
    """A dry run: what would happen, the guardrails' findings, before/after samples per
    changed field (masked or withheld by role), the first rejected rows."""
    if report.status == "failed":
        st.error(t("fd_preview_would_fail"))
        if not report.findings:
            st.caption(plain(report.error or ""))
    else:
        st.success(t("fd_preview_ok"))
    for f in report.findings:
        (st.warning if f.get("accepted") else st.error)(finding_line(f))
    changes = [
        {"field": field_label("", name), "source_id": x["source_id"], "before": x["before"],
         "after": x["after"], "records": report.changed_fields.get(name, 0)}
        for name, samples in report.preview.get("changes", {}).items() for x in samples
    ]  # fmt: skip
    if report.changed_fields:
        st.subheader(t("fd_preview_changes"))
        st.caption(
            ", ".join(f"{field_label('', k)} {v:,}" for k, v in report.changed_fields.items())
        )
        if changes:
            frame = pd.DataFrame(changes)
            st.dataframe(frame.rename(columns={c: t(f"fd_col_{c}") for c in frame.columns}),
                         hide_index=True, width="stretch")  # fmt: skip
    rejects = report.preview.get("rejects", [])
    if rejects:
        st.subheader(t("fd_preview_rejects"))
        frame = pd.DataFrame([{"row_number": r["row_number"], "reasons": reason_line(r["reasons"])}
                              for r in rejects])  # fmt: skip
        st.dataframe(localise(frame), hide_index=True, width="stretch")


def rollback_form(hub, principal, batches: pd.DataFrame) -> None:
    """Undo one loaded batch (refused, with the reason, where later batches changed its
    records)."""
    done = batches[batches["status"] == "done"]
    if done.empty:
        return
    with st.form("rollback"):
        st.caption(t("fd_rollback_caption"))
        batch = st.selectbox(t("fd_rollback_pick"), list(done["id"]),
                             format_func=lambda i: f"#{i}")  # fmt: skip
        if st.form_submit_button(t("fd_rollback_submit")):
            try:
                r = hub.feeds.rollback(principal, int(batch))
            except HubError as exc:
                show_error(exc)
            else:
                st.success(t("fd_rollback_done", batch=r.batch_id, deleted=f"{r.deleted:,}",
                             restored=f"{r.restored:,}"))  # fmt: skip
