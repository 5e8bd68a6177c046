"""Every user-facing string comes from `ui/strings.toml` and `ui/strings/*.toml` (one file per area):
zh-CN by default, English on request."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

import streamlit as st

from hub.codes import code_tables

STRINGS_FILE = Path(__file__).with_name("strings.toml")
STRINGS_DIR = Path(__file__).with_name("strings")
LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LANG = "zh"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """All strings, keyed; a key defined in two files is an error (one meaning per key)."""
    merged: dict[str, dict[str, str]] = {}
    for path in [STRINGS_FILE, *sorted(STRINGS_DIR.glob("*.toml"))]:
        with path.open("rb") as fh:
            part = tomllib.load(fh)
        twice = sorted(merged.keys() & part.keys())
        if twice:
            raise ValueError(f"{path.name} defines {', '.join(twice)} again")
        merged.update(part)
    return merged


def lang() -> str:
    return st.session_state.get("lang", DEFAULT_LANG)


def t(key: str, **values: object) -> str:
    """The string for `key` in the current language; KeyError for an unknown key."""
    text = catalogue()[key][lang()]
    return text.format(**values) if values else text


def label(kind: str, code: object) -> str:
    """A code value as people read it, in the current language.

    Parameters
    ----------
    kind
        A code table of the standard (`purpose`, `incident_type`, ... in data/codes.toml)
        or a catalogue family: `role`, `level`, `action`, `decision`, `dataset`, `status`,
        `kind` (subject kinds), whose entries are `<kind>_<code>` in ui/strings.toml.
    code
        The stored value; None (or NaN) reads as a dash.

    Returns
    -------
    str
        The label; an action audited as refused (`<action>_refused`) reads as the action
        and "refused"; a decision that is a refusal's error code reads as "refused". A code
        the catalogue does not know yet is shown as it is (tests/test_language.py finds it).
    """
    if code is None or code != code:  # NaN is not equal to itself
        return "—"
    code = str(code)
    tables = code_tables()
    if kind in tables:
        entry = next((c for c in tables[kind] if c.code == code), None)
        if entry:
            return entry.label(lang())
    known = catalogue()
    if f"{kind}_{code}" in known:
        return t(f"{kind}_{code}")
    if kind == "action" and code.endswith("_refused"):
        return t("lang_refused_action", action=label("action", code.removesuffix("_refused")))
    if kind == "decision" and f"err_{code}" in known:
        return t("decision_refused")
    return code


def language_switch() -> None:
    """A sidebar selector that switches the catalogue language for this session."""
    st.sidebar.selectbox(
        t("language"),
        options=list(LANGUAGES),
        format_func=LANGUAGES.__getitem__,
        key="lang",
    )
