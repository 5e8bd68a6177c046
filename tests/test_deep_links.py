"""A notice's deep link opens its item: `?request=N`, `?operation=N` and `?alert=N` put
that item first (selected, marked, its details open) on the page it names, in AppTest
against a writable copy of the demo province. `?hit=N` is covered by the watch page's
own focus (tests/test_watch.py and the browser pursuit test)."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from hub.demo import PURSUIT_CASE_NO, PURSUIT_PLATE
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from tests.conftest import ROOT
from tests.security_support import seeded_copy

CHUZHOU, BORDER = "341100", (117.95, 31.85)


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Hub:
    engine = seeded_copy("sqlite", tmp_path_factory)
    mp = pytest.MonkeyPatch()
    mp.setenv("HUB_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    yield Hub(engine, load_settings())
    st.cache_resource.clear()
    mp.undo()


def _page(path: str, principal, **params: int) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=60)
    at.session_state["principal"] = principal
    for k, v in params.items():
        at.query_params[k] = str(v)
    return at.run()


def _request(hub: Hub, inv, plate: str) -> int:
    return hub.request_access(
        inv, owner_city=CHUZHOU, level="sensitive", scope_kind="plate", scope_value=plate,
        reason=Reason("pursuit", PURSUIT_CASE_NO), justification="追踪嫌疑车辆去向",
    )  # fmt: skip


def test_request_link_puts_that_request_first_for_approver_and_requester(hub: Hub) -> None:
    inv = hub.sign_in("investigator.hf", "demo-2026")
    first, second = _request(hub, inv, PURSUIT_PLATE), _request(hub, inv, "皖A12345")
    approver = hub.sign_in("approver.cz", "demo-2026")

    def inbox_order(at: AppTest) -> list[str]:
        return [m.value for m in at.markdown if m.value.lstrip("🔴 ").startswith("**#")]

    plain = _page("pages/requests.py", approver)
    assert not plain.exception
    assert f"**#{first}**" in inbox_order(plain)[0]  # the inbox's own order
    linked = _page("pages/requests.py", approver, request=second)
    assert not linked.exception
    assert f"**#{second}**" in inbox_order(linked)[0]
    # The requester's notice (request_decided) opens it on top of their own list.
    hub.decide_request(approver, first, approve=True, note="同意")
    mine = _page("pages/requests.py", inv, request=first).dataframe[0].value
    assert mine.iloc[0]["编号"] == first
    assert _page("pages/requests.py", inv).dataframe[0].value.iloc[0]["编号"] != first


def test_operation_link_selects_that_operation_once(hub: Hub) -> None:
    hf = hub.sign_in("commander.hf", "demo-2026")
    ops = [
        hub.create_operation(
            hf,
            name=f"联合行动{i}",
            kind="planned_event",
            lon=BORDER[0],
            lat=BORDER[1],
            radius_m=3000,
            invite=[CHUZHOU],
        )  # fmt: skip
        for i in range(2)
    ]
    default = _page("pages/response.py", hf).selectbox(key="resp_op").value
    other = ops[0] if default != ops[0] else ops[1]
    at = _page("pages/response.py", hf, operation=other)
    assert not at.exception
    assert at.selectbox(key="resp_op").value == other
    # Applied once: the person may then pick another and the link does not pull back.
    at.selectbox(key="resp_op").select(default).run()
    assert at.selectbox(key="resp_op").value == default
    # An operation the viewer may not see is not selected (Wuhu was not invited).
    wh = hub.sign_in("commander.wh", "demo-2026")
    elsewhere = _page("pages/response.py", wh, operation=other)
    assert not elsewhere.exception
    assert all(box.value != other for box in elsewhere.selectbox)


def test_alert_link_puts_that_alert_first_with_its_details_open(hub: Hub) -> None:
    hf = hub.sign_in("commander.hf", "demo-2026")
    older, _ = hub.raise_alert(hf, title="深链预警甲", level="high")
    hub.raise_alert(hf, title="深链预警乙", level="low")
    cz = hub.sign_in("commander.cz", "demo-2026")
    plain = _page("pages/alerts.py", cz)
    assert not plain.exception
    assert not any(m.value == "**深链预警甲**" for m in plain.markdown)  # nothing open
    at = _page("pages/alerts.py", cz, alert=older)
    assert not at.exception
    rows = [m.value for m in at.markdown if "深链预警" in m.value]
    assert "深链预警甲" in rows[0]
    assert "**深链预警甲**" in rows  # the detail pane shows it


def test_lookup_requests_every_hidden_city_in_one_click(hub: Hub) -> None:
    from sqlalchemy import text

    with hub.engine.connect() as conn:
        case_no = conn.execute(text(
            "SELECT case_no FROM cases WHERE city_code = '340200' AND status = 'open' "
            "ORDER BY id LIMIT 1"
        )).scalar_one()  # fmt: skip
    inv = hub.sign_in("investigator.wh", "demo-2026")
    reason = Reason("pursuit", case_no)
    hidden = {(p.city_code, p.level) for p in hub.search_plate(inv, PURSUIT_PLATE, reason).pointers}
    assert len(hidden) >= 2  # 合肥 and 滁州 both hold the pursuit's reads
    at = AppTest.from_file(str(ROOT / "pages/lookup.py"), default_timeout=60)
    at.session_state["principal"] = inv
    at.session_state["reason"] = reason
    at.run()
    [value] = [w for w in at.text_input if w.label == "查询内容"]
    value.input(PURSUIT_PLATE)
    [go] = [b for b in at.button if b.label == "查询"]
    go.click().run()
    assert not at.exception
    [why] = [w for w in at.text_area if w.key == "lookup-req-all-why"]
    why.input("追逃：嫌疑车辆途经多市，需调阅卡口记录")
    [send] = [b for b in at.button if b.label == f"全部申请（{len(hidden)}）"]
    send.click().run()
    assert not at.exception
    filed = {(v.owner_city, v.level, v.scope_value, v.case_no)
             for v in hub.my_requests(inv) if v.status == "pending"}  # fmt: skip
    assert filed == {(c, lvl, PURSUIT_PLATE, case_no) for c, lvl in hidden}
    assert at.session_state["lookup-awaited"]
