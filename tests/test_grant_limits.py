"""Break-glass with limits, grants revoked by their owners, request scopes parsed and
bounded before they are filed; through the `Hub` on both backends.

Issue 15 items 4 and 5 (the scope half). Each test works in demo days of its own (the
break-glass cap counts the last 24 hours), on one writable copy per backend.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from hub import demo
from hub.models import AccessRequest, AuditEntry, Camera, Case, Grant, Sighting
from hub.security.errors import HubError
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS
from tests.security_support import at, principal, seeded_copy

PLATE, CASE_NO = demo.PURSUIT_PLATE, demo.PURSUIT_CASE_NO
HEFEI, CHUZHOU = demo.PURSUIT_FROM, demo.PURSUIT_TO
WUHU, BENGBU, HUAINAN = "340200", "340300", "340400"
PURSUIT = Reason("pursuit", CASE_NO)
WHY = "嫌疑车辆驶入邻市，正在追缉"
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Env:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.hub = Hub(engine, load_settings())

    def who(self, username: str):
        return principal(self.engine, username)

    def scalar(self, stmt):
        with session_factory(self.engine)() as s:
            return s.scalar(stmt)

    def last(self, username: str) -> AuditEntry:
        return self.scalar(
            select(AuditEntry)
            .where(AuditEntry.username == username)
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        )

    def glass(self, now, *, city: str = CHUZHOU, hub: Hub | None = None, **kw) -> int:
        args = {"plate": PLATE, "owner_city": city, "reason": PURSUIT, "justification": WHY}
        return (hub or self.hub).break_glass(self.who("investigator.hf"), now=now, **{**args, **kw})


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    e = Env(seeded_copy(request.param, tmp_path_factory))
    yield e
    e.engine.dispose()


def _refused(code: str, fn, *args, **kw) -> HubError:
    with pytest.raises(HubError) as caught:
        fn(*args, **kw)
    assert caught.value.code == code, caught.value
    return caught.value


# --- break-glass ---------------------------------------------------------------------------


def test_break_glass_is_capped_per_user_per_24_hours(env) -> None:
    t0 = at(day=101)
    for i, city in enumerate((CHUZHOU, WUHU, BENGBU)):
        env.glass(t0 + timedelta(minutes=i), city=city)
    n = env.scalar(select(func.count()).select_from(Grant).where(Grant.kind == "break_glass"))
    err = _refused("break_glass_cap", env.glass, t0 + timedelta(hours=3), city=HUAINAN)
    assert err.params["cap"] == 3
    assert env.scalar(select(func.count()).select_from(Grant).where(Grant.kind == "break_glass")) == n  # fmt: skip
    assert (env.last("investigator.hf").action, env.last("investigator.hf").decision) == (
        "break_glass_refused", "break_glass_cap",
    )  # fmt: skip
    # The window rolls: a day after the first, one more is allowed.
    env.glass(t0 + timedelta(hours=24, minutes=0.5), city=HUAINAN)
    # The cap is the setting's.
    one = Hub(env.engine, dataclasses.replace(load_settings(), break_glass_daily_cap=1))
    _refused("break_glass_cap", env.glass, t0 + timedelta(hours=25), city=WUHU, hub=one)


@pytest.mark.parametrize(
    "why", [".", "追逃", "紧急！！！！！！！", f"{PLATE} {PLATE}", f"{CASE_NO}：追逃", "aaaaaaaaaaaa", "12345678901"]
)  # fmt: skip
def test_a_break_glass_justification_must_say_something(env, why: str) -> None:
    _refused("justification_too_thin", env.glass, at(day=103), justification=why)
    assert env.last("investigator.hf").action == "break_glass_refused"


def test_break_glass_is_for_urgent_purposes_only(env) -> None:
    _refused(
        "break_glass_purpose", env.glass, at(day=104),
        reason=Reason("case_investigation", CASE_NO),
    )  # fmt: skip


def test_the_review_names_the_subject_and_rejecting_it_revokes_the_grant(env) -> None:
    t0 = at(day=105)
    inv, approver = env.who("investigator.hf"), env.who("approver.cz")
    gid = env.glass(t0)
    opened = env.hub.search_plate(inv, PLATE, PURSUIT, now=t0 + timedelta(minutes=1))
    assert opened.grants_used == (gid,)
    reviews = env.hub.reviews(approver)
    row = reviews[reviews["grant_id"] == gid].iloc[0]
    assert row["subject"] == f"plate:{PLATE}" and PLATE in row["note"]
    assert (row["username"], row["purpose"], row["case_no"]) == (
        "investigator.hf",
        "pursuit",
        CASE_NO,
    )
    _refused("bad_outcome", env.hub.close_review, approver, int(row["id"]), "不清楚", outcome="maybe")  # fmt: skip

    env.hub.close_review(approver, int(row["id"]), "与本案无关，不予认可", outcome="reject",
                         now=t0 + timedelta(minutes=5))  # fmt: skip
    revoked_at = env.scalar(select(Grant.revoked_at).where(Grant.id == gid))
    assert revoked_at is not None and revoked_at.astimezone(UTC) == t0 + timedelta(minutes=5)
    later = env.hub.search_plate(inv, PLATE, PURSUIT, now=t0 + timedelta(minutes=6))
    assert later.grants_used == () and any(p.city_code == CHUZHOU for p in later.pointers)
    entry = env.scalar(
        select(AuditEntry).where(AuditEntry.action == "grant_revoke", AuditEntry.grant_id == gid)
    )
    assert entry is not None and entry.username == "approver.cz" and entry.owner_cities == CHUZHOU
    assert json.loads(entry.detail)["review_id"] == int(row["id"])
    close = env.last("approver.cz")
    assert (close.action, close.decision) == ("review_close", "reject")


def test_accepting_a_review_leaves_the_grant(env) -> None:
    t0 = at(day=106)
    gid = env.glass(t0)
    approver = env.who("approver.cz")
    reviews = env.hub.reviews(approver)
    rid = int(reviews[reviews["grant_id"] == gid]["id"].iloc[0])
    env.hub.close_review(approver, rid, "追缉属实", now=t0 + timedelta(minutes=5))
    assert env.scalar(select(Grant.revoked_at).where(Grant.id == gid)) is None
    assert rid in set(env.hub.reviews(approver, status="closed")["id"])


# --- revocation by the owning city -----------------------------------------------------


def _approved_grant(env, now) -> int:
    rid = env.hub.request_access(
        env.who("investigator.hf"), owner_city=CHUZHOU, level="sensitive", scope_kind="plate",
        scope_value=PLATE, reason=PURSUIT, justification=WHY, now=now,
    )  # fmt: skip
    env.hub.decide_request(env.who("approver.cz"), rid, approve=True, note="同意", now=now)
    return env.scalar(select(Grant.id).where(Grant.request_id == rid))


def test_the_owning_citys_approver_revokes_a_grant_at_once(env) -> None:
    t0 = at(day=107)
    inv = env.who("investigator.hf")
    gid = _approved_grant(env, t0)
    assert env.hub.search_plate(inv, PLATE, PURSUIT, now=t0).grants_used == (gid,)
    # Not theirs: the same answer as for a grant that does not exist.
    for username in ("approver.hf", "investigator.hf", "commander.cz"):
        _refused("unknown_grant", env.hub.revoke_grant, env.who(username), gid, "撤销", now=t0)
    _refused("unknown_grant", env.hub.revoke_grant, env.who("approver.cz"), 10**9, "撤销", now=t0)
    _refused("note_required", env.hub.revoke_grant, env.who("approver.cz"), gid, " ", now=t0)
    assert env.last("approver.hf").action == "grant_revoke_refused"

    env.hub.revoke_grant(env.who("approver.cz"), gid, "案件已移交，不再需要", now=t0 + timedelta(minutes=1))  # fmt: skip
    res = env.hub.search_plate(inv, PLATE, PURSUIT, now=t0 + timedelta(minutes=2))
    assert res.grants_used == ()
    entry = env.last("approver.cz")
    assert (entry.action, entry.grant_id, entry.decision) == ("grant_revoke", gid, "revoked")
    _refused("grant_not_in_force", env.hub.revoke_grant, env.who("approver.cz"), gid, "再撤一次", now=t0)  # fmt: skip


# --- request scopes ------------------------------------------------------------------------


def _area_request(env, area, *, owner: str = CHUZHOU) -> int:
    value = area if isinstance(area, str) else json.dumps(area)
    return env.hub.request_access(
        env.who("investigator.hf"), owner_city=owner, level="sensitive", scope_kind="camera_area",
        scope_value=value, reason=PURSUIT, justification=WHY, now=at(day=108),
    )  # fmt: skip


def _pursuit_sightings(env) -> tuple[list[int], list]:
    with session_factory(env.engine)() as s:
        rows = s.execute(
            select(Sighting.camera_id, Sighting.ts).where(
                Sighting.plate == PLATE, Sighting.city_code == CHUZHOU
            )
        ).all()
    return sorted({r.camera_id for r in rows}), sorted(r.ts for r in rows)


def test_a_camera_area_is_parsed_bounded_and_stored_canonical(env) -> None:
    cameras, times = _pursuit_sightings(env)
    start, end = times[0] - timedelta(minutes=5), times[-1] + timedelta(minutes=5)
    # Ids as text, out of order, a time in local time: all stored canonical.
    ok = {"camera_ids": [str(c) for c in reversed(cameras)],
          "from": start.astimezone(SHANGHAI).isoformat(), "to": end.isoformat()}  # fmt: skip
    before = env.scalar(select(func.count()).select_from(AccessRequest))
    bad = [
        "not-json{",
        "[]",
        {**ok, "extra": 1},
        {**ok, "camera_ids": []},
        {**ok, "camera_ids": list(range(1, 30))},
        {**ok, "camera_ids": [True]},
        {**ok, "camera_ids": ["²"]},
        {**ok, "from": start.replace(tzinfo=None).isoformat()},
        {**ok, "to": (start + timedelta(days=8)).isoformat()},
        {**ok, "to": start.isoformat()},
        {**ok, "from": "yesterday"},
    ]
    for area in bad:
        _refused("bad_camera_area", _area_request, env, area)
    with session_factory(env.engine)() as s:
        other = s.scalar(select(Camera.id).where(Camera.city_code == HEFEI).limit(1))
    _refused("unknown_camera", _area_request, env, {**ok, "camera_ids": [*cameras, other]})
    assert env.scalar(select(func.count()).select_from(AccessRequest)) == before

    rid = _area_request(env, ok)
    stored = json.loads(
        env.scalar(select(AccessRequest.scope_value).where(AccessRequest.id == rid))
    )
    assert stored["camera_ids"] == cameras
    assert stored["from"].endswith("+00:00") and stored["to"].endswith("+00:00")
    env.hub.decide_request(env.who("approver.cz"), rid, approve=True, note="同意", now=at(day=108))
    # The approved area opens exactly its sightings in the requester's next lookup.
    res = env.hub.search_plate(
        env.who("investigator.hf"), PLATE, PURSUIT, now=at(day=108, minutes=1)
    )
    gid = env.scalar(select(Grant.id).where(Grant.request_id == rid))
    assert gid in res.grants_used
    assert {r["city_code"] for r in res.rows} >= {CHUZHOU}


@pytest.mark.parametrize(
    ("kind", "value", "code"),
    [
        ("person", "²", "bad_scope"),
        ("person", "-1", "bad_scope"),
        ("person", "1" * 25, "bad_scope"),
        ("case", "0", "bad_scope"),
        ("case", str(10**12), "unknown_scope_subject"),
        ("plate", "not a plate", "bad_plate"),
    ],
)
def test_record_scopes_are_ids_of_the_owning_city(env, kind: str, value: str, code: str) -> None:
    _refused(
        code, env.hub.request_access, env.who("investigator.hf"), owner_city=CHUZHOU,
        level="sensitive", scope_kind=kind, scope_value=value, reason=PURSUIT, justification=WHY,
        now=at(day=109),
    )  # fmt: skip


def test_a_case_scope_names_a_case_of_the_city_asked(env) -> None:
    inv = env.who("investigator.hf")
    with session_factory(env.engine)() as s:
        hefei_case = s.scalar(select(Case.id).where(Case.city_code == HEFEI).limit(1))
        chuzhou_case = s.scalar(select(Case.id).where(Case.city_code == CHUZHOU).limit(1))
    kw = {"owner_city": CHUZHOU, "level": "sensitive", "scope_kind": "case", "reason": PURSUIT,
          "justification": WHY, "now": at(day=109)}  # fmt: skip
    _refused(
        "unknown_scope_subject", env.hub.request_access, inv, scope_value=str(hefei_case), **kw
    )
    rid = env.hub.request_access(inv, scope_value=f" {chuzhou_case} ", **kw)
    assert env.scalar(select(AccessRequest.scope_value).where(AccessRequest.id == rid)) == str(chuzhou_case)  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "value"),
    [("camera_area", "not-json{"), ("camera_area", '{"camera_ids": ["x"]}'), ("person", "²")],
)
def test_a_grant_filed_before_scopes_were_parsed_covers_nothing_and_breaks_no_lookup(
    env, kind: str, value: str
) -> None:
    t0 = at(day=110)
    inv = env.who("investigator.hf")
    with transaction(env.engine) as s:
        s.add(
            Grant(user_id=inv.user_id, kind="approval", owner_city=CHUZHOU, level="sensitive",
                  scope_kind=kind, scope_value=value, purpose="pursuit", case_no=CASE_NO,
                  granted_at=t0, expires_at=t0 + timedelta(hours=24))
        )  # fmt: skip
    res = env.hub.search_plate(inv, PLATE, PURSUIT, now=t0 + timedelta(minutes=1))
    assert res.grants_used == () and any(p.city_code == CHUZHOU for p in res.pointers)
    person = env.hub.search_person(inv, "name", "张", PURSUIT, now=t0 + timedelta(minutes=1))
    assert person.grants_used == ()
