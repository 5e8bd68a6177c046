"""A few days of realistic use of the demo store, produced through the real services.

Sign-ins (one account locking itself out), lookups under open cases, requests approved
and denied, a break-glass, an off-hours lookup, a burst and one plate looked up by many
users: the audit chain and the alarms pages then have something true to show.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine, select

from hub import models as m
from hub.demo import PURSUIT_PLATE
from hub.security.errors import HubError
from hub.security.identity import DEMO_PASSWORD
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import Settings
from hub.store import transaction


def _open_cases(engine: Engine) -> dict[str, list[str]]:
    with transaction(engine) as s:
        rows = s.execute(select(m.Case.city_code, m.Case.case_no).where(m.Case.status == "open"))
        cases: dict[str, list[str]] = {}
        for city, case_no in rows:
            cases.setdefault(city, []).append(case_no)
    return cases


def _plates(engine: Engine, city: str, n: int, rng: np.random.Generator) -> list[str]:
    with transaction(engine) as s:
        plates = s.scalars(
            select(m.Sighting.plate)
            .where(m.Sighting.city_code == city, m.Sighting.plate != PURSUIT_PLATE)
            .limit(400)
        ).all()
    return [
        str(p)
        for p in rng.choice(sorted(set(plates)), size=min(n, len(set(plates))), replace=False)
    ]


def _attempt(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except HubError:
        return None  # refusals are part of the story; the hub has audited them


def run(
    engine: Engine, settings: Settings, *, anchor: datetime, days: int = 3, seed: int = 7
) -> int:
    """Replay `days` of activity ending an hour before `anchor`; returns audit entries made."""
    hub = Hub(engine, settings)
    rng = np.random.default_rng(seed)
    cases = _open_cases(engine)
    before = hub.audit_count()
    start = anchor - timedelta(days=days)
    users: dict[str, object] = {}

    def sign_in(username: str, at: datetime):
        users[username] = hub.sign_in(username, DEMO_PASSWORD, now=at)
        return users[username]

    for day in range(days):
        # 08:30 Asia/Shanghai is 00:30 UTC.
        t = (start + timedelta(days=day)).replace(hour=0, minute=30, second=0, microsecond=0)
        for username in ("officer.hf", "investigator.hf", "investigator.cz", "investigator.wh",
                         "approver.hf", "approver.cz", "commander.hf", "analyst"):  # fmt: skip
            t += timedelta(minutes=int(rng.integers(1, 6)))
            sign_in(username, t)
        for username, city in (
            ("investigator.hf", "340100"),
            ("investigator.cz", "341100"),
            ("investigator.wh", "340200"),
        ):
            for plate in _plates(engine, city, 4, rng):
                t += timedelta(minutes=int(rng.integers(3, 20)))
                reason = Reason("case_investigation", str(rng.choice(cases[city])))
                _attempt(hub.search_plate, users[username], plate, reason, now=t)
        t += timedelta(minutes=10)
        _attempt(hub.search_person, users["officer.hf"], "name", str(rng.choice(list("王李张刘陈"))),
                Reason("case_investigation", cases["340100"][0]), now=t)  # fmt: skip

        if day == 1:
            _requests(hub, users, cases, engine, rng, start)
        if day == 2:
            _incidents_day(hub, users, cases, engine, rng, start)
    # A fraud wave 合肥 pushes to its border neighbour two hours before the anchor: 合肥
    # acknowledges at once, 滁州 has not yet (its inbox and the overview show it).
    t = anchor - timedelta(hours=2)
    pushed = _attempt(
        hub.raise_alert, users["commander.hf"], title="冒充公检法电信诈骗高发（合成）",
        level="high", kind="fraud_wave", lon=117.59, lat=32.24, radius_m=8000, now=t,
        body="近24小时合肥北部与滁州交界处接报多起冒充公检法诈骗，请加强宣传与劝阻。",
    )  # fmt: skip
    if pushed:
        _attempt(
            hub.acknowledge_alert, users["commander.hf"], pushed[0], now=t + timedelta(minutes=8)
        )
    return hub.audit_count() - before


def _requests(hub, users, cases, engine, rng, start) -> None:
    """Day two: a request approved by the owning city, one denied."""
    day2 = (start + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
    # A request from 合肥 for 滁州's sightings of a plate, approved by 滁州's approver.
    plate_cz = _plates(engine, "341100", 1, rng)[0]
    rid = _attempt(hub.request_access, users["investigator.hf"], owner_city="341100", level="sensitive",
                  scope_kind="plate", scope_value=plate_cz, reason=Reason("case_investigation", cases["340100"][1]),
                  justification="（演示）涉案车辆近期在滁州活动，需调阅卡口记录", now=day2)  # fmt: skip
    if rid:
        _attempt(
            hub.decide_request,
            users["approver.cz"],
            rid,
            approve=True,
            note="（演示）同意，限本案使用",
            now=day2 + timedelta(minutes=25),
        )
        _attempt(
            hub.search_plate,
            users["investigator.hf"],
            plate_cz,
            Reason("case_investigation", cases["340100"][1]),
            now=day2 + timedelta(minutes=40),
        )
    # A request from 芜湖 to 合肥, denied for a thin justification.
    plate_hf = _plates(engine, "340100", 1, rng)[0]
    rid = _attempt(hub.request_access, users["investigator.wh"], owner_city="340100", level="sensitive",
                  scope_kind="plate", scope_value=plate_hf, reason=Reason("case_investigation", cases["340200"][0]),
                  justification="（演示）查一下", now=day2 + timedelta(hours=1))  # fmt: skip
    if rid:
        _attempt(
            hub.decide_request,
            users["approver.hf"],
            rid,
            approve=False,
            note="（演示）理由不充分，请补充与本案的关联",
            now=day2 + timedelta(hours=2),
        )


def _incidents_day(hub, users, cases, engine, rng, start) -> None:
    """Day three: break-glass, a much-looked-up plate, a burst, off-hours, a lockout."""
    plate_hf = _plates(engine, "340100", 1, np.random.default_rng(11))[0]
    # A break-glass in a pursuit from 滁州 into 合肥: raises an alarm and a review.
    day3 = (start + timedelta(days=2)).replace(hour=7, minute=10, second=0, microsecond=0)
    _attempt(hub.break_glass, users["investigator.cz"], plate=plate_hf, owner_city="340100",
            reason=Reason("pursuit", cases["341100"][0]), justification="（演示）嫌疑车辆正驶入合肥，紧急追踪",
            now=day3)  # fmt: skip
    _attempt(
        hub.search_plate,
        users["investigator.cz"],
        plate_hf,
        Reason("pursuit", cases["341100"][0]),
        now=day3 + timedelta(minutes=2),
    )
    # One plate looked up by three users within hours.
    for i, (username, city) in enumerate(
        (("investigator.hf", "340100"), ("commander.hf", "340100"), ("investigator.wh", "340200"))
    ):
        _attempt(
            hub.search_plate,
            users[username],
            plate_hf,
            Reason("case_investigation", cases[city][0]),
            now=day3 + timedelta(hours=1, minutes=7 * i),
        )
    # A burst: 32 lookups in eight minutes.
    t = day3 + timedelta(hours=3)
    for plate in (_plates(engine, "340200", 32, rng) * 2)[:32]:
        t += timedelta(seconds=15)
        _attempt(
            hub.search_plate,
            users["investigator.wh"],
            plate,
            Reason("case_investigation", cases["340200"][0]),
            now=t,
        )
    # An off-hours lookup at 23:40 Asia/Shanghai (15:40 UTC).
    late = day3.replace(hour=15, minute=40)
    _attempt(
        hub.search_plate,
        users["investigator.hf"],
        plate_hf,
        Reason("case_investigation", cases["340100"][0]),
        now=late,
    )
    # A lookup citing a closed case, and an account that locks itself out.
    _attempt(
        hub.search_plate,
        users["officer.hf"],
        plate_hf,
        Reason("case_investigation", "A340100200000000"),
        now=late + timedelta(minutes=5),
    )
    for k in range(5):
        _attempt(hub.sign_in, "officer.wh", "wrong-password", now=late + timedelta(minutes=10 + k))
