"""Feeds: upload a city's feed file under its mapping spec (dry run first), the report,
recent batches and rollback; and the live bus (status, freshness, parked messages, the
message contract)."""

import streamlit as st

from hub.security.errors import HubError
from ui.auth import guard
from ui.bus_panel import bus_panel
from ui.errors import show_error
from ui.feeds import UPLOAD_TYPES, readable, report_view, rollback_form, spec_about, spec_label
from ui.frame import city_names, file_uploader, hub_or_stop
from ui.i18n import t
from ui.text import plain

principal = guard("feeds")
hub = hub_or_stop()
names = city_names()
specs = hub.feed_specs(principal)
st.title(t("fd_heading"))
upload_tab, bus_tab = st.tabs([t("fd_tab_upload"), t("fb_tab")])

with upload_tab:
    st.caption(t("fd_caption"))
    with st.form("ingest"):
        c1, c2 = st.columns(2)
        city = c1.selectbox(t("fd_city"), list(names), format_func=names.__getitem__)
        spec = c2.selectbox(t("fd_spec"), list(specs), format_func=spec_label)
        if spec:
            st.caption(plain(spec_about(spec, specs[spec][2])))
        upload = file_uploader(t("fd_file"), key="feed_file", types=UPLOAD_TYPES,
                               max_mb=hub.settings.upload_max_mb)  # fmt: skip
        dry_run = st.checkbox(t("fd_dry_run"), value=True, help=t("fd_dry_run_help"))
        submitted = st.form_submit_button(t("fd_submit"), type="primary")

    if submitted and upload is None:
        st.warning(t("fd_need_file"))
    elif submitted:
        bar = st.progress(0.0)
        try:
            st.session_state["feed_report"] = hub.ingest_feed(
                principal, city=city, spec_name=spec, filename=upload.name,
                data=upload.getvalue(), dry_run=dry_run,
                progress=lambda f, n: bar.progress(min(1.0, f), text=t("fd_progress", rows=f"{n:,}")),
            )  # fmt: skip
        except HubError as exc:
            st.session_state.pop("feed_report", None)
            show_error(exc)
        bar.empty()

    report = st.session_state.get("feed_report")
    if report is not None:
        report_view(hub, principal, report)

    st.subheader(t("fd_recent"))
    shown = ["id", "started_at", "city_code", "dataset", "spec_name", "source_name", "status",
             "rows_read", "rows_inserted", "rows_updated", "rows_unchanged", "rows_duplicate",
             "rows_rejected", "error_code"]  # fmt: skip
    batches = hub.feed_batches(principal).head(50)[shown]
    st.dataframe(readable(batches, names), hide_index=True, width="stretch")
    rollback_form(hub, principal, batches)

with bus_tab:
    bus_panel(hub, principal, names)
