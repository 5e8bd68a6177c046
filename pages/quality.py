"""Quality and the standard: per-feed scorecards, trends, rejected rows, the published standard."""

import streamlit as st

from ui.auth import guard
from ui.feeds import PCT, feed_label, readable, rejects_table, source_text, trend_chart
from ui.frame import city_names, hub_or_stop
from ui.freshness import replica_notice
from ui.i18n import t
from ui.standard_view import standard_view

principal = guard("quality")
hub = hub_or_stop()
names = city_names()
st.title(t("qa_heading"))
replica_notice(hub)
tabs = st.tabs([t("qa_tab_scorecard"), t("qa_tab_trend"), t("qa_tab_rejects"),
                t("qa_tab_standard")])  # fmt: skip
card = hub.quality_scorecard(principal)
with tabs[0]:
    st.caption(t("qa_scorecard_caption"))
    if card.empty:
        st.info(t("qa_empty"))
    else:
        st.dataframe(readable(card, names), hide_index=True, width="stretch")

with tabs[1]:
    feeds = list(dict.fromkeys(zip(card["city_code"], card["dataset"], strict=True)))
    pick = st.selectbox(t("qa_pick_feed"), feeds, format_func=lambda f: feed_label(*f, names))
    if pick:
        trend = hub.feed_batches(principal, city=pick[0], dataset=pick[1])
        done = trend[trend["status"] != "failed"]
        if len(done):
            st.altair_chart(trend_chart(done), width="stretch")
        st.dataframe(readable(trend[["id", "started_at", "status", "rows_read", "rows_rejected",
                                     "rows_duplicate", *PCT, "lag_p50_h", "error_code"]], names),
                     hide_index=True, width="stretch")  # fmt: skip

with tabs[2]:
    batches = hub.feed_batches(principal)
    with_rejects = batches[batches["rows_rejected"] > 0]
    if with_rejects.empty:
        st.info(t("qa_no_rejects"))
    else:
        batch = st.selectbox(
            t("qa_pick_batch"), list(with_rejects["id"]),
            format_func=lambda i: next(f"#{r.id} · {feed_label(r.city_code, r.dataset, names)} · "
                                       f"{source_text(r.source_name)}"
                                       for r in with_rejects.itertuples() if r.id == i),
        )  # fmt: skip
        n = int(with_rejects.loc[with_rejects["id"] == batch, "rows_rejected"].iloc[0])
        st.caption(t("qa_rows_total", n=f"{n:,}"))
        rejects_table(hub, principal, int(batch))

with tabs[3]:
    standard_view(hub.published_standard())
