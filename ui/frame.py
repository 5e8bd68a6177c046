"""Shared page furniture: the hub handle, the production gate, public reference data, the
pages a person cannot open, and Streamlit's own widget texts in the reader's language."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from hub.security.policy import Principal
from hub.service import Hub
from hub.settings import SettingsError
from hub.store import StoreError
from ui.hub import get_hub
from ui.i18n import lang, t
from ui.notices import notice_badge
from ui.text import plain


def hub_or_stop() -> Hub:
    """The process's Hub; a one-line message instead of a traceback if the store is down."""
    try:
        return get_hub()
    except (StoreError, SettingsError) as exc:
        st.error(t("store_unavailable", reason=str(exc)))
        st.stop()


@st.cache_resource(show_spinner=False)
def _startup_problems() -> list[str]:
    return get_hub().startup_problems()


def production_gate(hub: Hub) -> None:
    """With HUB_ENV=production, refuse to run while demo keys or passwords are in use."""
    problems = _startup_problems() if hub.settings.is_production else []
    if problems:
        st.error(t("production_refused"))
        for p in problems:
            st.markdown(f"- {plain(p)}")
        st.stop()


@st.cache_data(show_spinner=False)
def _cities() -> dict[str, tuple[str, str]]:
    # Public reference data: safe in the cross-user data cache.
    return get_hub().cities()


def city_names() -> dict[str, str]:
    """adcode -> city name in the current language."""
    i = 0 if lang() == "zh" else 1
    return {code: names[i] for code, names in _cities().items()}


def page_furniture(principal: Principal) -> None:
    """What every signed-in page shows around itself: the notification badge (a fragment
    refreshed every few seconds, with a toast for each new item) at the top of the
    sidebar. app.py calls it once per run, before the page."""
    with st.sidebar:
        notice_badge(principal)


NOT_FOUND = "not-found"  # the URL path of the page for addresses that name no page


def missing_page(message_key: str, home: st.Page | None) -> Callable[[], None]:
    """A page body saying why nothing is shown here, with a link to the start page: an
    address that names no page (``message_key`` ``frame_page_not_found``; serve.py sends
    unknown paths to NOT_FOUND) or a page the role may not open (``page_not_allowed``, at
    its own address, so a shared deep link explains itself). Registered as hidden pages
    in app.py, so that Streamlit never shows its own English "Page not found" dialog."""

    def body() -> None:
        st.warning(t(message_key), icon=":material/block:")
        if home is not None:
            st.page_link(home, label=t("frame_go_home"), icon=":material/home:")

    return body


def streamlit_texts(max_upload_mb: float | None = None) -> None:
    """Streamlit's own file-uploader texts in the reader's language.

    Streamlit cannot be told the uploader's words: its button says "Upload" and its
    hint "200MB per file • CSV" in English whatever the language (streamlit#13500, open;
    the PR that added them, #10042, was closed unmerged). So the English is hidden and
    ours is drawn in its place, stating the real limit: `max_upload_mb` when a page's
    uploader has one of its own (see `file_uploader`), else Streamlit's server-wide
    ``server.maxUploadSize``. app.py calls it once per run for every page.
    """
    mb = max_upload_mb if max_upload_mb is not None else st.get_option("server.maxUploadSize")
    st.html(_uploader_css("", mb))


def _uploader_css(scope: str, mb: float) -> str:
    drop = css_string(f"{t('frame_upload_drop')} · {t('frame_upload_limit', mb=f'{mb:g}')}")
    browse = css_string(t("frame_upload_browse"))
    zone = f"{scope} [data-testid='stFileUploaderDropzone']"
    return f"""<style>
{zone} [data-testid='stFileUploaderDropzoneInstructions'] span {{ font-size: 0; }}
{zone} [data-testid='stFileUploaderDropzoneInstructions'] span::after {{
  content: {drop}; font-size: 0.875rem; }}
{zone} button [data-testid='stMarkdownContainer'] p {{ font-size: 0; }}
{zone} button [data-testid='stMarkdownContainer'] p::after {{
  content: {browse}; font-size: 0.875rem; }}
</style>"""


def css_string(text: str) -> str:
    """`text` as a CSS string literal: quotes, backslashes and line breaks escaped, and
    `<` too, so that nothing in it can end the style element."""
    out = "".join(f"\\{ord(c):x} " if c in "\"'\\<>\n\r" else c for c in text)
    return f'"{out}"'


def file_uploader(label: str, *, key: str, types: list[str], max_mb: float, **kwargs):
    """`st.file_uploader` whose hint states `max_mb` in the reader's language, and which
    refuses a larger file in the browser already (Streamlit's ``max_upload_size``).
    The feeds page calls it with the hub's limit: ``file_uploader(t("fd_file"),
    key="feed_file", types=UPLOAD_TYPES, max_mb=hub.settings.upload_max_mb)``."""
    import math

    with st.container(key=f"upload-{key}"):
        st.html(_uploader_css(f".st-key-upload-{key}", max_mb))
        return st.file_uploader(label, type=types, key=key,
                                max_upload_size=max(1, math.ceil(max_mb)), **kwargs)  # fmt: skip
