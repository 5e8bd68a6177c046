"""The hub's boundary (hub.boundary): every refused call is audited exactly once, text
that no store can hold is refused the same way on both backends, and free text shared
between people may not carry an ID number or a phone."""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub import demo
from hub.analytics import ExploreQuery
from hub.models import AuditEntry
from hub.security.errors import HubError
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory
from tests.conftest import BACKENDS
from tests.security_support import at, principal, seeded_copy

PURSUIT = Reason("pursuit", demo.PURSUIT_CASE_NO)
ID_NUMBER = "11010519491231002X"  # GB 11643's own example number
PHONE = "13800138000"


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    yield Hub(engine, load_settings()), engine
    engine.dispose()


def _entries(engine, since_seq: int) -> list[AuditEntry]:
    with session_factory(engine)() as s:
        return list(
            s.scalars(select(AuditEntry).where(AuditEntry.seq > since_seq).order_by(AuditEntry.seq))
        )


def _last_seq(engine) -> int:
    with session_factory(engine)() as s:
        return s.scalar(select(func.max(AuditEntry.seq))) or 0


def _refused_once(env, call, code: str | None) -> AuditEntry:
    """Run a call that must be refused (with `code`, if given); return its one audit entry."""
    hub, engine = env
    before = _last_seq(engine)
    with pytest.raises(HubError) as caught:
        call(hub)
    assert code is None or caught.value.code == code, caught.value
    refusals = [e for e in _entries(engine, before) if e.action.endswith("_refused")]
    assert len(refusals) == 1, [(e.action, e.decision) for e in _entries(engine, before)]
    assert refusals[0].decision == caught.value.code
    return refusals[0]


def test_every_public_hub_method_is_guarded() -> None:
    public = [n for n, m in vars(Hub).items() if not n.startswith("_") and inspect.isfunction(m)]
    assert len(public) > 60
    assert all(hasattr(getattr(Hub, n), "__wrapped__") for n in public), [
        n for n in public if not hasattr(getattr(Hub, n), "__wrapped__")
    ]


# Role refusals that used to leave no trace: each is audited under the caller's name.
ROLE_REFUSALS = {
    "audit_log": lambda h, p: h.audit_log(p),
    "alarms": lambda h, p: h.alarms(p),
    "verify_audit_chain": lambda h, p: h.verify_audit_chain(p),
    "owner_view": lambda h, p: h.owner_view(p),
    "reviews": lambda h, p: h.reviews(p),
    "exports_log": lambda h, p: h.exports_log(p),
    "explore": lambda h, p: h.explore(p, ExploreQuery(start=at(day=-7), end=at())),
    "feed_batches": lambda h, p: h.feed_batches(p),
    "quality_scorecard": lambda h, p: h.quality_scorecard(p),
    "feed_rejects": lambda h, p: h.feed_rejects(p, 1),
    "feed_specs": lambda h, p: h.feed_specs(p),
}
# Refusals by the domain (not by a role list in Hub), which used to leave no trace either.
DOMAIN_REFUSALS = {
    "operations": ("officer.hf", lambda h, p: h.operations(p)),
    "escalated_alerts": ("auditor", lambda h, p: h.escalated_alerts(p)),
    "province_overview": ("admin", lambda h, p: h.province_overview(p)),
    "alerts": ("admin", lambda h, p: h.alerts(p)),
}


@pytest.mark.parametrize("method", sorted(ROLE_REFUSALS))
def test_role_refusals_are_audited(env, method: str) -> None:
    hub, engine = env
    officer = principal(engine, "officer.hf")
    entry = _refused_once(env, lambda h: ROLE_REFUSALS[method](h, officer), "role_not_allowed")
    assert entry.username == "officer.hf"
    # named after the method, or after the action it attempted (a facade's view/export)
    assert entry.action in (f"{method}_refused"[:32], "view_refused", "export_refused")


@pytest.mark.parametrize("method", sorted(DOMAIN_REFUSALS))
def test_domain_refusals_are_audited(env, method: str) -> None:
    hub, engine = env
    username, call = DOMAIN_REFUSALS[method]
    who = principal(engine, username)
    entry = _refused_once(env, lambda h: call(h, who), None)
    assert entry.username == username


def test_an_over_long_sign_in_is_audited_without_the_name(env) -> None:
    entry = _refused_once(env, lambda h: h.sign_in("x" * 5000, "pw"), "too_long")
    assert entry.username is None  # 5,000 characters of someone's typing are not kept


# (who calls, the call with the bad text in one argument)
BAD_TEXT_CALLS = {
    "audit-user": ("auditor", lambda h, p, b: h.audit_log(p, username=b)),
    "audit-subject": ("auditor", lambda h, p, b: h.audit_log(p, subject=b)),
    "plate": ("investigator.hf", lambda h, p, b: h.search_plate(p, "皖A" + b, PURSUIT)),
    "name": ("investigator.hf", lambda h, p, b: h.search_person(p, "name", b, PURSUIT)),
    "text": ("investigator.hf", lambda h, p, b: h.search_text(p, b, PURSUIT)),
    "reason-note": ("investigator.hf", lambda h, p, b: h.search_plate(
        p, "皖A12345", Reason("pursuit", demo.PURSUIT_CASE_NO, b))),
    "scope": ("investigator.hf", lambda h, p, b: h.request_access(
        p, owner_city="341100", level="sensitive", scope_kind="camera_area",
        scope_value='{"x": "' + b + '"}', reason=PURSUIT, justification="追逃需要核查卡口")),
    "filename": ("province.approver", lambda h, p, b: h.ingest_feed(
        p, city="340100", spec_name="x", filename="a" + b + ".csv", data=b"x")),
    "sign-in": (None, lambda h, p, b: h.sign_in("officer.hf" + b, "demo-2026")),
}  # fmt: skip


@pytest.mark.parametrize(
    "bad", ["\x00", "\ud800", "a\udfffb"], ids=["nul", "high-surrogate", "low-surrogate"]
)
@pytest.mark.parametrize("case", sorted(BAD_TEXT_CALLS))
def test_text_no_store_can_hold_is_refused_alike(env, case: str, bad: str) -> None:
    hub, engine = env
    username, call = BAD_TEXT_CALLS[case]
    who = principal(engine, username) if username else None
    _refused_once(env, lambda h: call(h, who, bad), "bad_characters")


@pytest.mark.parametrize(
    "typed", [f"请核查 {ID_NUMBER}", f"联系人电话{PHONE}，尽快", "身份证 110105 19491231 002X"]
)
@pytest.mark.parametrize(
    "call",
    [
        lambda h, e, t: h.request_access(
            principal(e, "investigator.hf"), owner_city="341100", level="sensitive", scope_kind="plate",
            scope_value="皖M12345", reason=PURSUIT, justification=t),
        lambda h, e, t: h.break_glass(
            principal(e, "investigator.hf"), plate="皖M12345", owner_city="341100", reason=PURSUIT,
            justification=t),
        lambda h, e, t: h.raise_alert(principal(e, "commander.hf"), title="重点人员预警", level="high", body=t),
        lambda h, e, t: h.create_operation(principal(e, "commander.hf"), name=t, kind="pursuit",
                                           lon=117.2, lat=31.8),
        lambda h, e, t: h.close_alarm(principal(e, "auditor"), 1, t),
    ],
    ids=["justification", "break-glass", "alert-body", "operation-name", "alarm-note"],
)  # fmt: skip
def test_identifiers_in_shared_free_text_are_refused(env, call, typed: str) -> None:
    hub, engine = env
    entry = _refused_once(env, lambda h: call(h, engine, typed), "text_has_identifier")
    assert ID_NUMBER not in str(entry.detail) and PHONE not in str(entry.detail)
    assert ID_NUMBER not in str(entry.query) and PHONE not in str(entry.query)


@pytest.mark.parametrize(
    "text",
    [
        "案发时间 2026-11-30 10:15，车牌皖A12345",
        "编号 A340100-20261130-0001",
        "卡口 3401 0213 路段",
        "共 13 辆车 8000 元",
    ],
)
def test_ordinary_numbers_in_free_text_are_not_mistaken_for_identifiers(text: str) -> None:
    from hub.boundary import holds_identifier

    assert not holds_identifier(text)


def test_allowed_calls_write_no_refusal(env) -> None:
    hub, engine = env
    before = _last_seq(engine)
    hub.search_plate(principal(engine, "investigator.hf"), demo.PURSUIT_PLATE, PURSUIT,
                     now=at() + timedelta(minutes=1))  # fmt: skip
    assert not [e for e in _entries(engine, before) if e.action.endswith("_refused")]


def test_a_refusal_inside_run_is_audited_once_not_twice(env) -> None:
    hub, engine = env
    entry = _refused_once(
        env, lambda h: h.search_plate(principal(engine, "investigator.hf"), "皖A1", Reason("nope", "X")),
        "unknown_purpose",
    )  # fmt: skip
    assert entry.action == "search_refused"


@pytest.mark.parametrize("limit", [-5, 0, 10**6])
def test_an_audit_search_limit_out_of_range_is_refused(env, limit: int) -> None:
    hub, engine = env
    auditor = principal(engine, "auditor")
    _refused_once(env, lambda h: h.audit_log(auditor, limit=limit), "out_of_range")
