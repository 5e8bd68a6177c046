"""The published standard as a city's data engineer reads it: each entity's fields with
their name, type, whether required, code table and meaning in the reader's language, and
the machine text they build against (field names, code values, an example record) in code
blocks, exactly as a feed must send it."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from hub import bus_view
from ui.i18n import catalogue, lang, t
from ui.text import plain

# Example values a record of the standard may carry, by JSON type and format.
_EXAMPLE = {"date-time": "2026-11-30T08:30:00+08:00", "date": "2026-11-30", "integer": 1,
            "number": 0.0, "boolean": False, "string": "…"}  # fmt: skip
# Fields whose example reads better than "…" (synthetic values, never a real identifier).
_SAMPLE = {"lon": 117.227, "lat": 31.82, "plate": "皖A12345", "source_id": "A-000123",
           "district_code": "340102", "camera": "CAM-0001", "case_no": "A340100202600001"}  # fmt: skip


def _first(*keys: str) -> str | None:
    known = catalogue()
    return next((t(k) for k in keys if k in known), None)


def field_label(entity: str, name: str) -> str:
    """A field of the standard as people name it (the name itself when not catalogued)."""
    return _first(f"sd_field_{name}", f"field_{name}") or name


def field_doc(entity: str, name: str, prop: dict) -> str:
    """What a field means, in the reader's language (the model's own note if uncatalogued)."""
    return _first(f"sd_doc_{entity}_{name}", f"sd_doc_{name}") or prop.get("description", "")


def entity_label(entity: str) -> str:
    return _first(f"sd_entity_{entity}", f"dataset_{entity}") or entity


def table_label(table: str) -> str:
    return _first(f"sd_table_{table}") or table


def type_text(prop: dict) -> str:
    kind = prop.get("format") or prop.get("type", "string")
    if kind == "string" and prop.get("maxLength"):
        return t("sd_type_string_max", n=prop["maxLength"])
    return _first(f"sd_type_{kind}") or kind


def values_text(prop: dict) -> str:
    if prop.get("x-code-table"):
        return t("sd_values_table", table=table_label(prop["x-code-table"]))
    if prop.get("x-references"):
        targets = [r.split(".")[0] for r in prop["x-references"].split(", ")]
        return t("sd_values_ref", target="、".join(_first(f"sd_ref_{x}") or x for x in targets))
    if prop.get("x-feed-only"):
        return t("sd_values_feed_only")
    return ""


def fields_table(entity: str, schema: dict, fed: list[str], required: set[str]) -> pd.DataFrame:
    """One row per field: name, type, required, values and meaning, all as words. For an
    entity cities send, "required" is what a feed must send (`fed`, `required`), and the
    fields the hub fills itself say so."""

    def values(name: str, p: dict) -> str:
        if fed and name not in fed and not p.get("x-feed-only"):
            return t("sd_values_hub")
        return values_text(p)

    must = required if fed else set(schema["required"])
    rows = [
        {t("sd_col_field"): field_label(entity, name), t("sd_col_type"): type_text(p),
         t("sd_col_required"): t("sd_yes") if name in must else "",
         t("sd_col_values"): values(name, p), t("sd_col_description"): field_doc(entity, name, p)}
        for name, p in schema["properties"].items()
    ]  # fmt: skip
    return pd.DataFrame(rows)


def example_record(entity: str, schema: dict, fields: list[str], required: set[str]) -> str:
    """An annotated example of one record as a feed sends it: the standard's field names
    and example values, each line commented with the field's name, type and whether it is
    required, in the reader's language."""
    props = schema["properties"]
    lines = []
    for i, name in enumerate(fields):
        p = props.get(name, {"type": "string"})
        value = _SAMPLE.get(name, p["enum"][0] if p.get("enum") else
                           _EXAMPLE.get(p.get("format") or p.get("type", "string"), "…"))  # fmt: skip
        comma = "," if i < len(fields) - 1 else ""
        code = f"  {json.dumps(name)}: {json.dumps(value, ensure_ascii=False)}{comma}"
        must = f" · {t('sd_col_required')}" if name in required else ""
        lines.append(f"{code:<48}// {field_label(entity, name)} · {type_text(p)}{must}")
    return "{\n" + "\n".join(lines) + "\n}"


def code_table_text(entries: list[dict]) -> str:
    """A code table as a feed writes its values, each with its names."""
    width = max(len(json.dumps(e["code"])) for e in entries) + 2
    other = "en" if lang() == "zh" else "zh"
    return "\n".join(
        f"{json.dumps(e['code'], ensure_ascii=False):<{width}}# {e[lang()]} · {e[other]}"
        for e in entries
    )


def standard_view(std: dict) -> None:
    """The standard tab: download, conventions, one entity's fields, the code tables."""
    st.caption(t("sd_caption"))
    c1, c2 = st.columns([1, 2])
    c1.download_button(t("sd_download"), json.dumps(std, ensure_ascii=False, indent=2),
                       file_name="standard.json", mime="application/json")  # fmt: skip
    with c2:
        st.caption(t("sd_cli"))
        st.code("python -m hub standard export --out standard.json", language="bash")
    with st.expander(t("sd_conventions")):
        st.markdown(t("sd_conventions_body"))
    entity = st.selectbox(t("sd_entity"), list(std["entities"]), format_func=entity_label)
    schema = std["entities"][entity]
    key = schema.get("x-natural-key")
    if key:
        st.caption(t("sd_key", fields=plain(" + ".join(field_label(entity, k) for k in key))))
    fields, required = bus_view.feed_fields(entity)
    st.dataframe(fields_table(entity, schema, fields, required), hide_index=True, width="stretch")
    st.caption(t("sd_example") if fields else t("sd_example_none"))
    if fields:
        st.code(example_record(entity, schema, fields, required), language="javascript")
    with st.expander(t("sd_code_tables")):
        st.caption(t("sd_code_caption"))
        table = st.selectbox(t("sd_code_tables"), list(std["code_tables"]), format_func=table_label)
        st.code(code_table_text(std["code_tables"][table]), language="python")
