"""Users, passwords (argon2id) and sign-in with lockout; every attempt is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import City, District, User
from hub.security import audit
from hub.security.errors import InputError, SignInError
from hub.security.policy import ROLES, Principal

MAX_FAILURES = 5
LOCK_MINUTES = 15
IDLE_MINUTES = 30
# Published with the demo store; `HUB_ENV=production` refuses to start while any user has it.
DEMO_PASSWORD = "demo-2026"
_hasher = PasswordHasher()  # argon2id with the library's recommended parameters


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise InputError("password_short", "passwords need at least 8 characters")
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def principal_of(user: User) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        city_code=user.city_code,
        district_code=user.district_code,
    )


def sign_in(session: Session, username: str, password: str, *, now: datetime) -> Principal:
    """Check a password; lock the account for 15 minutes after 5 failures in a row.

    The caller commits even when this raises, so that failures (and the audit entries
    saying so) are kept: use `hub.service.Hub.sign_in`.

    Raises
    ------
    SignInError
        `bad_credentials` (unknown user or wrong password: the same message for both),
        `locked` (with `until`), or `inactive`.
    """
    username = username.strip()
    # No user name holds a NUL (PostgreSQL could not even compare one): an unknown user.
    known = username and "\x00" not in username
    user = session.scalar(select(User).where(User.username == username)) if known else None
    if user is None:
        audit.record(session, None, "sign_in", now=now, username=username[:64], decision="failed")
        raise SignInError("bad_credentials", "unknown user or wrong password")
    principal = principal_of(user)
    if not user.active:
        audit.record(session, principal, "sign_in", now=now, decision="inactive")
        raise SignInError("inactive", "this account is deactivated")
    if user.locked_until is not None and user.locked_until > now:
        audit.record(session, principal, "sign_in", now=now, decision="locked")
        raise SignInError("locked", "account locked", until=user.locked_until)
    if not password_matches(user.password_hash, password):
        user.failed_attempts += 1
        decision = "failed"
        if user.failed_attempts >= MAX_FAILURES:
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            user.failed_attempts = 0
            decision = "locked_now"
        audit.record(session, principal, "sign_in", now=now, decision=decision)
        if decision == "locked_now":
            raise SignInError("locked", "account locked", until=user.locked_until)
        raise SignInError("bad_credentials", "unknown user or wrong password")
    user.failed_attempts = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(session, principal, "sign_in", now=now, decision="ok")
    return principal


def sign_out(session: Session, principal: Principal, *, now: datetime, idle: bool = False) -> None:
    audit.record(session, principal, "sign_out", now=now, decision="idle" if idle else "ok")


# --- administration (CLI and admin page) -------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    username: str
    display_name: str
    role: str
    city_code: str | None
    district_code: str | None
    active: bool
    locked_until: datetime | None
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
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    _audit_admin(session, actor, "user_add", username, now, role=role, city=city_code)
    return user


def list_users(session: Session) -> list[UserRow]:
    return [
        UserRow(u.username, u.display_name, u.role, u.city_code, u.district_code, u.active,
                u.locked_until, u.last_login_at)
        for u in session.scalars(select(User).order_by(User.username))
    ]  # fmt: skip


def set_locked(
    session: Session, actor: Principal | None, username: str, locked: bool, *, now: datetime
) -> None:
    """Lock indefinitely (deactivate) or unlock (activate and clear any lockout)."""
    user = _user(session, username)
    user.active = not locked
    if not locked:
        user.locked_until = None
        user.failed_attempts = 0
    _audit_admin(session, actor, "user_lock" if locked else "user_unlock", username, now)


def reset_password(
    session: Session, actor: Principal | None, username: str, password: str, *, now: datetime
) -> None:
    user = _user(session, username)
    user.password_hash = hash_password(password)
    user.failed_attempts = 0
    user.locked_until = None
    _audit_admin(session, actor, "user_reset_password", username, now)


def set_role(
    session: Session, actor: Principal | None, username: str, role: str,
    city_code: str | None, district_code: str | None, *, now: datetime,
) -> None:  # fmt: skip
    user = _user(session, username)
    _check_home(session, role, city_code, district_code)
    old = user.role
    user.role, user.city_code, user.district_code = role, city_code, district_code
    _audit_admin(session, actor, "user_set_role", username, now, old=old, role=role, city=city_code)


def _audit_admin(
    session: Session, actor: Principal | None, action: str, target: str, now: datetime, **detail
) -> None:
    audit.record(
        session, actor, action, now=now, username=None if actor else "cli",
        dataset="users", query={"user": target}, detail=detail or None,
    )  # fmt: skip


def users_with_demo_password(session: Session) -> list[str]:
    """Usernames whose password is still the published demo password."""
    return [
        u.username
        for u in session.scalars(select(User).where(User.active.is_(True)))
        if password_matches(u.password_hash, DEMO_PASSWORD)
    ]
