"""What the Feeds and Quality pages show of feed batches: codes as people read them,
rejection reasons as sentences, percentages and hours with a dash where there is none."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from hub.security.errors import HubError
from ui.errors import show_error
from ui.i18n import catalogue, t
from ui.tables import localise, record_table
from ui.text import plain

MISSING = "—"
PCT = ["completeness", "validity", "duplicate_share"]


def label(prefix: str, value: str) -> str:
    """A code as people read it; the code itself when the catalogue has no label yet."""
    return t(prefix + value) if prefix + value in catalogue() else value


def reason_line(reasons: list[dict]) -> str:
    """A rejected row's reasons as one line of sentences."""
    out = []
    for r in reasons:
        try:
            out.append(t(f"rej_{r['code']}", **r))
        except KeyError:  # a code the catalogue does not know yet
            out.append(r["code"])
    return "；".join(out)


def feed_label(city: str, dataset: str, names: dict[str, str]) -> str:
    return f"{names.get(city, city)} · {label('dataset_', dataset)}"


def readable(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Batches or scorecard rows for display: names, labels, %, hours, dashes."""
    frame = frame.copy()
    if "city_code" in frame:
        frame["city_code"] = frame["city_code"].map(lambda c: names.get(c, c))
    if "dataset" in frame:
        frame["dataset"] = frame["dataset"].map(lambda d: label("dataset_", d))
    if "status" in frame:
        frame["status"] = frame["status"].map(lambda s: label("feed_status_", s))
    for c in (*PCT, "timely_share"):
        if c in frame:
            frame[c] = frame[c].map(lambda v: MISSING if v is None or v != v else f"{v:.1%}")
    for c in ("lag_p50_h", "lag_p90_h", "freshness_h"):
        if c in frame:
            frame[c] = frame[c].map(lambda v: MISSING if v is None or v != v else f"{v:.1f}")
    shown = localise(frame.rename(columns={"dataset": "dataset_name"})).astype(object)
    return shown.where(shown.notna(), MISSING)


def reject_csv(hub, principal, batch_id: int) -> bytes:
    """Every rejected row of a batch as CSV in the reader's language (audited export)."""
    rows = hub.feeds.reject_rows(principal, batch_id)
    rows["reasons"] = rows["reasons"].map(reason_line)
    shown = rows.rename(columns={c: t(f"field_{c}") for c in rows.columns})
    return shown.to_csv(index=False).encode("utf-8-sig")


def rejects_table(hub, principal, batch_id: int) -> None:
    """A batch's rejected rows with their reasons as sentences, and the reject file."""
    rejects = hub.feed_rejects(principal, batch_id)
    rejects["reasons"] = rejects["reasons"].map(reason_line)
    record_table(hub, principal, localise(rejects))
    st.download_button(t("feeds_reject_download"), reject_csv(hub, principal, batch_id),
                       file_name=f"rejects-batch-{batch_id}.csv", mime="text/csv")  # fmt: skip


def finding_line(finding: dict) -> str:
    """A guardrail finding as a sentence (the hub's English one for a code not known)."""
    try:
        return t(f"finding_{finding['code']}", **finding)
    except KeyError:
        return finding.get("message", finding["code"])


def preview_view(report) -> None:
    """A dry run: what would happen, the guardrails' findings, before/after samples per
    changed field (masked or withheld by role), the first rejected rows."""
    if report.status == "failed":
        st.error(t("feeds_preview_would_fail"))
        if not report.findings:
            st.caption(plain(report.error or ""))
    else:
        st.success(t("feeds_preview_ok"))
    for f in report.findings:
        (st.warning if f.get("accepted") else st.error)(finding_line(f))
    changes = [
        {"field": label("field_", name), "source_id": x["source_id"], "before": x["before"],
         "after": x["after"], "records": report.changed_fields.get(name, 0)}
        for name, samples in report.preview.get("changes", {}).items() for x in samples
    ]  # fmt: skip
    if report.changed_fields:
        st.subheader(t("feeds_preview_changes"))
        st.caption(
            ", ".join(f"{label('field_', k)} {v:,}" for k, v in report.changed_fields.items())
        )
        if changes:
            frame = pd.DataFrame(changes)
            st.dataframe(frame.rename(columns={c: t(f"feeds_col_{c}") for c in frame.columns}),
                         hide_index=True, width="stretch")  # fmt: skip
    rejects = report.preview.get("rejects", [])
    if rejects:
        st.subheader(t("feeds_preview_rejects"))
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
        st.caption(t("feeds_rollback_caption"))
        batch = st.selectbox(t("feeds_rollback_pick"), list(done["id"]),
                             format_func=lambda i: f"#{i}")  # fmt: skip
        if st.form_submit_button(t("feeds_rollback_submit")):
            try:
                r = hub.feeds.rollback(principal, int(batch))
            except HubError as exc:
                show_error(exc)
            else:
                st.success(t("feeds_rollback_done", batch=r.batch_id, deleted=f"{r.deleted:,}",
                             restored=f"{r.restored:,}"))  # fmt: skip
