"""Pages run headless (Streamlit AppTest) against a seeded store, in both languages."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT
from ui.registry import PAGES


@pytest.fixture
def app_env(seeded_sqlite, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", seeded_sqlite.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _run(path: str, lang: str = "zh") -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=60)
    at.session_state["lang"] = lang
    return at.run()


def test_app_opens_on_the_province_page(app_env):
    at = _run("app.py")
    assert not at.exception
    assert at.title[0].value == "全省数据资源概况"
    assert "合成数据" in at.info[0].value


@pytest.mark.parametrize("spec", PAGES, ids=lambda s: s.key)
def test_each_page_renders_without_error(app_env, spec):
    at = _run(spec.file)
    assert not at.exception


def test_province_page_shows_counts_per_class(app_env, seeded_sqlite):
    with seeded_sqlite.connect() as conn:
        expected = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM incidents WHERE classification <> 'secret'"
        ).scalar_one()
    at = _run("pages/province.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["警情"] == f"{expected:,}"
    assert int(metrics["记录总数"].replace(",", "")) > 20_000
    table = at.dataframe[0].value
    assert len(table) == 16 and "合肥市" in set(table["地市"])


def test_english_switch(app_env):
    at = _run("pages/province.py", lang="en")
    assert at.title[0].value == "Data held across the province"
    assert "Hefei" in set(at.dataframe[0].value["City"])


def test_store_down_is_a_message_not_a_traceback(monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
    st.cache_resource.clear()
    at = _run("pages/province.py")
    st.cache_resource.clear()
    assert not at.exception
    assert "cannot reach the store" in at.error[0].value
