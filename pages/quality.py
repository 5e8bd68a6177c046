"""Quality and the standard: per-city scorecards, trends, rejected rows, the published standard."""

import json

import streamlit as st

from ui.auth import guard
from ui.feeds import PCT, feed_label, readable, rejects_table
from ui.frame import city_names, hub_or_stop
from ui.i18n import t

principal = guard("quality")
hub = hub_or_stop()
names = city_names()
st.title(t("quality_heading"))
tabs = st.tabs([t("quality_tab_scorecard"), t("quality_tab_trend"), t("quality_tab_rejects"),
                t("quality_tab_standard")])  # fmt: skip
card = hub.quality_scorecard(principal)
with tabs[0]:
    st.caption(t("quality_scorecard_caption"))
    if card.empty:
        st.info(t("quality_empty"))
    else:
        st.dataframe(readable(card, names), hide_index=True, width="stretch")

with tabs[1]:
    feeds = list(dict.fromkeys(zip(card["city_code"], card["dataset"], strict=True)))
    pick = st.selectbox(t("quality_pick_feed"), feeds, format_func=lambda f: feed_label(*f, names))
    if pick:
        trend = hub.feed_batches(principal, city=pick[0], dataset=pick[1])
        done = trend[trend["status"] != "failed"].set_index("started_at").sort_index()
        if len(done):
            st.line_chart(done[PCT].rename(columns={c: t(f"field_{c}") for c in PCT}))
        st.dataframe(readable(trend[["id", "started_at", "status", "rows_read", "rows_rejected",
                                     "rows_duplicate", *PCT, "lag_p50_h", "error_code"]], names),
                     hide_index=True, width="stretch")  # fmt: skip

with tabs[2]:
    batches = hub.feed_batches(principal)
    with_rejects = batches[batches["rows_rejected"] > 0]
    if with_rejects.empty:
        st.info(t("quality_no_rejects"))
    else:
        batch = st.selectbox(
            t("quality_pick_batch"), list(with_rejects["id"]),
            format_func=lambda i: next(f"#{r.id} · {feed_label(r.city_code, r.dataset, names)} · {r.source_name}"
                                       for r in with_rejects.itertuples() if r.id == i),
        )  # fmt: skip
        n = int(with_rejects.loc[with_rejects["id"] == batch, "rows_rejected"].iloc[0])
        st.caption(t("quality_rows_total", n=f"{n:,}"))
        rejects_table(hub, principal, int(batch))

with tabs[3]:
    std = hub.published_standard()
    st.caption(t("std_caption"))
    st.download_button(t("std_download"), json.dumps(std, ensure_ascii=False, indent=2),
                       file_name="standard.json", mime="application/json")  # fmt: skip
    entity = st.selectbox(t("std_entity"), list(std["entities"]))
    schema = std["entities"][entity]
    rows = [{t("std_col_field"): name, t("std_col_type"): p.get("format", p.get("type", "")),
             t("std_col_required"): "✓" if name in schema["required"] else "",
             t("std_col_values"): p.get("x-code-table", ", ".join(map(str, p.get("enum", [])))),
             t("std_col_description"): p.get("description", "")}
            for name, p in schema["properties"].items()]  # fmt: skip
    st.dataframe(rows, hide_index=True, width="stretch")
    with st.expander(t("std_code_tables")):
        table = st.selectbox(t("std_code_tables"), list(std["code_tables"]))
        st.dataframe(std["code_tables"][table], hide_index=True, width="stretch")
