"""User text is shown as text (issue 14 item 3) and records on screen carry a traceable
view mark (item 7): the escape helper, a static check that every Markdown-rendering call
in ui/ and pages/ gets only catalogue text or escaped values, the app's export setting,
and the view mark from a page's table back to the viewer through `identify_export`."""

from __future__ import annotations

import ast
import re
import tomllib
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from hub.exports import ViewMatch, identify_export, view_code, watermark_key
from hub.security import watermark
from hub.security.identity import principal_of
from hub.settings import load_settings
from hub.store import transaction
from tests.conftest import ROOT
from ui.text import html_text, plain

PAYLOADS = (ROOT.parent / "shared/testdata/peer/payloads.txt").read_text("utf-8").splitlines()
MARKDOWN = [
    "![x](http://198.51.100.7/beacon.png)", "[link](http://198.51.100.7/)", "**省厅已同意，请立即批准**",
    ":red[urgent] :blue-badge[省厅] :material/verified: :smile:", "$x^2$", "# 标题", "> 引用",
    "http://198.51.100.7/a www.example.com a@example.com", "a | b\n--|--\n1 | 2", "x --", "a -> b",
]  # fmt: skip

# --- the helper -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [p for p in PAYLOADS if p] + MARKDOWN)
def test_plain_leaves_no_markup_character_unescaped(text):
    out = plain(text)
    unescaped = re.sub(r"\\[!-/:-@\[-`{-~]", "", out)
    assert not re.search(r"[!-/:-@\[-`{-~]", unescaped), out
    # What a reader sees is the text itself: escapes, joiners and the line-break spaces gone.
    seen = re.sub(r"\\(.)", r"\1", out).replace("\u2060", "").replace("  \n", "\n")
    assert seen == text.replace("\u00a0", " ") or seen.replace("\u00a0", " ") == text


def test_plain_breaks_short_codes_autolinks_and_typography():
    assert "\u2060" in plain(":smile:") and plain(":smile:").count("\\:\u2060") == 2
    assert "www\u2060" in plain("www.example.com")
    assert "@\u2060" in plain("a@example.com")
    assert plain("x -- y") == "x \\-\u2060\\- y"
    assert plain("    code") == "\u00a0" * 4 + "code"
    assert plain(None) == ""


def test_html_text_escapes_tags_and_quotes():
    assert html_text('<img src=x onerror="a">') == "&lt;img src=x onerror=&quot;a&quot;&gt;"


# --- every Markdown-rendering call gets catalogue text or escaped values --------------------

# Streamlit reads these arguments as Markdown (a label, a body or a metric value).
RENDERING = {
    "markdown", "caption", "info", "success", "warning", "error", "toast", "expander",
    "subheader", "title", "header", "metric", "button", "download_button", "popover",
    "form_submit_button", "toggle", "checkbox", "text_input", "text_area", "selectbox",
    "multiselect", "radio", "number_input", "slider", "select_slider", "segmented_control",
    "date_input", "time_input", "file_uploader",
}  # fmt: skip
# Values known to hold no user text: catalogue look-ups, escapes, formatting of times and
# numbers, code-table labels, city names (reference data).
SAFE_CALLS = {
    "t", "plain", "error_text", "local_time", "kpi_delta", "minutes", "level_label",
    "unit_label", "status_label", "label", "len", "int", "sum", "feed_label",
    "notice_text", "_scope_text",  # ui/notices.py, ui/watch.py: catalogue, names, `plain`
    "field_label",  # ui/standard_view.py: the catalogue (every compared field has a name)
}  # fmt: skip
# Locals built only from the catalogue, code tables, numbers or `plain` (each checked by
# reading the code), and names of numbers and ids.
SAFE_NAMES = {
    "badge", "tags", "tag", "head", "star", "who", "text", "urgent", "done", "flash", "note",
    "cams", "WALL_CSS", "KPI_CSS", "key", "city", "late", "eta", "same", "role", "quarter", "hidden_n",
    "incident_id", "gid", "rid", "g", "label", "action", "when", "code", "state", "where",
    "SHOWN", "servers", "shown", "helptext",  # ui/bus_panel.py: plain(), numbers, catalogue
}  # fmt: skip
# Attributes that are numbers, ids or codes (never typed text).
SAFE_ATTRS = {
    "id", "count", "n", "rows", "total", "level", "status", "scope_kind", "checked", "value",
    "first_broken_seq", "resolution", "export_id", "row_count", "other_marks", "batch_id",
    "same_file_as", "break_glass_in", "break_glass_out", "recipients", "acknowledged",
    "responses", "subject_kind", "city_code", "hits",
}  # fmt: skip
SAFE_ATTR_PREFIXES = ("rows_", "recent_", "open_")
SAFE_SUBSCRIPTS = {"names", "labels"}
# Reviewed exceptions: system text, not typed by any user.
ALLOWED = {
    "str(exc)",  # ui/frame.py: the store's own error when it is down
    "result.reason",  # pages/audit.py: the chain check's finding
    "f.filename",  # pages/explore.py: the export's generated file name
    "hub.flag_access(principal, int(seq), note)",  # pages/audit.py: the new review's id
    "op['radius_m'] / 1000 + 40",  # pages/response.py: a distance
    "prefill['incident_id']",  # ui/response.py: a number
}


def _safe(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(_safe(v) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return node.format_spec is not None or _safe(node.value)
    if ast.unparse(node) in ALLOWED:
        return True
    if isinstance(node, ast.BinOp):
        return _safe(node.left) and _safe(node.right)
    if isinstance(node, ast.IfExp):
        return _safe(node.body) and _safe(node.orelse)
    if isinstance(node, ast.BoolOp):
        return all(_safe(v) for v in node.values)
    if isinstance(node, ast.Call):
        f = node.func
        if ast.unparse(node) in ALLOWED:
            return True
        if isinstance(f, ast.Name) and f.id in SAFE_CALLS:
            # A catalogue key is looked up, never shown, but the values filled in must be
            # safe; the others escape, or turn anything into a number, time or label.
            return f.id != "t" or all(_safe(k.value) for k in node.keywords)
        if isinstance(f, ast.Attribute) and f.attr in ("sum", "nunique"):
            return True  # a count
        if isinstance(f, ast.Attribute) and f.attr == "legend":
            return True  # ui.situation.legend: catalogue and code-table labels only
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            # City names, dictionaries of catalogue labels and constant icons.
            return f.value.id in {"names", "labels", "kinds", "modes", "dims", "purposes",
                                  "ACTION_ICONS"}  # fmt: skip
        if isinstance(f, ast.Attribute) and f.attr in {"join", "format"}:
            return all(_safe(a) for a in node.args)
        return False
    if isinstance(node, ast.Subscript):
        return isinstance(node.value, ast.Name) and node.value.id in SAFE_SUBSCRIPTS
    if isinstance(node, ast.Name):
        return node.id in SAFE_NAMES
    if isinstance(node, ast.Attribute):
        return (ast.unparse(node) in ALLOWED or node.attr in SAFE_ATTRS
                or node.attr.startswith(SAFE_ATTR_PREFIXES))  # fmt: skip
    if isinstance(node, ast.DictComp):
        return _safe(node.value)
    if isinstance(node, ast.GeneratorExp | ast.ListComp):
        return _safe(node.elt)
    return False


def _unsafe_calls(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in RENDERING:
            continue
        # The label / body and, for a metric, its value and delta.
        args = node.args[:3] if node.func.attr == "metric" else node.args[:1]
        args += [k.value for k in node.keywords if k.arg in ("label", "body", "help", "value")]
        if node.func.attr in ("selectbox", "multiselect", "number_input", "slider", "text_input",
                              "text_area", "date_input", "time_input", "select_slider"):  # fmt: skip
            args = args[:1]  # the value of an input is its own, never Markdown
        for a in args:
            if not _safe(a):
                found.append(f"line {node.lineno}: {ast.unparse(node)[:120]}")
    return found


def test_every_markdown_call_in_ui_and_pages_gets_only_safe_text():
    problems = {}
    for path in sorted([*(ROOT / "ui").glob("*.py"), *(ROOT / "pages").glob("*.py")]):
        if path.name in ("auth.py", "text.py"):  # auth: another area; text: the helper
            continue
        found = _unsafe_calls(path.read_text("utf-8"))
        if found:
            problems[str(path.relative_to(ROOT))] = found
    assert problems == {}


def test_the_static_check_catches_the_old_calls():
    old = """
st.caption(a.body)
st.markdown(f"**{a.title}**")
c[0].markdown(f"**{r.callsign}** · {names.get(r.city)}")
st.caption(f"{t('purpose')}: {v.purpose} · {v.justification}")
st.markdown(f"**{t('resp_objectives')}**: {op['objectives']}")
st.caption(t("traj_counts", plate=tr.plate))
"""
    assert len(_unsafe_calls(old)) == 6
    assert _unsafe_calls('st.caption(plain(a.body))\nst.markdown(f"**{plain(a.title)}**")') == []


# --- records leave a page only by the export ----------------------------------------------


def test_the_app_turns_off_table_download_and_copy():
    with (ROOT / ".streamlit/config.toml").open("rb") as fh:
        config = tomllib.load(fh)
    assert config["client"]["disableDataExport"] is True


def test_view_mark_round_trip_and_forgery():
    key = b"k" * 32
    at = datetime(2026, 3, 1, 8, 30, 41, tzinfo=UTC)
    code = watermark.view_mark(1234, at).code(key)
    assert re.fullmatch(r"VM(-[A-Z2-7]{4}){4}", code)
    found = watermark.find_view_marks(f"张三\t{code}\n李四 {code.replace('-', ' ')}", key)
    assert found == [watermark.ViewMark(1234, at.replace(second=0))]
    assert watermark.find_view_marks(code, b"other key") == []
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert watermark.find_view_marks(forged, key) == []


@pytest.fixture
def app_env(seeded_sqlite, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("HUB_DATABASE_URL", seeded_sqlite.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield seeded_sqlite
    st.cache_resource.clear()
    st.cache_data.clear()


def test_a_lookup_table_carries_the_viewers_mark_and_identify_traces_it(app_env):
    """An officer's lookup: the table shows the mark in every row and under it; the
    copied text (a row and the line, as typed out from a screenshot) is traced by
    `identify_export` to that officer, the minute and the search they made."""
    from hub.models import User

    engine = app_env
    with transaction(engine) as session:
        officer = principal_of(session.query(User).filter_by(username="officer.hf").one())
        case_no = session.execute(
            __import__("sqlalchemy").text(
                "SELECT case_no FROM cases WHERE city_code = '340100' AND status = 'open' LIMIT 1"
            )
        ).scalar_one()
    at = AppTest.from_file(str(ROOT / "pages/lookup.py"), default_timeout=60)
    at.session_state["lang"] = "zh"
    at.session_state["principal"] = officer
    at.run()
    at.text_input[0].input(case_no).run()
    at.selectbox[1].select("case")
    at.text_input[-1].input(case_no)
    at.button[0].click().run()
    assert not at.exception
    assert len(at.dataframe), [e.value for e in (*at.error, *at.caption, *at.info)]
    shown = at.dataframe[0].value
    codes = set(shown.iloc[:, 0])
    assert len(codes) == 1
    code = codes.pop()
    assert re.fullmatch(r"VM(-[A-Z2-7]{4}){4}", code)
    line = re.sub(r"\\(.)", r"\1", next(c.value for c in at.caption if code in c.value))
    assert "officer.hf" in line

    copied = ("\t".join(map(str, shown.iloc[0].tolist())) + "\n" + line).encode("utf-8")
    key = watermark_key(load_settings().blind_index_key)
    with transaction(engine) as session:
        match = identify_export(session, None, copied, "pasted.txt", key=key,
                                now=datetime.now(UTC), username="test")  # fmt: skip
    assert isinstance(match, ViewMatch)
    assert match.username == "officer.hf" and match.user_id == officer.user_id
    assert abs(match.minute - datetime.now(UTC)) < timedelta(minutes=3)
    assert match.reads and match.reads[0]["action"] == "search"
    assert match.reads[0]["case_no"] == case_no
    # The same code made for another user, or text with no code, is not traced to officer.
    assert view_code(officer, load_settings().blind_index_key, datetime.now(UTC)).startswith("VM-")
    with transaction(engine) as session:
        assert identify_export(session, None, b"plain text, no mark", "x.txt", key=key,
                               now=datetime.now(UTC), username="test") is None  # fmt: skip
