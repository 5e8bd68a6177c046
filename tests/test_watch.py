"""Plate watch (布控) through `Hub.watch` on both backends: the rules for a watch, matching
a committed feed batch (exactly one hit per watch and read, also when matched twice;
nothing from ended, expired or out-of-scope watches), hits as rows or pointers with the
one-click request, the city commander told, ending a watch, the watch list and audit.

Each test works in its own demo day (`at(day=...)`) and with its own plate, on one
writable seeded store per backend.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from hub import demo
from hub.models import (
    AccessRequest,
    AssistRecipient,
    AssistRequest,
    AuditEntry,
    Camera,
    FeedBatch,
    Operation,
    Sighting,
    Vehicle,
    WatchHit,
)
from hub.security.errors import HubError
from hub.security.policy import Outcome, Principal
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS
from tests.security_support import at, principal, seeded_copy

HEFEI, CHUZHOU, WUHU = demo.PURSUIT_FROM, demo.PURSUIT_TO, "340200"
CASE = Reason("pursuit", demo.PURSUIT_CASE_NO)


@dataclass
class Env:
    engine: Engine
    hub: Hub
    _who: dict = field(default_factory=dict)

    def who(self, username: str) -> Principal:
        if username not in self._who:
            self._who[username] = principal(self.engine, username)
        return self._who[username]

    def count(self, model, *where) -> int:
        with session_factory(self.engine)() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where))

    def audits(self, *actions: str) -> int:
        return self.count(AuditEntry, AuditEntry.action.in_(actions))

    def reads(self, plate: str, *reads: tuple[str, str, object]) -> int:
        """A committed feed batch of sightings of `plate`: (city, level, ts) each."""
        with transaction(self.engine) as s:
            batch = FeedBatch(city_code=reads[0][0], dataset="sightings", source_name="test")
            s.add(batch)
            s.flush()
            for city, level, ts in reads:
                cam = s.execute(
                    select(Camera.id, Camera.district_code, Camera.lon, Camera.lat)
                    .where(Camera.city_code == city)
                    .limit(1)
                ).one()
                s.add(
                    Sighting(
                        source_id=f"w-{uuid.uuid4().hex[:12]}", city_code=city,
                        district_code=cam.district_code, classification=level,
                        camera_id=cam.id, plate=plate, ts=ts, lon=cam.lon, lat=cam.lat,
                        source_batch_id=batch.id,
                    )
                )  # fmt: skip
            return batch.id


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory) -> Env:
    engine = seeded_copy(request.param, tmp_path_factory)
    return Env(engine, Hub(engine, load_settings()))


# The hub's refusals are audited as `watch_create_refused`; the boundary's (text checks
# before the call) under the method's name, as for every Hub method.
REFUSED = ("watch_create_refused", "create_watch_refused")


def _refused(env: Env, code: str, fn, *args, **kw) -> None:
    before = env.audits(*REFUSED)
    with pytest.raises(HubError) as exc:
        fn(*args, **kw)
    assert exc.value.code == code
    assert env.audits(*REFUSED) == before + 1, "every refusal audited once"


def test_watch_creation_rules(env: Env) -> None:
    now = at(day=40)
    inv, create = env.who("investigator.hf"), env.hub.watch.create_watch
    week = now + timedelta(days=7)
    _refused(env, "role_cannot_watch", create, env.who("officer.hf"), "皖AWT801", CASE,
             "province", week, now=now)  # fmt: skip
    _refused(env, "role_cannot_watch", create, env.who("analyst"), "皖AWT801", CASE,
             "province", week, now=now)  # fmt: skip
    _refused(env, "bad_plate", create, inv, "not a plate", CASE, "province", week, now=now)
    _refused(env, "bad_expiry", create, inv, "皖AWT801", CASE, "province",
             now + timedelta(days=31), now=now)  # fmt: skip
    _refused(env, "bad_expiry", create, inv, "皖AWT801", CASE, "province", now, now=now)
    # a time without a zone is refused at the boundary, before the watch rules
    _refused(env, "bad_input", create, inv, "皖AWT801", CASE, "province",
             week.replace(tzinfo=None), now=now)  # fmt: skip
    _refused(env, "watch_scope_required", create, inv, "皖AWT801", CASE, [], week, now=now)
    _refused(env, "unknown_city", create, inv, "皖AWT801", CASE, ["999999"], week, now=now)
    _refused(env, "no_open_case", create, inv, "皖AWT801", Reason("pursuit", "NO-SUCH-CASE"),
             "province", week, now=now)  # fmt: skip
    _refused(env, "unknown_purpose", create, inv, "皖AWT801", Reason("curiosity", CASE.case_no),
             "province", week, now=now)  # fmt: skip
    _refused(env, "case_other_city", create, env.who("investigator.cz"), "皖AWT801", CASE,
             "province", week, now=now)  # fmt: skip
    _refused(env, "text_has_identifier", create, inv, "皖AWT801", CASE, "province", week,
             justification="车主 13812345678 可疑", now=now)  # fmt: skip
    before = env.audits("watch_create")
    wid = create(inv, " 皖awt801 ", CASE, [CHUZHOU, HEFEI], week, now=now)
    assert env.audits("watch_create") == before + 1
    (view,) = [w for w in env.hub.watch.my_watches(inv, now=now) if w.id == wid]
    assert (view.plate, view.scope, view.case_no, view.active) == (
        "皖AWT801", (HEFEI, CHUZHOU), CASE.case_no, True,
    )  # fmt: skip
    _refused(env, "watch_exists", create, inv, "皖AWT801", CASE, "province", week, now=now)
    # A commander may watch too (DESIGN §5b: investigators and commanders).
    assert create(env.who("commander.hf"), "皖AWT801", CASE, "province", week, now=now)


def test_a_read_raises_exactly_one_hit_even_when_matched_twice(env: Env) -> None:
    now, plate = at(day=41), "皖AWT802"
    inv = env.who("investigator.hf")
    wid = env.hub.watch.create_watch(inv, plate, CASE, "province", now + timedelta(days=1), now=now)
    batch = env.reads(plate, (HEFEI, "internal", now + timedelta(minutes=5)),
                      (CHUZHOU, "sensitive", now + timedelta(minutes=9)))  # fmt: skip
    audits = env.audits("watch_hit")
    assert env.hub.watch.match_batch(batch, now=now + timedelta(minutes=10)) == 2
    assert env.hub.watch.match_batch(batch, now=now + timedelta(minutes=11)) == 0
    assert env.count(WatchHit, WatchHit.watch_id == wid) == 2
    assert env.audits("watch_hit") == audits + 1, "one system entry for the hits raised"


def test_ended_expired_and_out_of_scope_watches_raise_nothing(env: Env) -> None:
    now, watch = at(day=42), env.hub.watch
    inv = env.who("investigator.hf")
    ended = watch.create_watch(inv, "皖AWT803", CASE, "province", now + timedelta(days=1), now=now)
    watch.end_watch(inv, ended, now=now + timedelta(minutes=1))
    watch.create_watch(inv, "皖AWT804", CASE, "province", now + timedelta(hours=1), now=now)
    watch.create_watch(inv, "皖AWT805", CASE, [WUHU], now + timedelta(days=1), now=now)
    later = now + timedelta(minutes=30)
    batches = [
        env.reads("皖AWT803", (HEFEI, "internal", later)),
        env.reads("皖AWT804", (HEFEI, "internal", now + timedelta(hours=2))),
        env.reads("皖AWT805", (HEFEI, "internal", later)),
        # A read from before the watch began is history, not a sighting of the car now.
        env.reads("皖AWT805", (WUHU, "internal", now - timedelta(hours=1))),
    ]
    assert [watch.match_batch(b, now=now + timedelta(hours=2, minutes=1)) for b in batches[:2]] == [
        0,
        0,
    ]
    assert [watch.match_batch(b, now=later) for b in batches[2:]] == [0, 0]
    # The same read in scope, matched while the watch is active, does raise.
    assert watch.match_batch(env.reads("皖AWT805", (WUHU, "internal", later)), now=later) == 1


def test_hits_are_rows_or_pointers_with_a_one_click_request(env: Env) -> None:
    now, plate = at(day=43), "皖AWT806"
    inv, watch = env.who("investigator.hf"), env.hub.watch
    wid = watch.create_watch(inv, plate, CASE, "province", now + timedelta(days=1), now=now)
    t1, t2 = now + timedelta(minutes=5), now + timedelta(minutes=9)
    watch.match_batch(env.reads(plate, (HEFEI, "internal", t1), (CHUZHOU, "sensitive", t2)), now=t2)
    views = env.audits("view")
    got = {h.city_code: h for h in watch.hits(inv, watch_id=wid, now=t2)}
    assert env.audits("view") == views + 1, "viewing hits is audited"
    assert got[HEFEI].sighting is not None and got[HEFEI].pointer is None
    hidden = got[CHUZHOU]
    assert hidden.sighting is None, "another city's sensitive read is not shown"
    assert (hidden.pointer.city_code, hidden.pointer.level, hidden.pointer.route) == (
        CHUZHOU, "sensitive", Outcome.REQUEST_CITY,
    )  # fmt: skip
    assert "camera" not in repr(hidden), "a pointer names no camera and no time"
    # `since`: only what is new.
    assert watch.hits(inv, since=t2 + timedelta(seconds=1), now=t2) == []
    rid = watch.request_for_hit(inv, hidden.id, "追踪嫌疑车辆去向需要查看卡口记录", now=t2)
    with session_factory(env.engine)() as s:
        req = s.get(AccessRequest, rid)
        assert (req.owner_city, req.level, req.scope_kind, req.scope_value, req.case_no) == (
            CHUZHOU, "sensitive", "plate", plate, CASE.case_no,
        )  # fmt: skip
    env.hub.decide_request(env.who("approver.cz"), rid, approve=True, note="同意，限本案", now=t2)
    again = {h.city_code: h for h in watch.hits(inv, watch_id=wid, now=t2)}
    assert again[CHUZHOU].sighting is not None, "the grant opens the read"
    track = watch.track(inv, wid, now=t2 + timedelta(minutes=1))
    assert [p["city_code"] for p in track.points] == [HEFEI, CHUZHOU]


def test_the_city_commander_is_told_and_opens_an_operation(env: Env) -> None:
    now, plate = at(day=44), "皖AWT807"
    inv, watch = env.who("investigator.hf"), env.hub.watch
    cz, wh = env.who("commander.cz"), env.who("commander.wh")
    watch.create_watch(inv, plate, CASE, [CHUZHOU], now + timedelta(days=1), now=now)
    t = now + timedelta(minutes=5)
    watch.match_batch(env.reads(plate, (CHUZHOU, "sensitive", t)), now=t)
    (hit,) = [h for h in watch.hits(cz, since=now, now=t) if h.plate == plate]
    assert (hit.case_no, hit.owner_city, hit.mine) == (CASE.case_no, HEFEI, False)
    assert hit.sighting is not None, "Chuzhou's commander opens Chuzhou's sensitive read"
    assert [h for h in watch.hits(wh, since=now, now=t) if h.plate == plate] == []
    with pytest.raises(HubError) as exc:
        watch.operation_from_hit(wh, hit.id, now=t)
    assert exc.value.code == "unknown_hit"
    op_id = watch.operation_from_hit(cz, hit.id, now=t)
    with session_factory(env.engine)() as s:
        op = s.get(Operation, op_id)
        assert (op.lead_city, op.status) == (CHUZHOU, "active")
    kinds = {
        (n.kind, n.item_id) for n in env.hub.notices.check(env.who("commander.hf"), now=t).notices
    }
    assert ("operation_invitation", op_id) in kinds, "the watching city is invited"


def test_the_city_commander_opens_an_assist_from_a_hit(env: Env) -> None:
    # The pursuit car: a registered Hefei vehicle linked to the watch's case.
    now, plate = at(day=46), demo.PURSUIT_PLATE
    inv, watch = env.who("investigator.hf"), env.hub.watch
    cz, wh = env.who("commander.cz"), env.who("commander.wh")
    watch.create_watch(inv, plate, CASE, "province", now + timedelta(days=1), now=now)
    t = now + timedelta(minutes=5)
    watch.match_batch(env.reads(plate, (CHUZHOU, "sensitive", t)), now=t)
    # Chuzhou's commander is told, with the case and the requesting city.
    (told,) = [n for n in env.hub.notices.check(cz, since=now, now=t).new
               if n.kind == "watch_hit" and n.params["case_no"] == CASE.case_no]  # fmt: skip
    assert (told.params["city"], told.params["from_city"], told.params["mine"]) == (
        CHUZHOU, HEFEI, 0,
    )  # fmt: skip
    asked = "请告知该车处置要求及联系人"
    # refused by the hub as `assist_create_refused`, by the boundary's text check under
    # the method's name
    refusals = ("assist_create_refused", "assist_from_hit_refused")
    refused = env.audits(*refusals)
    for who in (wh, inv):  # another city's commander; the watcher is no commander here
        with pytest.raises(HubError) as exc:
            watch.assist_from_hit(who, told.item_id, asked, now=t)
        assert exc.value.code == "unknown_hit"
    with pytest.raises(HubError) as exc:
        watch.assist_from_hit(cz, told.item_id, "车主电话 13812345678", now=t)
    assert exc.value.code == "text_has_identifier"
    assert env.audits(*refusals) == refused + 3, "every refusal audited"
    created = env.audits("assist_create")
    aid = watch.assist_from_hit(cz, told.item_id, asked, now=t)
    assert watch.assist_from_hit(cz, told.item_id, asked, now=t) == aid, "a second click asks once"
    assert env.audits("assist_create") == created + 1
    with session_factory(env.engine)() as s:
        req = s.get(AssistRequest, aid)
        car = s.get(Vehicle, req.subject_id)
        assert (req.from_city, req.case_no, req.subject_kind, req.asked, req.status) == (
            CHUZHOU, CASE.case_no, "vehicle", asked, "open",
        )  # fmt: skip
        assert (car.plate, car.city_code) == (plate, HEFEI)
        to = s.scalars(select(AssistRecipient.city_code).where(AssistRecipient.assist_id == aid))
        assert list(to) == [HEFEI], "the requesting city is asked"
    # Hefei's investigator finds it waiting, answers it, and it waits no more.
    assert ("assist_request", aid) in {
        (n.kind, n.item_id) for n in env.hub.notices.check(inv, now=t).notices
    }
    inbox = env.hub.assists(inv, now=t)
    (row,) = inbox[inbox["id"] == aid].to_dict("records")
    assert (row["from_city"], row["my_status"], row["outgoing"]) == (CHUZHOU, "pending", False)
    env.hub.respond_assist(inv, aid, "嫌疑人可能持械，请勿单独拦截，联系合肥专案组", now=t)
    assert ("assist_request", aid) not in {
        (n.kind, n.item_id) for n in env.hub.notices.check(inv, now=t).notices
    }


def test_ending_a_watch_and_the_watch_list(env: Env) -> None:
    now, watch = at(day=45), env.hub.watch
    inv = env.who("investigator.hf")
    a = watch.create_watch(inv, "皖AWT808", CASE, [CHUZHOU], now + timedelta(days=3), now=now,
                           justification="嫌疑车辆可能逃往邻市方向")  # fmt: skip
    b = watch.create_watch(inv, "皖AWT809", CASE, [WUHU], now + timedelta(days=3), now=now)
    listed = {w.id: w for w in watch.watches_for_city(env.who("approver.cz"), now=now)}
    assert a in listed and b not in listed, "Chuzhou sees what is watched on its reads"
    assert (listed[a].owner_name, listed[a].purpose, listed[a].justification) == (
        "陈侦查员（合肥市局）", "pursuit", "嫌疑车辆可能逃往邻市方向",
    )  # fmt: skip
    assert {a, b} <= {w.id for w in watch.watches_for_city(inv, now=now)}
    with pytest.raises(HubError) as exc:
        watch.watches_for_city(env.who("investigator.cz"), HEFEI, now=now)
    assert exc.value.code == "not_your_city"
    with pytest.raises(HubError) as exc:
        watch.end_watch(env.who("approver.cz"), a, now=now)
    assert exc.value.code == "unknown_watch", "only the watcher's own city approves"
    ends = env.audits("watch_end")
    watch.end_watch(env.who("approver.hf"), a, now=now + timedelta(minutes=1))
    watch.end_watch(inv, b, now=now + timedelta(minutes=1))
    assert env.audits("watch_end") == ends + 2
    with pytest.raises(HubError) as exc:
        watch.end_watch(inv, b, now=now + timedelta(minutes=2))
    assert exc.value.code == "watch_not_active"
    mine = {w.id: w for w in watch.my_watches(inv, now=now + timedelta(minutes=2))}
    assert (mine[a].end_reason, mine[a].active, mine[b].end_reason) == ("approver", False, "owner")
    assert a not in {w.id for w in watch.watches_for_city(env.who("approver.cz"),
                                                          now=now + timedelta(minutes=2))}  # fmt: skip


def test_the_watch_page_opens_an_assist_from_a_hit_in_one_click(env: Env, monkeypatch) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from hub.models import AssistRequest as Assist
    from tests.conftest import ROOT

    now, plate = at(day=48), demo.PURSUIT_PLATE
    inv, cz, watch = env.who("investigator.hf"), env.who("commander.cz"), env.hub.watch
    for a in env.hub.assists(cz, now=now).itertuples():  # one open request per car and case
        if a.outgoing and a.status == "open":
            env.hub.close_assist(cz, int(a.id), now=now)
    watch.create_watch(inv, plate, CASE, [CHUZHOU], now + timedelta(days=1), now=now)
    watch.match_batch(env.reads(plate, (CHUZHOU, "internal", now)), now=now)
    (hit,) = [h for h in watch.hits(cz, since=now - timedelta(seconds=1), now=now)
              if h.plate == plate]  # fmt: skip
    monkeypatch.setenv("HUB_DATABASE_URL", env.engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    try:
        page = AppTest.from_file(str(ROOT / "pages/watch.py"), default_timeout=60)
        page.session_state["lang"] = "zh"
        page.session_state["principal"] = cz
        page.run()
        before = env.count(Assist, Assist.status == "open")
        page.button(key=f"watch-as-{hit.id}").click().run()
    finally:
        st.cache_resource.clear()
    assert not page.exception
    assert env.count(Assist, Assist.status == "open") == before + 1
    with session_factory(env.engine)() as s:
        made = s.scalars(select(Assist).order_by(Assist.id.desc())).first()
        assert (made.from_city, made.case_no, made.subject_kind) == (
            CHUZHOU,
            CASE.case_no,
            "vehicle",
        )
        assert plate in made.asked, "the one click asks in the viewer's words about the car"
