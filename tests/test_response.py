"""Joint response, alerts, assists and exercise mode through the `Hub` on both backends:
the lifecycle refused step by step, who may dispatch, the recipients of a border alert,
acknowledgement and escalation, masked assist subjects, an exercise played to the end.

Each test opens its own operation (or alert) on one shared writable copy per backend.
"""

from __future__ import annotations

import json
from datetime import timedelta

import h3
import pytest
from shapely.geometry import Point
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from geo.adjacency import city_adjacency
from geo.distance import buffer_m
from hub import alerts as alerts_mod
from hub import exercise
from hub.alert_routing import alert_recipients
from hub.models import (
    Alert,
    AlertRecipient,
    AuditEntry,
    Case,
    ExerciseRecord,
    Incident,
    Operation,
    Person,
    ResourceRequest,
    Unit,
)
from hub.response_rules import REQUEST_STATES, REQUEST_TRANSITIONS
from hub.security.errors import AccessDenied, HubError, InputError
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS, ROOT
from tests.security_support import at, principal, seeded_copy

HEFEI, CHUZHOU, WUHU = "340100", "341100", "340200"
BORDER = (117.85, 32.10)  # 肥东, 3 km from the 滁州 line


class Env:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.hub = Hub(engine, load_settings())
        self._who: dict = {}

    def who(self, username: str):
        if username not in self._who:
            self._who[username] = principal(self.engine, username)
        return self._who[username]

    def scalar(self, stmt):
        with session_factory(self.engine)() as s:
            return s.scalar(stmt)

    def unit(self, city: str, status: str = "available", kind: str = "patrol_car", skip=()):
        return self.scalar(
            select(Unit.id).where(Unit.city_code == city, Unit.status == status,
                                  Unit.kind == kind, Unit.id.not_in(list(skip)))
            .order_by(Unit.id).limit(1)
        )  # fmt: skip

    def operation(self, *, invite=(CHUZHOU,), accept=True) -> int:
        hf = self.who("commander.hf")
        op = self.hub.create_operation(hf, name="测试联合行动", kind="planned_event",
                                       lon=BORDER[0], lat=BORDER[1], radius_m=5000,
                                       invite=list(invite), now=at())  # fmt: skip
        if accept:
            for city in invite:
                user = {CHUZHOU: "commander.cz", WUHU: "commander.wh"}[city]
                self.hub.respond_invitation(self.who(user), op, accept=True, now=at())
        return op


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    yield Env(engine)
    engine.dispose()


# --- resource requests: lifecycle and permissions -----------------------------------------


def test_two_city_request_runs_its_whole_lifecycle(env):
    op = env.operation()
    hf, cz = env.who("commander.hf"), env.who("commander.cz")
    unit = env.unit(CHUZHOU)
    rr = env.hub.request_unit(hf, op, unit, note="请求支援", now=at(1))
    assert env.hub.act_on_request(cz, rr, "accepted", now=at(2)) == "available"
    assert env.hub.act_on_request(cz, rr, "dispatched", now=at(3)) == "dispatched"
    assert env.hub.act_on_request(cz, rr, "en_route", now=at(4)) == "en_route"
    assert env.hub.act_on_request(cz, rr, "on_scene", now=at(5)) == "on_scene"
    assert env.hub.act_on_request(hf, rr, "released", now=at(6)) == "available"
    b = env.hub.operation_board(hf, op, now=at(7))
    row = b.requests.set_index("id").loc[rr]
    assert row.status == "released" and row.actions == []
    assert row.dispatched_at is not None and row.on_scene_at is not None
    events = [e["event"] for e in b.timeline.event if e]
    assert {"requested", "accepted", "dispatched", "en_route", "on_scene", "released"} <= set(
        events
    )


def _request_in(env, op, state: str) -> int:
    """A fresh request of a 滁州 unit to 合肥's operation, walked to `state`."""
    hf, cz = env.who("commander.hf"), env.who("commander.cz")
    # Any free mobile unit of 滁州: a unit may be asked for by several operations until
    # one of them dispatches it.
    unit = env.scalar(
        select(Unit.id).where(Unit.city_code == CHUZHOU, Unit.status == "available",
                              Unit.kind != "hospital").order_by(Unit.id).limit(1)
    )  # fmt: skip
    rr = env.hub.request_unit(hf, op, unit, now=at(10))
    path = {"requested": [], "accepted": ["accepted"], "declined": ["declined"],
            "cancelled": ["cancelled"], "dispatched": ["accepted", "dispatched"],
            "en_route": ["accepted", "dispatched", "en_route"],
            "on_scene": ["accepted", "dispatched", "en_route", "on_scene"],
            "released": ["accepted", "dispatched", "released"]}[state]  # fmt: skip
    for step in path:
        env.hub.act_on_request(hf if step == "cancelled" else cz, rr, step, now=at(11))
    return rr


@pytest.mark.parametrize("state", ["requested", "accepted", "dispatched", "declined"])
def test_every_illegal_step_is_refused_and_changes_nothing(env, state):
    op = env.operation()
    rr = _request_in(env, op, state)
    cz, hf = env.who("commander.cz"), env.who("commander.hf")
    before = env.scalar(select(ResourceRequest.status).where(ResourceRequest.id == rr))
    unit_before = env.scalar(
        select(Unit.status).join(ResourceRequest, ResourceRequest.unit_id == Unit.id)
        .where(ResourceRequest.id == rr)
    )  # fmt: skip
    for new in REQUEST_STATES:
        if (state, new) in REQUEST_TRANSITIONS:
            continue
        for who in (cz, hf):
            with pytest.raises(InputError) as caught:
                env.hub.act_on_request(who, rr, new, now=at(12))
            assert caught.value.code in ("illegal_transition", "unknown_state")
    assert env.scalar(select(ResourceRequest.status).where(ResourceRequest.id == rr)) == before
    assert env.scalar(
        select(Unit.status).join(ResourceRequest, ResourceRequest.unit_id == Unit.id)
        .where(ResourceRequest.id == rr)
    ) == unit_before  # fmt: skip
    refused = env.scalar(
        select(func.count()).select_from(AuditEntry)
        .where(AuditEntry.action == "unit_request_step_refused",
               AuditEntry.decision == "illegal_transition")
    )  # fmt: skip
    assert refused > 0


def test_steps_belong_to_the_right_city(env):
    op = env.operation()
    rr = _request_in(env, op, "requested")
    hf, cz = env.who("commander.hf"), env.who("commander.cz")
    with pytest.raises(AccessDenied) as caught:
        env.hub.act_on_request(hf, rr, "accepted", now=at(13))  # the owner accepts, not 合肥
    assert caught.value.code == "not_request_party"
    with pytest.raises(AccessDenied):
        env.hub.act_on_request(cz, rr, "cancelled", now=at(13))  # the requester cancels
    wh = env.who("commander.wh")
    with pytest.raises(InputError) as caught:
        env.hub.act_on_request(wh, rr, "accepted", now=at(13))  # not a party: not even seen
    assert caught.value.code == "unknown_resource_request"


def test_only_the_owning_citys_commander_dispatches(env):
    op = env.operation()
    hefei_unit = env.unit(HEFEI)
    cz, hf = env.who("commander.cz"), env.who("commander.hf")
    with pytest.raises(AccessDenied) as caught:
        env.hub.dispatch_unit(cz, op, hefei_unit, now=at(14))
    assert caught.value.code == "not_unit_commander"
    assert env.scalar(select(Unit.status).where(Unit.id == hefei_unit)) == "available"
    investigator = env.who("investigator.hf")
    with pytest.raises(AccessDenied) as caught:
        env.hub.dispatch_unit(investigator, op, hefei_unit, now=at(14))
    assert caught.value.code == "role_not_allowed"
    env.hub.dispatch_unit(hf, op, hefei_unit, now=at(14))
    assert env.scalar(select(Unit.status).where(Unit.id == hefei_unit)) == "dispatched"
    with pytest.raises(InputError) as caught:  # 合肥 asks for its own unit: dispatch it
        env.hub.request_unit(hf, op, env.unit(HEFEI, skip=[hefei_unit]), now=at(14))
    assert caught.value.code == "request_own_unit"


def test_a_busy_or_fixed_unit_cannot_be_dispatched(env):
    op = env.operation()
    hf = env.who("commander.hf")
    busy = env.scalar(select(Unit.id).where(Unit.city_code == HEFEI, Unit.status == "on_scene"))
    with pytest.raises(InputError) as caught:
        env.hub.dispatch_unit(hf, op, busy, now=at(15))
    assert caught.value.code == "unit_unavailable"
    hospital = env.scalar(select(Unit.id).where(Unit.city_code == HEFEI, Unit.kind == "hospital"))
    with pytest.raises(InputError) as caught:
        env.hub.dispatch_unit(hf, op, hospital, now=at(15))
    assert caught.value.code == "unit_not_mobile"


def test_an_accepted_request_for_a_unit_gone_out_of_service_cannot_dispatch(env):
    op = env.operation()
    rr = _request_in(env, op, "accepted")
    cz = env.who("commander.cz")
    unit = env.scalar(select(ResourceRequest.unit_id).where(ResourceRequest.id == rr))
    env.hub.set_unit_status(cz, unit, "out_of_service", now=at(16))
    with pytest.raises(InputError) as caught:
        env.hub.act_on_request(cz, rr, "dispatched", now=at(16))
    assert caught.value.code == "unit_unavailable"
    assert env.scalar(select(ResourceRequest.status).where(ResourceRequest.id == rr)) == "accepted"


def test_invited_city_must_accept_and_others_do_not_see_the_operation(env):
    op = env.operation(accept=False)
    cz, wh = env.who("commander.cz"), env.who("commander.wh")
    assert env.hub.operation_board(cz, op, now=at(17)).my_status == "invited"
    with pytest.raises(AccessDenied) as caught:
        env.hub.add_timeline_entry(cz, op, "到达", now=at(17))
    assert caught.value.code == "not_party"
    with pytest.raises(InputError) as caught:
        env.hub.operation_board(wh, op, now=at(17))
    assert caught.value.code == "unknown_operation"
    assert op not in set(env.hub.operations(wh).id)


def test_board_lists_units_of_parties_with_eta_and_is_audited(env):
    op = env.operation()
    hf = env.who("commander.hf")
    b = env.hub.operation_board(hf, op, now=at(18))
    assert set(b.units.city_code) <= {HEFEI, CHUZHOU} and CHUZHOU in set(b.units.city_code)
    assert (b.units.eta_min > 0).all() and b.units.eta_min.is_monotonic_increasing is not None
    assert (b.units.distance_km.diff().dropna() >= 0).all(), "nearest first"
    entry = env.scalar(
        select(AuditEntry).where(AuditEntry.username == "commander.hf",
                                 AuditEntry.subject == f"operation:{op}",
                                 AuditEntry.action == "map_view")
    )  # fmt: skip
    assert entry is not None and json.loads(entry.record_ids)
    again = env.hub.operation_board(hf, op, now=at(18.5))  # same picture: not audited again
    assert len(again.units) == len(b.units)
    n = env.scalar(
        select(func.count()).select_from(AuditEntry)
        .where(AuditEntry.subject == f"operation:{op}", AuditEntry.action == "map_view",
               AuditEntry.username == "commander.hf")
    )  # fmt: skip
    assert n == 1


def test_timeline_refuses_identifiers_and_briefing_exports(env):
    op = env.operation()
    hf = env.who("commander.hf")
    with pytest.raises(InputError) as caught:
        env.hub.add_timeline_entry(hf, op, "联系人 13812345678", now=at(19))
    assert caught.value.code == "text_has_identifier"
    env.hub.add_timeline_entry(hf, op, "现场指挥部已设立", significant=True, now=at(19))
    brief = env.hub.operation_briefing(hf, op, {HEFEI: "合肥市"}, now=at(20))
    assert brief["organisation"]["lead"] == "合肥市"
    assert any(e["text"] == "现场指挥部已设立" for e in brief["significant_events"])


def test_eido_share_and_import_round_trip(env):
    hf, cz = env.who("commander.hf"), env.who("commander.cz")
    inc = env.scalar(
        select(Incident).where(Incident.city_code == HEFEI, Incident.classification == "internal")
        .limit(1)
    )  # fmt: skip
    case_no = env.scalar(select(Case.case_no).where(Case.city_code == HEFEI,
                                                    Case.status == "open").limit(1))  # fmt: skip
    eido = env.hub.share_incident(hf, inc.id, Reason("case_investigation", case_no), now=at(21))
    assert eido["incidentComponent"][0]["incidentTrackingIdentifier"] == f"{HEFEI}:{inc.source_id}"
    # 滁州 takes in a copy of its own (tests/test_eido_import.py has the ownership rules)
    new_id, created = env.hub.import_incident(cz, eido, now=at(21))
    assert created and new_id != inc.id
    assert env.scalar(select(Incident.city_code).where(Incident.id == new_id)) == CHUZHOU
    assert env.hub.import_incident(cz, eido, now=at(21)) == (new_id, False)
    with pytest.raises(InputError) as caught:
        env.hub.import_incident(cz, {"nonsense": 1}, now=at(21))
    assert caught.value.code == "bad_eido"


# --- alerts -----------------------------------------------------------------------------------


def test_border_alert_reaches_the_real_neighbours_and_only_them(env):
    hf = env.who("commander.hf")
    alert_id, cities = env.hub.raise_alert(hf, title="交界处连续盗窃", level="high",
                                           lon=BORDER[0], lat=BORDER[1], radius_m=3000,
                                           now=at(30))  # fmt: skip
    expected = alert_recipients(HEFEI, buffer_m(Point(*BORDER), 3000))
    assert cities == expected == [HEFEI, CHUZHOU]
    # 合肥 borders more cities than that: a border alert does not go to all of them.
    assert len(city_adjacency()[HEFEI]) > 2
    with session_factory(env.engine)() as s:
        stored = sorted(s.scalars(select(AlertRecipient.city_code)
                                  .where(AlertRecipient.alert_id == alert_id)))  # fmt: skip
    assert stored == expected


def test_whole_city_alert_goes_to_every_bordering_city(env):
    cz = env.who("commander.cz")
    _, cities = env.hub.raise_alert(cz, title="电信诈骗高发", level="medium", kind="fraud_wave",
                                    now=at(31))  # fmt: skip
    assert set(cities) == {CHUZHOU, *city_adjacency()[CHUZHOU]}


def test_acknowledgement_and_escalation(env):
    hf = env.who("commander.hf")
    alert_id, _ = env.hub.raise_alert(hf, title="测试预警", level="low", lon=BORDER[0],
                                      lat=BORDER[1], radius_m=2000, now=at(40, day=1))  # fmt: skip
    inv_cz = env.who("investigator.cz")
    inbox = env.hub.alerts(inv_cz, now=at(41, day=1))
    assert alert_id in set(inbox.id)
    env.hub.acknowledge_alert(inv_cz, alert_id, now=at(42, day=1))
    with pytest.raises(InputError) as caught:
        env.hub.acknowledge_alert(env.who("commander.cz"), alert_id, now=at(43, day=1))
    assert caught.value.code == "already_acknowledged"
    with pytest.raises(InputError) as caught:  # 芜湖 was not pushed this alert
        env.hub.acknowledge_alert(env.who("commander.wh"), alert_id, now=at(43, day=1))
    assert caught.value.code == "unknown_alert"
    with pytest.raises(AccessDenied):
        env.hub.acknowledge_alert(env.who("officer.cz"), alert_id, now=at(43, day=1))
    # 合肥 itself has not acknowledged: after the delay its push (only) escalates, once.
    # (Pushes of earlier days escalate on the first call; this alert's only after 30 min.)
    with transaction(env.engine) as s:
        alerts_mod.escalate_overdue(s, now=at(40, day=1))
    with transaction(env.engine) as s:
        assert alerts_mod.escalate_overdue(s, now=at(40 + 29, day=1)) == 0
        n = alerts_mod.escalate_overdue(s, now=at(40 + 31, day=1))
        assert n >= 1
        assert alerts_mod.escalate_overdue(s, now=at(40 + 32, day=1)) == 0
    with session_factory(env.engine)() as s:
        rows = dict(s.execute(select(AlertRecipient.city_code, AlertRecipient.escalated)
                              .where(AlertRecipient.alert_id == alert_id)).all())  # fmt: skip
    assert rows == {HEFEI: True, CHUZHOU: False}
    esc = env.hub.escalated_alerts(hf)
    assert ((esc.alert_id == alert_id) & (esc.city_code == HEFEI)).any()
    cap = env.hub.alert_cap(hf, alert_id, now=at(45, day=1))
    assert cap["status"] == "Actual" and cap["info"]["severity"] == "Minor"


def test_scan_flags_a_burst_pushes_it_and_does_not_repeat(env):
    now = at(day=3)
    lon, lat = BORDER
    cell7, cell8 = h3.latlng_to_cell(lat, lon, 7), h3.latlng_to_cell(lat, lon, 8)
    with transaction(env.engine) as s:
        for n in range(12):
            s.add(Incident(source_id=f"burst-{n}", city_code=HEFEI, classification="internal",
                           type_code="theft", severity=2, status="open",
                           ts=now - timedelta(hours=2, minutes=n), reported_at=now, lon=lon,
                           lat=lat, h3_r7=cell7, h3_r8=cell8))  # fmt: skip
    with transaction(env.engine) as s:
        result = alerts_mod.scan(s, now=now)
    assert result.flagged >= 1 and result.created
    with session_factory(env.engine)() as s:
        mine = s.scalar(select(Alert).where(Alert.source_id.like(f"scan-{cell7}-%")))
        assert mine is not None and mine.city_code == HEFEI and mine.kind == "hotspot"
        pushed = set(s.scalars(select(AlertRecipient.city_code)
                               .where(AlertRecipient.alert_id == mine.id)))  # fmt: skip
    assert HEFEI in pushed
    with transaction(env.engine) as s:
        again = alerts_mod.scan(s, now=now + timedelta(minutes=10))
    assert again.skipped_recent >= 1 and not any(
        env.scalar(select(Alert.source_id).where(Alert.id == i)).startswith(f"scan-{cell7}")
        for i in again.created
    )


# --- assists --------------------------------------------------------------------------------


def test_assist_subject_follows_levels_and_the_list_leaks_nothing(env):
    inv_hf, inv_cz = env.who("investigator.hf"), env.who("investigator.cz")
    case_no = env.scalar(select(Case.case_no).where(Case.city_code == HEFEI,
                                                    Case.status == "open").limit(1))  # fmt: skip
    person = env.scalar(select(Person).where(Person.city_code == HEFEI,
                                             Person.classification == "sensitive").limit(1))  # fmt: skip
    assist = env.hub.create_assist(inv_hf, case_no=case_no, subject_kind="person",
                                   subject_id=person.id, asked="请协助查找其在本市落脚点",
                                   to_cities=[CHUZHOU], now=at(50))  # fmt: skip
    listed = env.hub.assists(inv_cz, now=at(51))
    row = listed.set_index("id").loc[assist]
    assert not row.outgoing and row.my_status == "pending"
    assert person.name not in json.dumps(listed.astype(str).to_dict("records"), ensure_ascii=False)
    cz_case = env.scalar(select(Case.case_no).where(Case.city_code == CHUZHOU,
                                                    Case.status == "open").limit(1))  # fmt: skip
    view = env.hub.assist_subject(inv_cz, assist, Reason("case_investigation", cz_case), now=at(52))
    assert view.record.rows == [] and view.record.pointers[0].city_code == HEFEI
    own = env.hub.assist_subject(inv_hf, assist, Reason("case_investigation", case_no), now=at(52))
    assert own.record.rows[0]["name"] == person.name
    with pytest.raises(InputError) as caught:
        env.hub.assist_subject(env.who("investigator.wh"), assist,
                               Reason("case_investigation", cz_case), now=at(52))  # fmt: skip
    assert caught.value.code == "unknown_assist"
    env.hub.respond_assist(inv_cz, assist, "已布控，暂无发现", now=at(53))
    with pytest.raises(InputError) as caught:
        env.hub.respond_assist(inv_cz, assist, "再次反馈", now=at(54))
    assert caught.value.code == "already_responded"
    history = env.hub.assist_timeline(inv_hf, assist)
    assert list(history.status) == ["created", "responded"]
    with pytest.raises(AccessDenied):
        env.hub.close_assist(inv_cz, assist, now=at(55))
    env.hub.close_assist(inv_hf, assist, now=at(55))


def test_assist_refuses_a_case_of_another_city(env):
    inv_cz = env.who("investigator.cz")
    case_no = env.scalar(select(Case.case_no).where(Case.city_code == HEFEI,
                                                    Case.status == "open",
                                                    Case.classification == "internal").limit(1))  # fmt: skip
    person = env.scalar(select(Person.id).where(Person.city_code == CHUZHOU,
                                                Person.classification == "internal").limit(1))  # fmt: skip
    with pytest.raises(HubError) as caught:
        env.hub.create_assist(inv_cz, case_no=case_no or "X", subject_kind="person",
                              subject_id=person, asked="协查", to_cities="all", now=at(56))  # fmt: skip
    assert caught.value.code in ("case_other_city", "no_open_case")


# --- exercise -------------------------------------------------------------------------------


def test_exercise_plays_to_the_end_and_marks_what_it_created(env):
    hf = env.who("commander.hf")
    start = at(day=5)
    run = env.hub.start_exercise(hf, "border_crash", speed=10, now=start)
    with pytest.raises(InputError) as caught:
        env.hub.start_exercise(hf, "border_crash", speed=10, now=start)
    assert caught.value.code == "exercise_running"
    assert len(env.hub.exercise_tick(now=start)) == 1  # the incident, at 0 s
    assert env.hub.exercise_tick(now=start) == []  # nothing twice
    lines = env.hub.exercise_tick(now=start + timedelta(seconds=10))  # 100 s at speed 10
    assert len(lines) == 6 and not [x for x in lines if "skipped" in x], lines
    with session_factory(env.engine)() as s:
        op = s.scalar(select(Operation).where(Operation.exercise_run_id == run))
        marked = dict(s.execute(select(ExerciseRecord.dataset, func.count())
                                .where(ExerciseRecord.run_id == run)
                                .group_by(ExerciseRecord.dataset)).all())  # fmt: skip
        request = s.scalar(select(ResourceRequest).where(ResourceRequest.operation_id == op.id))
    assert marked == {"incidents": 1, "alerts": 1}
    assert request.requesting_city == CHUZHOU and request.owner_city == HEFEI
    board = env.hub.operation_board(hf, op.id, now=start + timedelta(seconds=11))
    assert board.exercise and board.my_status == "lead"
    inbox = env.hub.alerts(env.who("commander.cz"), now=start + timedelta(seconds=12))
    assert inbox[inbox.exercise].shape[0] == 1
    # The neighbour's request is for 合肥 to answer, as in a real operation.
    env.hub.act_on_request(hf, request.id, "accepted", now=start + timedelta(seconds=13))
    env.hub.act_on_request(hf, request.id, "dispatched", now=start + timedelta(seconds=13))
    assert env.hub.running_exercises() == []


def test_unknown_exercise_is_one_message(env):
    with pytest.raises(InputError) as caught:
        env.hub.start_exercise(env.who("commander.hf"), "../etc/passwd", now=at())
    assert caught.value.code == "unknown_exercise"
    assert exercise.scenario_names() == ["border_crash"]


# --- the board page with an operation on it -------------------------------------------------


def test_board_page_renders_an_operation_for_both_cities(env, monkeypatch):
    import streamlit as st

    if env.engine.dialect.name != "sqlite":
        pytest.skip("AppTest runs against the SQLite copy")
    op = env.operation()
    rr = _request_in(env, op, "requested")
    monkeypatch.setenv("HUB_DATABASE_URL", env.engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    st.cache_data.clear()
    for user, action in (("commander.hf", "取消请求"), ("commander.cz", "同意")):
        at_ = AppTest.from_file(str(ROOT / "pages/response.py"), default_timeout=60)
        at_.session_state["principal"] = env.who(user)
        at_.session_state["resp_op"] = op
        at_.run()
        assert not at_.exception, at_.exception
        assert not at_.error, [e.value for e in at_.error]
        assert any(b.label == action for b in at_.button), [b.label for b in at_.button]
    assert rr
    st.cache_resource.clear()
    st.cache_data.clear()


def test_an_incident_clicked_on_the_map_fills_the_new_operation_form(env, monkeypatch):
    """The situation map's "start a joint operation" hands the incident's number and
    position to this form; creating it then opens an operation on that incident."""
    import streamlit as st

    from ui.response import OPERATION_FROM_MAP

    if env.engine.dialect.name != "sqlite":
        pytest.skip("AppTest runs against the SQLite copy")
    with session_factory(env.engine)() as s:
        inc = s.scalars(
            select(Incident).where(Incident.city_code == "340100").limit(1)
            .execution_options(policy="validation")
        ).one()  # fmt: skip
        inc_id, lon, lat = inc.id, inc.lon, inc.lat
    monkeypatch.setenv("HUB_DATABASE_URL", env.engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    st.cache_data.clear()
    at_ = AppTest.from_file(str(ROOT / "pages/response.py"), default_timeout=60)
    at_.session_state["principal"] = env.who("commander.hf")
    at_.session_state[OPERATION_FROM_MAP] = {"incident_id": inc_id, "lon": lon, "lat": lat}
    at_.run()
    assert not at_.exception, at_.exception
    assert any(f"#{inc_id}" in i.value for i in at_.info), [i.value for i in at_.info]
    numbers = {n.label: n.value for n in at_.number_input}
    assert numbers["警情编号"] == inc_id
    assert (round(numbers["经度"], 5), round(numbers["纬度"], 5)) == (round(lon, 5), round(lat, 5))
    assert at_.text_input[0].value == f"警情 #{inc_id} 联合处置"
    [create] = [b for b in at_.button if b.label == "发起行动"]
    create.click().run()
    assert not at_.exception, at_.exception
    assert OPERATION_FROM_MAP not in at_.session_state
    with session_factory(env.engine)() as s:
        op = s.scalars(select(Operation).order_by(Operation.id.desc()).limit(1)).one()
    assert (op.incident_id, op.name) == (inc_id, f"警情 #{inc_id} 联合处置")
    st.cache_resource.clear()
    st.cache_data.clear()


def test_the_pages_escalate_after_the_configured_delay(env):
    """`HUB_ALERT_ESCALATE_MINUTES` is what the live pages' upkeep escalates by."""
    import dataclasses
    from datetime import UTC, datetime

    hf = env.who("commander.hf")
    pushed = datetime.now(UTC) - timedelta(minutes=10)
    alert_id, _ = env.hub.raise_alert(hf, title="延时测试", level="low", lon=BORDER[0],
                                      lat=BORDER[1], radius_m=2000, now=pushed)  # fmt: skip

    def escalated() -> set[str]:
        with session_factory(env.engine)() as s:
            return set(s.scalars(select(AlertRecipient.city_code).where(
                AlertRecipient.alert_id == alert_id, AlertRecipient.escalated)))  # fmt: skip

    env.hub.alert_upkeep()  # the default 30 minutes: ten minutes old is not overdue
    assert escalated() == set()
    quick = Hub(env.engine, dataclasses.replace(env.hub.settings, alert_escalate_minutes=5))
    quick.alert_upkeep()
    assert escalated() == {HEFEI, CHUZHOU}


def test_a_drill_script_with_an_identifier_is_refused_at_load(tmp_path):
    """Injected text lands unsealed in shared records: a script carrying a phone or an ID
    number is refused by name before it can run."""
    from hub import exercise
    from hub.security.errors import InputError

    text = (exercise.EXERCISE_DIR / "border_crash.toml").read_text(encoding="utf-8")
    (tmp_path / "leaky.toml").write_text(
        text.replace("有人员被困。", "有人员被困，报警人 139 1234 5678。"), encoding="utf-8"
    )
    with pytest.raises(InputError) as caught:
        exercise.load_scenario("leaky", tmp_path)
    assert caught.value.code == "bad_exercise" and "summary" in caught.value.params["problem"]
    assert exercise.load_scenario("border_crash").injects  # the shipped one still loads
