"""The sidebar names where the signed-in person works (issue 16): a province-level account
(province approver, analyst, leader) reads as the provincial department, never as the city
its department happens to sit in; city accounts read as their city."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from hub.demo import DEMO_USERS


def _script(role: str, city: str | None, lang: str) -> None:
    import streamlit as st

    from hub.security.policy import Principal
    from ui.auth import identity_sidebar

    st.session_state["lang"] = lang
    who = Principal(user_id=1, username="someone", display_name="某人", role=role,
                    city_code=city, district_code=None, session_version=0)  # fmt: skip
    identity_sidebar(who, {"340100": "合肥市" if lang == "zh" else "Hefei",
                           "341100": "滁州市" if lang == "zh" else "Chuzhou"})  # fmt: skip


def _caption(role: str, city: str | None, lang: str = "zh") -> str:
    at = AppTest.from_function(_script, args=(role, city, lang)).run()
    assert not at.exception, at.exception
    return at.sidebar.caption[0].value


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("province.approver", "省厅审批 · 省厅"),
        ("leader", "领导 · 省厅"),
        ("analyst", "数据分析员 · 省厅"),
        ("approver.hf", "市局审批 · 合肥市"),
        ("commander.cz", "指挥长 · 滁州市"),
        ("admin", "平台管理员 · 省级"),
    ],
)
def test_the_sidebar_names_the_province_for_province_accounts(username, expected):
    _, _, role, city, _ = next(u for u in DEMO_USERS if u[0] == username)
    assert _caption(role, city) == expected


def test_in_english_too():
    assert _caption("leader", "340100", "en").endswith(" · Provincial department")
    assert _caption("investigator", "340100", "en").endswith(" · Hefei")
