"""Feeds: upload a city's feed file under its mapping spec, with progress and the report."""

import streamlit as st

from hub.security.errors import HubError
from ui.auth import guard
from ui.errors import show_error
from ui.feeds import label, preview_view, readable, rejects_table, rollback_form
from ui.frame import city_names, hub_or_stop
from ui.i18n import t
from ui.text import plain

principal = guard("feeds")
hub = hub_or_stop()
names = city_names()
specs = hub.feed_specs(principal)
st.title(t("feeds_heading"))
st.caption(t("feeds_caption"))


with st.form("ingest"):
    c1, c2 = st.columns(2)
    city = c1.selectbox(t("feeds_city"), list(names), format_func=names.__getitem__)
    spec = c2.selectbox(
        t("feeds_spec"), list(specs),
        format_func=lambda n: f"{n} · {label('dataset_', specs[n][0])} · {specs[n][1]}",
    )  # fmt: skip
    if spec:
        st.caption(plain(specs[spec][2]))
    upload = st.file_uploader(
        t("feeds_file"), type=["csv", "txt", "jsonl", "json", "geojson", "xlsx"]
    )
    dry_run = st.checkbox(t("feeds_dry_run"), value=True, help=t("feeds_dry_run_help"))
    submitted = st.form_submit_button(t("feeds_submit"), type="primary")

if submitted and upload is None:
    st.warning(t("feeds_need_file"))
elif submitted:
    bar = st.progress(0.0)
    try:
        st.session_state["feed_report"] = hub.ingest_feed(
            principal, city=city, spec_name=spec, filename=upload.name, data=upload.getvalue(),
            progress=lambda f, n: bar.progress(min(1.0, f), text=t("feeds_progress", rows=f"{n:,}")),
            dry_run=dry_run,
        )  # fmt: skip
    except HubError as exc:
        st.session_state.pop("feed_report", None)
        show_error(exc)
    bar.empty()

report = st.session_state.get("feed_report")
if report is not None and report.dry_run:
    st.subheader(t("feeds_preview_heading"))
    keys = ["read", "inserted", "updated", "unchanged", "duplicate", "rejected"]
    for col, key in zip(st.columns(len(keys)), keys, strict=True):
        col.metric(t(f"feeds_rows_{key}"), f"{getattr(report, f'rows_{key}'):,}")
    preview_view(report)
elif report is not None:
    if report.status == "done":
        st.success(t("feeds_done", batch=report.batch_id, inserted=f"{report.rows_inserted:,}",
                     updated=f"{report.rows_updated:,}", seconds=f"{report.seconds:.1f}"))  # fmt: skip
    else:
        same = t("feeds_same_file", batch=report.same_file_as) if report.same_file_as else ""
        st.info(t("feeds_unchanged", batch=report.batch_id) + " " + same)
    keys = ["read", "inserted", "updated", "unchanged", "duplicate", "rejected"]
    for col, key in zip(st.columns(len(keys)), keys, strict=True):
        col.metric(t(f"feeds_rows_{key}"), f"{getattr(report, f'rows_{key}'):,}")
    st.caption(t("feeds_adds_up", **{k: f"{getattr(report, f'rows_{k}'):,}" for k in keys}))
    if report.rows_rejected:
        st.subheader(t("feeds_rejects"))
        if principal.role == "admin":
            st.caption(t("feeds_raw_masked"))
        rejects_table(hub, principal, report.batch_id)

st.subheader(t("feeds_recent"))
shown = ["id", "started_at", "city_code", "dataset", "spec_name", "source_name", "status",
         "rows_read", "rows_inserted", "rows_updated", "rows_unchanged", "rows_duplicate",
         "rows_rejected", "error_code"]  # fmt: skip
batches = hub.feed_batches(principal).head(50)[shown]
st.dataframe(readable(batches, names), hide_index=True, width="stretch")
rollback_form(hub, principal, batches)
