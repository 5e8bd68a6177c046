"""Trajectory: the pursuit plate as a path, through the one audited lookup path.

A 合肥 investigator sees the 合肥 sightings with speeds and 滁州's as a pointer; after
滁州's approver grants the request (or after break-glass) the same query shows the
crossing into 滁州. Each test works in its own demo day so grants do not leak across.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hub import demo
from hub.models import AuditEntry, Camera
from hub.records import LOCAL_TZ
from hub.security.errors import HubError
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory
from hub.trajectory import check_window
from tests.conftest import ANCHOR, BACKENDS
from tests.security_support import at, principal, seeded_copy

PLATE, CASE_NO = demo.PURSUIT_PLATE, demo.PURSUIT_CASE_NO
HEFEI, CHUZHOU = demo.PURSUIT_FROM, demo.PURSUIT_TO
PURSUIT = Reason("pursuit", CASE_NO)
START, END = ANCHOR - timedelta(hours=3), ANCHOR + timedelta(hours=1)


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    hub = Hub(engine, load_settings())
    who = {u: principal(engine, u) for u in ("investigator.hf", "approver.cz", "officer.hf")}
    yield hub, who, engine
    engine.dispose()


def _last_audit(engine, username: str) -> AuditEntry:
    with session_factory(engine)() as s:
        return s.scalars(
            select(AuditEntry)
            .where(AuditEntry.username == username)
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        ).one()


def test_own_city_points_with_speeds_and_a_pointer_for_the_neighbour(env) -> None:
    hub, who, engine = env
    tr = hub.plate_trajectory(who["investigator.hf"], PLATE, START, END, PURSUIT, now=at(day=0))
    assert tr.points and {p["city_code"] for p in tr.points} == {HEFEI}
    assert [p["ts"] for p in tr.points] == sorted(p["ts"] for p in tr.points)
    assert tr.points[0]["speed_kmh"] is None
    assert all(p["speed_kmh"] is not None and p["speed_kmh"] >= 0 for p in tr.points[1:])
    # The road leg runs at the scripted 95 km/h (haversine between cameras ~ road km).
    assert 60 < tr.points[-1]["speed_kmh"] < 130
    with session_factory(engine)() as s:
        names = dict(s.execute(select(Camera.id, Camera.name)).all())
    assert all(p["camera"] == names[p["camera_id"]] for p in tr.points)
    assert tr.crossings == []
    (ptr,) = tr.pointers
    assert (ptr.city_code, ptr.level, ptr.count, ptr.route.value) == (
        CHUZHOU, "sensitive", 3, "request_city",
    )  # fmt: skip
    assert ptr.first_day >= tr.points[-1]["ts"].astimezone(LOCAL_TZ).date()
    entry = _last_audit(engine, "investigator.hf")
    assert (entry.action, entry.dataset, entry.case_no) == ("search", "sightings", CASE_NO)
    assert entry.result_count == len(tr.points) and entry.decision == "ok"


def test_after_approval_the_crossing_into_chuzhou_appears(env) -> None:
    hub, who, engine = env
    inv, t0 = who["investigator.hf"], at(day=1)
    rid = hub.request_access(
        inv, owner_city=CHUZHOU, level="sensitive", scope_kind="plate", scope_value=PLATE,
        reason=PURSUIT, justification="嫌疑车辆驶入滁州", now=t0,
    )  # fmt: skip
    hub.decide_request(who["approver.cz"], rid, approve=True, note="同意，限本案", now=t0)
    tr = hub.plate_trajectory(inv, PLATE, START, END, PURSUIT, now=t0)
    assert tr.pointers == [] and tr.grants_used
    assert {p["city_code"] for p in tr.points} == {HEFEI, CHUZHOU}
    (crossing,) = tr.crossings
    assert (crossing["from_city"], crossing["to_city"]) == (HEFEI, CHUZHOU)
    assert crossing["left_at"] < crossing["entered_at"]
    assert _last_audit(engine, "investigator.hf").grant_id in tr.grants_used


def test_break_glass_shows_the_crossing_at_once(env) -> None:
    hub, who, _ = env
    inv, t0 = who["investigator.hf"], at(day=3)
    hub.break_glass(
        inv, plate=PLATE, owner_city=CHUZHOU, reason=PURSUIT, now=t0,
        justification="追逃：嫌疑车辆驶入滁州",
    )  # fmt: skip
    tr = hub.plate_trajectory(inv, PLATE, START, END, PURSUIT, now=t0 + timedelta(minutes=5))
    assert [(c["from_city"], c["to_city"]) for c in tr.crossings] == [(HEFEI, CHUZHOU)]


def test_window_without_data_is_empty_not_an_error(env) -> None:
    hub, who, engine = env
    far = ANCHOR - timedelta(days=200)
    tr = hub.plate_trajectory(
        who["investigator.hf"], PLATE, far, far + timedelta(days=1), PURSUIT, now=at(day=4)
    )
    assert (tr.points, tr.crossings, tr.pointers) == ([], [], [])
    entry = _last_audit(engine, "investigator.hf")
    assert (entry.action, entry.dataset, entry.result_count) == ("search", "sightings", 0)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (END, START),
        (START, START + timedelta(days=31, seconds=1)),
    ],
    ids=["reversed", "too_long"],
)
def test_bad_window_is_refused_and_audited(env, start, end) -> None:
    hub, who, engine = env
    with pytest.raises(HubError) as exc:
        hub.plate_trajectory(who["investigator.hf"], PLATE, start, end, PURSUIT, now=at(day=5))
    assert exc.value.code == "bad_window"
    entry = _last_audit(engine, "investigator.hf")
    assert (entry.action, entry.decision, entry.dataset) == (
        "search_refused",
        "bad_window",
        "sightings",
    )


def test_a_window_without_a_time_zone_is_refused_at_the_boundary(env) -> None:
    """A naive time is ambiguous (local or UTC?): refused before the lookup, and audited."""
    hub, who, engine = env
    with pytest.raises(HubError) as exc:
        hub.plate_trajectory(who["investigator.hf"], PLATE, START.replace(tzinfo=None), END,
                             PURSUIT, now=at(day=5))  # fmt: skip
    assert exc.value.code == "bad_input" and exc.value.params["field"] == "start"
    entry = _last_audit(engine, "investigator.hf")
    assert (entry.action, entry.decision) == ("plate_trajectory_refused", "bad_input")


def test_bad_plate_is_refused(env) -> None:
    hub, who, _ = env
    with pytest.raises(HubError) as exc:
        hub.plate_trajectory(who["investigator.hf"], "nonsense", START, END, PURSUIT, now=at(day=5))
    assert exc.value.code == "bad_plate"


def test_a_31_day_window_is_accepted() -> None:
    start, end = check_window(START, START + timedelta(days=31))
    assert end - start == timedelta(days=31)


def test_page_draws_the_path_and_the_pointer(tmp_path_factory, monkeypatch) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    engine = seeded_copy("sqlite", tmp_path_factory)
    monkeypatch.setenv("HUB_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    st.cache_data.clear()
    try:
        at = AppTest.from_file(str(ROOT / "pages/trajectory.py"), default_timeout=60)
        at.session_state["principal"] = principal(engine, "investigator.hf")
        at.session_state["traj_query"] = {
            "plate": PLATE,
            "start": START,
            "end": END,
            "reason": PURSUIT,
        }
        at.run()
        assert not at.exception and not at.error
        assert len(at.get("deck_gl_json_chart")) == 1
        assert len(at.dataframe[0].value) == 6
        assert any("滁州市有 3 条敏感记录" in m.value for m in at.markdown)
        assert len(at.slider) == 1
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
        engine.dispose()
