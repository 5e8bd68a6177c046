"""Streamlit's own widget words in the reader's language (issue 16): the file uploader's
"Upload" and "200MB per file" cannot be set in Streamlit (streamlit#13500), so ui.frame
hides them and draws ours, stating the limit that is really enforced."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _styles(at: AppTest) -> str:
    return "\n".join(h.proto.body for h in at.get("html"))


def _page(lang: str, limit: float | None) -> None:
    import streamlit as st

    from ui.frame import file_uploader, streamlit_texts

    st.session_state["lang"] = lang
    streamlit_texts()
    if limit is not None:
        file_uploader("数据文件", key="feed", types=["csv"], max_mb=limit)


def test_the_uploader_says_the_server_limit_in_chinese_and_english():
    at = AppTest.from_function(_page, args=("zh", None)).run()
    assert not at.exception, at.exception
    css = _styles(at)
    assert "将文件拖放到此处 · 单个文件不超过 200 MB" in css and "选择文件" in css, css
    assert "font-size: 0" in css  # Streamlit's English is hidden, not removed
    english = _styles(AppTest.from_function(_page, args=("en", None)).run())
    assert "At most 200 MB per file" in english and "Browse files" in english


def test_an_uploader_with_a_limit_of_its_own_states_and_enforces_it():
    at = AppTest.from_function(_page, args=("zh", 12.5)).run()
    assert not at.exception, at.exception
    css = _styles(at)
    assert ".st-key-upload-feed [data-testid='stFileUploaderDropzone']" in css
    assert "单个文件不超过 12.5 MB" in css
    uploader = at.get("file_uploader")[0]
    assert uploader.proto.max_upload_size_mb == 13  # Streamlit refuses a larger file


def test_text_in_a_style_cannot_end_it():
    from ui.frame import css_string

    assert css_string('a"b</style>') == r'"a\22 b\3c /style\3e "'
