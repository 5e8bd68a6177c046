"""Sign-in throttling: growing delays per source address and per account, kept in the
database so that every app process sees the same state.

Three keys count the recent failures of one attempt: its source address, the account
name as typed (known or not, so throttling tells nothing about which names exist) and
the pair of the two. After `FREE_FAILURES` failures a key refuses attempts until a delay
has passed that doubles with each further failure, up to `MAX_DELAY`. Attempts made
while a key refuses are not counted, so a patient guesser gets one guess per delay and a
flood gets nothing more.

Nobody at another address can shut the owner of an account out: the per-account delay
is not applied to a source the account signed in from successfully (within
`KNOWN_SOURCE_DAYS`), and the pair and source keys only hold the failures made from the
attempt's own address. What an attacker elsewhere can do is slow the account's first
sign-in from a new address, which an admin's `users unlock` clears.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.models import SignInThrottle

FREE_FAILURES = 3
MAX_DELAY = timedelta(minutes=15)
# Failures older than this no longer count (a key with none since starts again).
FORGET_AFTER = timedelta(hours=24)
KNOWN_SOURCE_DAYS = 90
UNKNOWN_SOURCE = "unknown"


def delay_after(failures: int) -> timedelta:
    """How long a key refuses attempts after its `failures`-th recent failure."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - FREE_FAILURES, 20)), MAX_DELAY)


def source_label(source: str | None) -> str:
    """The source as stored and audited: the address, or 'unknown' when none was given."""
    return (source or UNKNOWN_SOURCE).strip()[:64] or UNKNOWN_SOURCE


def _keys(username: str, source: str) -> tuple[str, str, str]:
    # PostgreSQL can neither store nor compare a NUL; no real name or address holds one.
    username, source = username.replace("\x00", "\ufffd"), source.replace("\x00", "\ufffd")
    return f"source:{source}", f"account:{username}", f"pair:{username}|{source}"


def _locked_rows(session: Session, keys: tuple[str, ...]) -> dict[str, SignInThrottle]:
    """The rows of `keys`, created if missing and locked until the transaction ends, so
    that parallel attempts on the same key are heard one after the other."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(SignInThrottle)
        .values([{"key": k, "failures": 0} for k in keys])
        .on_conflict_do_nothing(index_elements=["key"])
    )
    rows = session.scalars(
        select(SignInThrottle)
        .where(SignInThrottle.key.in_(keys))
        .order_by(SignInThrottle.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {r.key: r for r in rows}


def check(session: Session, username: str, source: str, *, now: datetime) -> str | None:
    """Which key refuses this attempt now ('source', 'account' or 'pair'), or None.

    Locks the attempt's rows until the caller's transaction ends (see `_locked_rows`).
    """
    source_key, account_key, pair_key = _keys(username, source)
    # The source first, alone: a refused flood from one address creates no other rows.
    if _refuses(_locked_rows(session, (source_key,))[source_key], now):
        return "source"
    rows = _locked_rows(session, (account_key, pair_key))
    pair = rows[pair_key]
    known = pair.last_ok_at is not None and now - pair.last_ok_at < timedelta(
        days=KNOWN_SOURCE_DAYS
    )
    if _refuses(pair, now):
        return "pair"
    if not known and _refuses(rows[account_key], now):
        return "account"
    return None


def _refuses(row: SignInThrottle, now: datetime) -> bool:
    # A wait longer than any delay means the clock went back since: not one to honour.
    return row.allowed_at is not None and now < row.allowed_at <= now + MAX_DELAY


def failed(session: Session, username: str, source: str, *, now: datetime) -> None:
    """Count a failure on every key of the attempt (rows locked by `check`)."""
    for key in _keys(username, source):
        row = session.get(SignInThrottle, key)
        if row.last_failure_at is not None and abs(now - row.last_failure_at) > FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        delay = delay_after(row.failures)
        row.allowed_at = now + delay if delay else None


def succeeded(session: Session, username: str, source: str, *, now: datetime) -> None:
    """The account's owner signed in from `source`: forget the pair's failures and
    remember the source as known. The source and account keys keep theirs, or a guesser
    holding one valid account could clear its own address's delay by signing in."""
    pair = session.get(SignInThrottle, _keys(username, source)[2])
    pair.failures, pair.allowed_at, pair.last_ok_at = 0, None, now


def clear_account(session: Session, username: str) -> None:
    """Forget the account's failures (an admin's unlock); known sources stay known."""
    session.execute(delete(SignInThrottle).where(SignInThrottle.key == f"account:{username}"))
    pairs = session.scalars(
        select(SignInThrottle).where(
            SignInThrottle.key.startswith(f"pair:{username}|", autoescape=True),
            or_(SignInThrottle.failures > 0, SignInThrottle.allowed_at.is_not(None)),
        )
    )
    for pair in pairs:
        pair.failures, pair.allowed_at = 0, None
