"""The notification feed (`Hub.notices`) on both backends: each kind reaches the roles it
waits on and nobody else, events wait until marked seen, `since` gives the new ones,
and every notice links to its item without carrying record content."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub import demo
from hub.notify import KINDS
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from tests.conftest import BACKENDS
from tests.security_support import at, seeded_copy
from tests.test_watch import CASE, CHUZHOU, Env


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory) -> Env:
    engine = seeded_copy(request.param, tmp_path_factory)
    return Env(engine, Hub(engine, load_settings()))


def _kinds(env: Env, username: str, now, since=None) -> set[tuple[str, int]]:
    check = env.hub.notices.check(env.who(username), since=since, now=now)
    return {(n.kind, n.item_id) for n in (check.new if since else check.notices)}


def test_each_kind_reaches_its_roles(env: Env) -> None:
    now, plate = at(day=50), "皖AWT901"
    hub = env.hub
    inv = env.who("investigator.hf")
    # request_to_decide: Chuzhou's approver, not Wuhu's, not the requester.
    rid = hub.request_access(
        inv, owner_city=CHUZHOU, level="sensitive", scope_kind="plate", scope_value=plate,
        reason=Reason("pursuit", demo.PURSUIT_CASE_NO),
        justification="追踪嫌疑车辆去向需要查看卡口记录", now=now,
    )  # fmt: skip
    assert ("request_to_decide", rid) in _kinds(env, "approver.cz", now)
    assert ("request_to_decide", rid) not in _kinds(env, "approver.wh", now)
    assert ("request_to_decide", rid) not in _kinds(env, "investigator.hf", now)
    # request_decided: the requester, until marked seen.
    t = now + timedelta(minutes=2)
    hub.decide_request(env.who("approver.cz"), rid, approve=True, note="同意，限本案", now=t)
    assert ("request_decided", rid) in _kinds(env, "investigator.hf", t)
    assert ("request_decided", rid) in _kinds(env, "investigator.hf", t, since=now)
    assert ("request_decided", rid) not in _kinds(env, "investigator.hf", t, since=t)
    assert ("request_to_decide", rid) not in _kinds(env, "approver.cz", t)
    # alert: raised in Hefei, pushed to its neighbours' commanders and investigators.
    alert_id, pushed = hub.raise_alert(
        env.who("commander.hf"), title="演练预警", level="high", now=t
    )
    assert CHUZHOU in pushed
    assert ("alert", alert_id) in _kinds(env, "commander.cz", t)
    assert ("alert", alert_id) in _kinds(env, "investigator.cz", t)
    assert ("alert", alert_id) not in _kinds(env, "approver.cz", t)
    # watch_hit: the watcher and the commander of the city where the car was read.
    wid = hub.watch.create_watch(inv, plate, CASE, "province", t + timedelta(days=1), now=t)
    t2 = t + timedelta(minutes=5)
    hub.watch.match_batch(env.reads(plate, (CHUZHOU, "sensitive", t2)), now=t2)
    (hit,) = [n for n in hub.notices.check(inv, now=t2).notices if n.kind == "watch_hit"
              and n.params["watch"] == wid]  # fmt: skip
    assert hit.target == {"page": "watch", "hit": hit.item_id}
    assert (hit.params["city"], hit.params["case_no"], hit.params["mine"]) == (
        CHUZHOU, CASE.case_no, 1,
    )  # fmt: skip
    assert not any(isinstance(v, str) and "摄像" in v for v in hit.params.values())
    assert ("watch_hit", hit.item_id) in _kinds(env, "commander.cz", t2)
    assert ("watch_hit", hit.item_id) not in _kinds(env, "commander.wh", t2)
    assert ("watch_hit", hit.item_id) not in _kinds(env, "investigator.cz", t2)
    # operation_invitation: from a hit, Chuzhou's commander invites Hefei.
    op_id = hub.watch.operation_from_hit(env.who("commander.cz"), hit.item_id, now=t2)
    assert ("operation_invitation", op_id) in _kinds(env, "commander.hf", t2)
    assert ("operation_invitation", op_id) not in _kinds(env, "investigator.hf", t2)
    # Marking seen clears events, not what still waits.
    hub.notices.mark_seen(inv, now=t2)
    left = _kinds(env, "investigator.hf", t2 + timedelta(seconds=1))
    assert ("watch_hit", hit.item_id) not in left and ("request_decided", rid) not in left


def test_roles_without_items_get_an_empty_feed(env: Env) -> None:
    now = at(day=51)
    for username in ("auditor", "admin", "leader", "analyst"):
        check = env.hub.notices.check(env.who(username), now=now)
        assert {n.kind for n in check.notices} <= set(KINDS)
        assert not [n for n in check.notices if n.kind in ("request_to_decide", "watch_hit")]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_sentence_in_both_languages(kind: str) -> None:
    from ui.i18n import catalogue

    strings = catalogue()
    assert strings[f"notice_{kind}"]["zh"] and strings[f"notice_{kind}"]["en"]


def test_new_notices_of_one_sentence_are_one_toast_with_their_number() -> None:
    """A car read by three cameras of the city it entered is one toast, not three; more
    sentences than a check toasts end in one saying how many more wait in the badge."""
    from datetime import UTC, datetime

    from hub.notify import Notice
    from ui.notices import TOASTS_PER_CHECK, toasts

    now = datetime(2026, 11, 30, 8, tzinfo=UTC)
    hit = {"case_no": CASE, "city": CHUZHOU, "from_city": "340100", "watch": 7}
    names = {CHUZHOU: "滁州市", "340100": "合肥市"}
    hits = [Notice("watch_hit", i, now, dict(hit)) for i in (1, 2, 3)]
    other = Notice("request_decided", 9, now, {"city": CHUZHOU, "status": "approved"})
    shown = toasts([*hits, other], names)
    assert [text for text, _ in shown] == [
        f"布控命中：案件 {CASE} 的车辆出现在滁州市（合肥市布控） · 共 3 条",
        "调阅申请 #9 已批准（滁州市）",
    ]
    many = [Notice("request_decided", i, now, {"city": CHUZHOU, "status": "approved"})
            for i in range(10, 10 + TOASTS_PER_CHECK + 2)]  # fmt: skip
    shown = toasts(many, names)
    assert len(shown) == TOASTS_PER_CHECK
    assert shown[-1][0] == "另有 3 条新通知，见待办"
