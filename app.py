"""Entry point: page config, language, navigation built from the page registry."""

from pathlib import Path

import streamlit as st

from ui.i18n import language_switch, t
from ui.registry import PAGES

st.set_page_config(
    page_title=t("app_title"),
    page_icon=str(Path(__file__).parent / "ui" / "icon.png"),
    layout="wide",
)
language_switch()
pages = [
    st.Page(spec.file, title=t(spec.title_key), icon=spec.icon, url_path=spec.key) for spec in PAGES
]
st.navigation(pages).run()
