"""Every user-facing string comes from `ui/strings.toml`: zh-CN by default, English on request."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

import streamlit as st

STRINGS_FILE = Path(__file__).with_name("strings.toml")
LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LANG = "zh"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    with STRINGS_FILE.open("rb") as fh:
        return tomllib.load(fh)


def lang() -> str:
    return st.session_state.get("lang", DEFAULT_LANG)


def t(key: str, **values: object) -> str:
    """The string for `key` in the current language; KeyError for an unknown key."""
    text = catalogue()[key][lang()]
    return text.format(**values) if values else text


def language_switch() -> None:
    """A sidebar selector that switches the catalogue language for this session."""
    st.sidebar.selectbox(
        t("language"),
        options=list(LANGUAGES),
        format_func=LANGUAGES.__getitem__,
        key="lang",
    )
