"""Users, passwords (argon2id), sign-in and the check that a session is still current.

A sign-in attempt answers the same way, after the same work, whether the name is
unknown, the password wrong or the account deactivated; only the audit entry keeps the
true decision (and the source address). Guessing is slowed by `hub.security.throttle`.
A session carries the user's session version and when it began: every hub call checks
both against the users table (`require_current`), so a lock, a role change or a password
reset ends open sessions at once, and none lives longer than the settings allow.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub.models import City, District, User, WebSession
from hub.security import audit, throttle
from hub.security.errors import HubError, InputError, SignInError
from hub.security.policy import ROLES, Principal
from hub.settings import Settings

# Published with the demo store; `HUB_ENV=production` refuses to start while any user has it.
DEMO_PASSWORD = "demo-2026"
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
# zxcvbn's score (0-4): 3 is "safely unguessable" against throttled online guessing and
# slows an offline attack on an argon2id hash to years.
MIN_PASSWORD_SCORE = 3
_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# zxcvbn keeps the caller's words in a module-level dictionary while it scores.
_zxcvbn_lock = threading.Lock()


class SessionEnded(HubError):
    """The session's access ended (locked, role changed, password reset) or it is older
    than the longest session allowed: the person has to sign in again."""


def check_password(password: str, *, username: str = "", display_name: str = "") -> None:
    """Refuse a password that is short, common or breached, or easy to guess.

    Common and breached passwords are zxcvbn's frequency lists (30,000 passwords from
    breach corpora, plus words and names), shipped with the package: no network.

    Raises
    ------
    InputError
        ``password_short``, ``too_long``, ``password_common`` (on the list, or the
        published demo password) or ``password_weak`` (guessable: words, dates,
        keyboard runs, repeats, the user's own name).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            "password_short",
            f"passwords need at least {MIN_PASSWORD_LENGTH} characters",
            limit=MIN_PASSWORD_LENGTH,
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputError(
            "too_long", "password too long", field="password", limit=MAX_PASSWORD_LENGTH
        )
    # zxcvbn builds its ranked word lists at import: paid only when a password is set.
    from zxcvbn import zxcvbn

    lowered = password.lower()
    if lowered in _common_passwords() or DEMO_PASSWORD in lowered:
        raise InputError(
            "password_common", "this password is on the list of common or breached ones"
        )
    words = [w for w in (username, display_name, DEMO_PASSWORD, "hub", "police") if w]
    with _zxcvbn_lock:
        score = zxcvbn(password[:72], user_inputs=words)["score"]
    if score < MIN_PASSWORD_SCORE:
        raise InputError(
            "password_weak",
            "this password is easy to guess (words, dates, keyboard runs, the user's name): "
            "use a longer, less predictable one",
        )


@cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    """A hash no password matches, checked for unknown names so that they cost the same."""
    return _hasher.hash(secrets.token_hex(32))


def principal_of(user: User, *, signed_in_at: datetime | None = None) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        city_code=user.city_code,
        district_code=user.district_code,
        session_version=user.session_version,
        signed_in_at=signed_in_at,
    )


def sign_in(
    session: Session, username: str, password: str, *, now: datetime, source: str | None = None
) -> Principal:
    """Check a password, throttled per source and per account; every attempt is audited.

    The caller commits even when this raises, so that failures (and the audit entries
    saying so) are kept: use `hub.service.Hub.sign_in`.

    Parameters
    ----------
    source
        The client's address; attempts without one share the source 'unknown'.

    Raises
    ------
    SignInError
        ``bad_credentials`` for every refusal: unknown name, wrong password, deactivated
        account, or an attempt that came before its throttle allowed. The audit entry's
        decision says which (failed, inactive, throttled) and its detail the source.
    """
    username = username.strip()[:64]
    src = throttle.source_label(source)
    blocked = throttle.check(session, username, src, now=now)
    # No user name holds a NUL (PostgreSQL could not even compare one): an unknown user.
    known = username and "\x00" not in username
    user = session.scalar(select(User).where(User.username == username)) if known else None
    principal = principal_of(user, signed_in_at=now) if user is not None else None
    detail = {"source": src}
    if blocked:
        # Refused before any hash: throttling is keyed on the name as typed, so its
        # answer says nothing about which names exist, and a flood costs no argon2 work.
        detail["throttled_by"] = blocked
        decision = "throttled"
    else:
        # The same argon2 work whether or not the name exists, and whatever the account.
        matches = password_matches(user.password_hash if user else _dummy_hash(), password)
        decision = "failed" if not matches else ("inactive" if not user.active else "ok")
    if decision not in ("throttled", "ok"):
        throttle.failed(session, username, src, now=now)
    audit.record(
        session, principal, "sign_in", now=now,
        username=None if user else username.replace("\x00", "\ufffd"),
        decision=decision, detail=detail,
    )  # fmt: skip
    if decision != "ok":
        raise SignInError("bad_credentials", "unknown user or wrong password")
    throttle.succeeded(session, username, src, now=now)
    user.last_login_at = now
    return principal


def require_current(
    session: Session, principal: Principal, *, now: datetime, settings: Settings
) -> None:
    """Refuse a session whose access ended or that is older than the longest allowed.

    One primary-key read of the user, inside the caller's transaction: the answer is
    the one the rest of the call sees.

    Raises
    ------
    SessionEnded
        ``session_ended`` with ``why``: ``access_changed`` (deactivated, role or home
        changed, password reset) or ``too_long`` (older than `session_max_hours`).
    """
    user = session.get(User, principal.user_id)
    if (
        user is None
        or not user.active
        or user.session_version != principal.session_version
        or (user.username, user.role, user.city_code, user.district_code)
        != (principal.username, principal.role, principal.city_code, principal.district_code)
    ):
        raise SessionEnded(
            "session_ended", "this session's access has changed", why="access_changed"
        )
    if principal.signed_in_at is not None and now - principal.signed_in_at > timedelta(
        hours=settings.session_max_hours
    ):
        raise SessionEnded("session_ended", "this session is older than allowed", why="too_long")


def sign_out(session: Session, principal: Principal, *, now: datetime, why: str = "ok") -> None:
    """Audit a sign-out: ``ok`` (asked for), ``idle`` or ``session_ended``."""
    audit.record(session, principal, "sign_out", now=now, decision=why[:32])


# --- sessions that survive a reload (web_sessions, behind an HttpOnly cookie) ----------
# A sign-in opens an unclaimed session whose token is a one-time hand-off code: the page
# gives it to the cookie route, which claims it (swapping in the token the cookie keeps),
# so the token itself never reaches the page's script, the URL or the history.
HANDOFF_SECONDS = 60
# Why a web session ended; `resume_web_session` refuses with this as the ``why``.
ENDED_WHYS = ("signed_out", "idle", "too_long", "access_changed")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_web_session(session: Session, principal: Principal, *, now: datetime,
                     settings: Settings) -> str:  # fmt: skip
    """Open a session for `principal` (signed in at `now`) and return its hand-off code;
    sessions that ended or lapsed longer ago than the absolute limit are pruned."""
    stale = now - timedelta(hours=settings.session_max_hours, days=1)
    session.execute(delete(WebSession).where(WebSession.created_at < stale))
    code = secrets.token_urlsafe(32)
    session.add(WebSession(
        token_hash=_token_hash(code), user_id=principal.user_id,
        session_version=principal.session_version, created_at=principal.signed_in_at or now,
        last_seen_at=now,
    ))  # fmt: skip
    return code


def claim_web_session(session: Session, code: str, *, now: datetime) -> str:
    """Exchange a fresh hand-off code, once, for the session's cookie token.

    Raises
    ------
    SessionEnded
        ``session_ended`` (why ``signed_out``): unknown, used or older than a minute.
    """
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _token_hash(code)))
    if (
        row is None
        or row.claimed_at is not None
        or row.ended_at is not None
        or now - row.created_at > timedelta(seconds=HANDOFF_SECONDS)
    ):
        raise SessionEnded("session_ended", "no such sign-in to claim", why="signed_out")
    token = secrets.token_urlsafe(32)
    row.token_hash, row.claimed_at = _token_hash(token), now
    return token


def resume_web_session(
    session: Session, token: str, *, now: datetime, settings: Settings, source: str | None
) -> Principal:
    """The principal of a claimed session that is still current, audited as a sign-in
    (decision ``resumed``); a session found idle, too old or stale is ended (audited as
    a sign-out) and refused.

    Raises
    ------
    SessionEnded
        ``session_ended`` with ``why``: ``signed_out`` (unknown, or signed out),
        ``access_changed`` (locked, role or home changed, password reset), ``too_long``
        (older than `session_max_hours`) or ``idle`` (unseen for `session_idle_minutes`).
    """
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _token_hash(token)))
    if row is None or row.claimed_at is None:
        raise SessionEnded("session_ended", "no such session", why="signed_out")
    if row.ended_at is not None:
        # Ended already (maybe by another tab's check a moment before this reload): the
        # reason it ended stays with it, so the sign-in form can still say why.
        raise SessionEnded(
            "session_ended", "this session has ended", why=row.ended_why or "signed_out"
        )
    user = session.get(User, row.user_id)
    if user is None or not user.active or user.session_version != row.session_version:
        why = "access_changed"
    elif now - row.created_at > timedelta(hours=settings.session_max_hours):
        why = "too_long"
    elif now - row.last_seen_at > timedelta(minutes=settings.session_idle_minutes):
        why = "idle"
    else:
        row.last_seen_at = now
        principal = principal_of(user, signed_in_at=row.created_at)
        audit.record(session, principal, "sign_in", now=now, decision="resumed",
                     detail={"source": throttle.source_label(source), "session": row.id})  # fmt: skip
        return principal
    row.ended_at, row.ended_why = now, why
    ended = principal_of(user, signed_in_at=row.created_at) if user is not None else None
    if ended is not None:
        sign_out(session, ended, now=now, why="idle" if why == "idle" else "session_ended")
    # The caller commits before raising, so that the end (and its audit entry) is kept.
    raise SessionEnded("session_ended", "this session has ended", why=why)


def touch_web_session(session: Session, token: str, *, now: datetime) -> None:
    """The person is active in a tab of this session: a reload within the idle limit
    from now resumes it."""
    session.execute(
        update(WebSession)
        .where(WebSession.token_hash == _token_hash(token), WebSession.ended_at.is_(None))
        .values(last_seen_at=now)
    )


def end_web_session(session: Session, token: str, *, now: datetime, why: str) -> None:
    """End a session (a sign-out, or one the app found idle or ended): its cookie no
    longer resumes anything, in any tab."""
    session.execute(
        update(WebSession)
        .where(WebSession.token_hash == _token_hash(token), WebSession.ended_at.is_(None))
        .values(ended_at=now, ended_why=why if why in ENDED_WHYS else "signed_out")
    )


# --- administration (CLI and admin page) -------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    username: str
    display_name: str
    role: str
    city_code: str | None
    district_code: str | None
    active: bool
    last_login_at: datetime | None


def _check_home(session: Session, role: str, city: str | None, district: str | None) -> None:
    if role not in ROLES:
        raise InputError("unknown_role", f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if city is not None and session.get(City, city) is None:
        raise InputError("unknown_city", f"unknown city adcode {city!r}")
    if district is not None:
        d = session.get(District, district)
        if d is None or d.city_code != city:
            raise InputError("unknown_district", f"district {district!r} is not in city {city!r}")
    if role == "officer" and (city is None or district is None):
        raise InputError("officer_home", "an officer needs a home city and district")
    if role in ("investigator", "city_approver", "commander") and city is None:
        raise InputError("city_required", f"a {role} needs a home city")


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise InputError("unknown_user", f"no user {username!r}")
    return user


def add_user(
    session: Session,
    actor: Principal | None,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str,
    city_code: str | None = None,
    district_code: str | None = None,
    now: datetime,
) -> User:
    """Create an account; the password must pass `check_password`."""
    check_password(password, username=username, display_name=display_name)
    return _create_user(session, actor, username, display_name, role, hash_password(password),
                        city_code, district_code, now)  # fmt: skip


def add_demo_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: str,
    city_code: str | None = None,
    district_code: str | None = None,
    now: datetime,
) -> User:
    """Create a demo account with the published `DEMO_PASSWORD`, which `check_password`
    refuses: only for the synthetic demo, which the CLI will not seed in production (and
    production refuses to start while any account keeps that password)."""
    return _create_user(session, None, username, display_name, role,
                        hash_password(DEMO_PASSWORD), city_code, district_code, now)  # fmt: skip


def _create_user(
    session: Session, actor: Principal | None, username: str, display_name: str, role: str,
    password_hash: str, city_code: str | None, district_code: str | None, now: datetime,
) -> User:  # fmt: skip
    if (
        not username
        or len(username) > 64
        or not username.replace(".", "").replace("_", "").isalnum()
    ):
        raise InputError("bad_username", "usernames: letters, digits, '.' and '_', at most 64")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InputError("user_exists", f"user {username!r} already exists")
    _check_home(session, role, city_code, district_code)
    user = User(
        username=username,
        display_name=display_name,
        role=role,
        city_code=city_code,
        district_code=district_code,
        password_hash=password_hash,
        session_version=0,
    )
    session.add(user)
    session.flush()
    _audit_admin(session, actor, "user_add", username, now, role=role, city=city_code)
    return user


def list_users(session: Session) -> list[UserRow]:
    return [
        UserRow(u.username, u.display_name, u.role, u.city_code, u.district_code, u.active,
                u.last_login_at)
        for u in session.scalars(select(User).order_by(User.username))
    ]  # fmt: skip


def set_locked(
    session: Session, actor: Principal | None, username: str, locked: bool, *, now: datetime
) -> None:
    """Lock indefinitely (deactivate; open sessions end) or unlock (activate, and forget
    the account's recent sign-in failures)."""
    user = _user(session, username)
    user.active = not locked
    if locked:
        user.session_version += 1
    else:
        throttle.clear_account(session, username)
    _audit_admin(session, actor, "user_lock" if locked else "user_unlock", username, now)


def reset_password(
    session: Session, actor: Principal | None, username: str, password: str, *, now: datetime
) -> None:
    """Set a new password (it must pass `check_password`); open sessions end."""
    user = _user(session, username)
    check_password(password, username=user.username, display_name=user.display_name)
    user.password_hash = hash_password(password)
    user.session_version += 1
    _audit_admin(session, actor, "user_reset_password", username, now)


def set_role(
    session: Session, actor: Principal | None, username: str, role: str,
    city_code: str | None, district_code: str | None, *, now: datetime,
) -> None:  # fmt: skip
    """Change role and home; open sessions end (they were granted the old ones)."""
    user = _user(session, username)
    _check_home(session, role, city_code, district_code)
    old = user.role
    user.role, user.city_code, user.district_code = role, city_code, district_code
    user.session_version += 1
    _audit_admin(session, actor, "user_set_role", username, now, old=old, role=role, city=city_code)


def _audit_admin(
    session: Session, actor: Principal | None, action: str, target: str, now: datetime, **detail
) -> None:
    audit.record(
        session, actor, action, now=now, username=None if actor else "cli",
        dataset="users", query={"user": target}, detail=detail or None,
    )  # fmt: skip


def users_with_demo_password(session: Session) -> list[str]:
    """Usernames whose password is still the published demo password (deactivated ones
    too: an unlock would bring them back)."""
    return [
        u.username
        for u in session.scalars(select(User).order_by(User.username))
        if password_matches(u.password_hash, DEMO_PASSWORD)
    ]
