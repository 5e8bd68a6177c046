"""A commander responds to an incident under an operational purpose that names the
incident, not a case number (`Reason.for_incident`): accepted for a commander and an
incident they may open, audited as ``INC-<id>``; refused for other roles, other
purposes, incidents they may not open, and where a case is needed (requests)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.models import AuditEntry, Incident
from hub.security.errors import HubError
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory
from tests.conftest import BACKENDS
from tests.security_support import principal, seeded_copy

HEFEI = "340100"


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    yield engine, Hub(engine, load_settings())
    engine.dispose()


def _incident(engine, level: str) -> int:
    with session_factory(engine)() as s:
        return s.scalar(
            select(Incident.id)
            .where(Incident.city_code == HEFEI, Incident.classification == level)
            .order_by(Incident.id)
            .limit(1)
        )


def _refused(code: str, fn, *args, **kw) -> None:
    with pytest.raises(HubError) as caught:
        fn(*args, **kw)
    assert caught.value.code == code


def test_a_commander_opens_an_incident_without_a_case(env) -> None:
    engine, hub = env
    cmd = principal(engine, "commander.hf")
    inc = _incident(engine, "internal")
    view = hub.view_record(cmd, "incidents", inc, Reason.for_incident(inc))
    assert [r["id"] for r in view.record.rows] == [inc]
    with session_factory(engine)() as s:
        last = s.scalars(
            select(AuditEntry).where(AuditEntry.username == "commander.hf",
                                     AuditEntry.action == "view")
            .order_by(AuditEntry.seq.desc()).limit(1)
        ).one()  # fmt: skip
    assert (last.purpose, last.case_no) == ("emergency", f"INC-{inc}")
    # Without the incident, a commander still needs a case number.
    _refused("no_open_case", hub.view_record, cmd, "incidents", inc, Reason("emergency", ""))


def test_incident_reasons_are_refused_outside_their_bounds(env) -> None:
    engine, hub = env
    cmd, inv = principal(engine, "commander.hf"), principal(engine, "investigator.hf")
    inc, secret = _incident(engine, "internal"), _incident(engine, "secret")
    assert secret is not None
    _refused("incident_reason_role", hub.view_record, inv, "incidents", inc,
             Reason.for_incident(inc))  # fmt: skip
    _refused("incident_reason_purpose", hub.view_record, cmd, "incidents", inc,
             Reason.for_incident(inc, purpose="case_investigation"))  # fmt: skip
    _refused("incident_reason_with_case", hub.view_record, cmd, "incidents", inc,
             Reason("emergency", "A340100202600001", incident_id=inc))  # fmt: skip
    # One the commander may not open is as unknown as one that does not exist.
    _refused("no_incident", hub.view_record, cmd, "incidents", secret, Reason.for_incident(secret))
    _refused("no_incident", hub.view_record, cmd, "incidents", 10**9, Reason.for_incident(10**9))
    # A request for another city's records needs a case: the incident is no reason there.
    _refused("incident_reason_not_here", hub.request_access, cmd, owner_city="341100",
             level="sensitive", scope_kind="plate", scope_value="皖AK7P35",
             reason=Reason.for_incident(inc), justification="处置警情需要调阅邻市卡口记录")  # fmt: skip
