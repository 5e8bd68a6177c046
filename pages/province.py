"""Province data: the 16 cities on the offline map with record counts per data class."""

import streamlit as st

from geo.layers import city_layer, district_layer, fill_colors, label_layer
from hub.codes import code_values
from ui import cached
from ui import map as hubmap
from ui.auth import guard
from ui.frame import hub_or_stop
from ui.freshness import replica_notice
from ui.i18n import lang, t

principal = guard("province")
DATA_CLASS_KEYS = code_values("data_class")
hub = hub_or_stop()
ov = cached.province_overview(principal)

st.title(t("province_heading"))
replica_notice(hub)
if ov.synthetic:
    st.info(t("synthetic_banner"), icon=":material/science:")
st.caption(
    t("province_caption_secret" if principal.role == "province_approver" else "province_caption")
)

totals = ov.totals
cols = st.columns(len(DATA_CLASS_KEYS) + 1)
cols[0].metric(t("total_records"), f"{sum(totals.values()):,}")
for col, key in zip(cols[1:], DATA_CLASS_KEYS, strict=True):
    col.metric(t(f"class_{key}"), f"{totals[key]:,}")
if not sum(totals.values()):
    st.warning(t("store_empty"))

labels = {key: t(f"class_{key}") for key in DATA_CLASS_KEYS}
metric = (
    st.segmented_control(
        t("map_metric"), DATA_CLASS_KEYS, format_func=labels.__getitem__, default="incidents"
    )
    or "incidents"
)
counts = ov.counts
name_col = "name" if lang() == "zh" else "name_en"
fill = dict(zip(counts.city_code, fill_colors(counts[metric]), strict=True))
extra = {
    row.city_code: {"label": getattr(row, name_col), "value": f"{getattr(row, metric):,}"}
    for row in counts.itertuples()
}
names = dict(zip(counts.city_code, counts[name_col], strict=True))
layers = [city_layer(fill, extra), district_layer(), label_layer("city", names=names)]
tooltip = {"html": f"<b>{{label}}</b><br/>{labels[metric]}: {{value}}"}

left, right = st.columns([1, 1])
with left:
    hubmap.show(hubmap.deck(layers, map_style=hub.settings.map_style, tooltip=tooltip))
    st.caption(t("map_caption"))
with right:
    table = counts[[name_col, *DATA_CLASS_KEYS]].rename(columns={name_col: t("city"), **labels})
    st.dataframe(table, hide_index=True, width="stretch", height=620)
