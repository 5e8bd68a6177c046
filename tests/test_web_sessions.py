"""Sessions that survive a reload (issue 16 item 5): the hub keeps only a hash of the
token; a hand-off code is claimed once; a resume is audited and refused once the session
is idle, too old, stale (the user's session version changed) or signed out."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.models import AuditEntry, WebSession
from hub.security import identity
from hub.security.errors import HubError
from hub.service import Hub
from hub.settings import load_settings
from hub.store import transaction
from tests.conftest import BACKENDS
from tests.security_support import seeded_copy


@pytest.fixture(scope="module", params=BACKENDS)
def hub(request, tmp_path_factory) -> Hub:
    engine = seeded_copy(request.param, tmp_path_factory)
    yield Hub(engine, load_settings(environ={}))
    engine.dispose()


def _token(hub: Hub, username: str = "investigator.hf"):
    principal = hub.sign_in(username, "demo-2026")
    return principal, hub.claim_web_session(hub.open_web_session(principal))


def _why(hub: Hub, token: str) -> str:
    with pytest.raises(HubError) as refused:
        hub.resume_web_session(token)
    assert refused.value.code == "session_ended"
    return refused.value.params["why"]


def _age(hub: Hub, token: str, **delta) -> None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    with transaction(hub.engine) as s:
        row = s.scalar(select(WebSession).where(WebSession.token_hash == digest))
        row.created_at -= timedelta(**delta)
        row.last_seen_at -= timedelta(**delta)


def test_resume_gives_the_same_person_and_keeps_only_a_hash(hub: Hub) -> None:
    principal, token = _token(hub)
    resumed = hub.resume_web_session(token, source="10.0.0.7")
    assert (resumed.user_id, resumed.role, resumed.session_version) == (
        principal.user_id, principal.role, principal.session_version)  # fmt: skip
    assert resumed.signed_in_at == principal.signed_in_at  # the absolute limit still counts
    with transaction(hub.engine) as s:
        hashes = s.scalars(select(WebSession.token_hash)).all()
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "sign_in")
                          .order_by(AuditEntry.id.desc())).first()  # fmt: skip
    assert token not in "".join(hashes)
    assert hashlib.sha256(token.encode()).hexdigest() in hashes
    assert entry.decision == "resumed" and entry.user_id == principal.user_id


def test_a_hand_off_code_is_claimed_once_and_is_not_a_token(hub: Hub) -> None:
    principal = hub.sign_in("investigator.hf", "demo-2026")
    code = hub.open_web_session(principal)
    assert _why(hub, code) == "signed_out"  # unclaimed: the code itself resumes nothing
    token = hub.claim_web_session(code)
    with pytest.raises(HubError):
        hub.claim_web_session(code)
    assert hub.resume_web_session(token).user_id == principal.user_id
    late = hub.open_web_session(principal)
    _age(hub, late, seconds=identity.HANDOFF_SECONDS + 1)
    with pytest.raises(HubError):
        hub.claim_web_session(late)


def test_idle_too_old_and_signed_out_sessions_are_refused(hub: Hub) -> None:
    _, idle = _token(hub)
    _age(hub, idle, minutes=hub.settings.session_idle_minutes + 1)
    assert _why(hub, idle) == "idle"
    assert _why(hub, idle) == "idle"  # ended: the reason stays with the session

    _, old = _token(hub)
    _age(hub, old, hours=hub.settings.session_max_hours + 1)
    assert _why(hub, old) == "too_long"

    principal, token = _token(hub)
    hub.check_session(principal, web_session=token)
    hub.sign_out(principal, web_session=token)
    assert _why(hub, token) == "signed_out"


def test_activity_keeps_a_session_from_going_idle(hub: Hub) -> None:
    principal, token = _token(hub)
    _age(hub, token, minutes=hub.settings.session_idle_minutes - 1)
    hub.check_session(principal, web_session=token)  # a rerun: the person is active
    _age(hub, token, minutes=2)
    assert hub.resume_web_session(token).user_id == principal.user_id


def test_a_session_another_tab_ended_still_says_why(hub: Hub) -> None:
    """The open tab's refresh finds the lock first and ends the session; the reload
    that follows must still tell the person why (not a bare sign-in form)."""
    principal, token = _token(hub, "officer.wh")
    with transaction(hub.engine) as s:
        identity.set_locked(s, None, "officer.wh", True, now=identity_now())
    with pytest.raises(HubError):
        hub.check_session(principal, web_session=token)
    hub.sign_out(principal, why="session_ended", web_session=token)  # what the tab does
    assert _why(hub, token) == "access_changed"


def test_a_lock_ends_the_session_and_is_audited(hub: Hub) -> None:
    _, token = _token(hub, "investigator.wh")
    with transaction(hub.engine) as s:
        identity.set_locked(s, None, "investigator.wh", True, now=identity_now())
    assert _why(hub, token) == "access_changed"
    # Still said after another tab ended it first: a reload shows why, not a bare form.
    assert _why(hub, token) == "access_changed"
    with transaction(hub.engine) as s:
        refused = s.scalars(select(AuditEntry.action).where(
            AuditEntry.action.in_(["sign_out", "resume_web_session_refused"]))).all()  # fmt: skip
    assert "sign_out" in refused and "resume_web_session_refused" in refused


def identity_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)
