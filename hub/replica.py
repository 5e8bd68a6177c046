"""Read-only aggregates on a PostgreSQL streaming replica, when one is configured and
fresh enough; everything else (every read that writes an audit entry, every write, every
check of who is asking) stays on the primary.

The replica is PostgreSQL's own physical standby (`pg_basebackup -R`); the hub only
chooses where to send a read. Its age is measured against the primary: the WAL the
primary has written that the standby has not yet replayed, and since when. An idle,
caught-up standby is fresh whatever its last replay time says; a standby that lost its
primary connection is as old as the WAL it is missing.

What goes where (`Hub._aggregate` calls `ReadRouter.aggregate`): the caller is checked
on the primary (identity, grants); then the province counts, the overview, Explore, the
feed scorecard and a situation query that asks for hexagon counts alone read the
replica. Every lookup, record view, export and map view with features stays on the
primary in the one transaction that writes its audit entry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from hub.settings import Settings
from hub.situation import LAYERS, SituationQuery
from hub.store import StoreError, make_engine, parse_url, transaction

T = TypeVar("T")
log = logging.getLogger(__name__)

# How long one look at the replica is trusted before the next (each look is two short
# queries, one on each server).
RECHECK_SECONDS = 5.0
# A replica host that does not answer must not hold a page: connecting gives up after
# this many seconds (libpq's connect_timeout), and the read goes to the primary.
CONNECT_TIMEOUT_SECONDS = 3
# What an aggregate's session needs from the primary session in which the caller was
# checked: who asks (the backstop's row filter and the viewer's hidden counts), the grants
# in force (read on the primary, so a grant just given or revoked counts at once) and the
# alarm thresholds.
CARRIED = ("principal", "grants", "alarm_thresholds")


def counts_only(query: SituationQuery) -> bool:
    """Whether a situation query asks for hexagon counts alone (no incident points, no
    other layer): it then opens no record and writes no audit entry, so the replica may
    answer it. A query that shows features stays on the primary whole: its counts, the
    features and their `map_view` audit entry come from one transaction, and the viewer's
    hidden count is taken against the same data as the points shown."""
    return not any(
        layer in query.layers and (layer != "incidents" or query.points) for layer in LAYERS
    )


@dataclass(frozen=True)
class ReplicaStatus:
    """Where read-only aggregates go now, and why.

    problem is None (fresh), ``down`` (cannot be reached), ``not_standby`` (the URL names
    a server that is not replaying a primary: refusing to use it protects against a
    stale copy or a mistyped URL), or ``too_old`` (lag past the setting).
    """

    configured: bool
    in_use: bool
    lag_seconds: float | None
    problem: str | None
    checked_at: datetime

    def notice(self, threshold_s: float) -> bool:
        """Whether pages should say how old their aggregates are: they come from the
        replica and it lags more than `threshold_s`. A replica that is not used (down,
        too old, not a standby) leaves the pages on the primary, whose data is current:
        nothing to say to the viewer (the operators read it in the log)."""
        return self.in_use and (self.lag_seconds or 0.0) > threshold_s


class ReadRouter:
    """Chooses the engine for read-only aggregates: the replica while it is a standby
    whose lag is within `max_lag_s`, else the primary."""

    def __init__(
        self, primary: Engine, replica: Engine | None, *, max_lag_s: float,
        recheck_s: float = RECHECK_SECONDS,
    ) -> None:  # fmt: skip
        self.primary, self.replica = primary, replica
        self.max_lag_s, self.recheck_s = max_lag_s, recheck_s
        self._lock = threading.Lock()
        self._status: ReplicaStatus | None = None
        self._checked = 0.0

    @classmethod
    def from_settings(cls, primary: Engine, settings: Settings) -> ReadRouter:
        replica = None
        if settings.replica_url:
            if primary.dialect.name != "postgresql":
                raise StoreError("HUB_REPLICA_URL needs a PostgreSQL primary (HUB_DATABASE_URL)")
            # Not checked now: a replica that is down at start is a replica to fall back from.
            url = parse_url(settings.replica_url)
            if "connect_timeout" not in url.query:
                url = url.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_SECONDS)})
            replica = make_engine(url.render_as_string(hide_password=False), check=False)
        return cls(primary, replica, max_lag_s=settings.replica_max_lag_seconds)

    def engine(self) -> Engine:
        """The engine a read-only aggregate should use now."""
        return self.replica if self.replica is not None and self.status().in_use else self.primary

    def status(self, *, fresh: bool = False) -> ReplicaStatus:
        """The replica's state, looked at most every `recheck_s` seconds (or now)."""
        with self._lock:
            if fresh or self._status is None or time.monotonic() - self._checked > self.recheck_s:
                before, self._status = self._status, self._look()
                self._checked = time.monotonic()
                if before is None or before.problem != self._status.problem:
                    self._log(self._status)
            return self._status

    def aggregate(self, checked: AbstractContextManager[Session], fn: Callable[[Session], T]) -> T:
        """Run the read-only aggregate `fn` where it belongs.

        `checked` is the primary session in which the caller was checked (identity,
        grants: ``Hub._session(principal)``); it is closed before `fn` runs on the
        replica, whose session carries the same principal and grants (`CARRIED`). With
        no fresh replica `fn` runs in `checked` itself, as before. A replica that fails
        under the query (gone since the last look, or the standby cancelled the query
        to replay WAL that conflicts with it) costs one retry on the primary, and the
        next call looks at it again. `fn` must not write: a standby refuses writes.
        """
        with checked as session:
            if self.replica is None or not self.status().in_use:
                return fn(session)
            carried = {k: session.info[k] for k in CARRIED if k in session.info}
        try:
            with transaction(self.replica) as session:
                session.info.update(carried)
                return fn(session)
        except OperationalError as exc:
            log.warning("replica read failed, reading the primary: %s", str(exc.orig)[:200])
            with self._lock:
                self._checked = float("-inf")  # look again on the next call
        with transaction(self.primary) as session:
            session.info.update(carried)
            return fn(session)

    def shown_lag(self, threshold_s: float) -> float | None:
        """The replica's lag in seconds when the aggregates come from it and it lags more
        than `threshold_s` (what a page should say); None when they are current."""
        status = self.status()
        return status.lag_seconds if status.notice(threshold_s) else None

    def _look(self) -> ReplicaStatus:
        now = datetime.now(UTC)
        if self.replica is None:
            return ReplicaStatus(False, False, None, None, now)
        try:
            with self.primary.connect() as conn:
                written = conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one()
            with self.replica.connect() as conn:
                standby, missing, since = conn.execute(
                    text(
                        "SELECT pg_is_in_recovery(),"
                        " pg_wal_lsn_diff(CAST(:written AS pg_lsn), pg_last_wal_replay_lsn()),"
                        " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
                    ),
                    {"written": written},
                ).one()
        except (DBAPIError, OperationalError):
            return ReplicaStatus(True, False, None, "down", now)
        if not standby:
            return ReplicaStatus(True, False, None, "not_standby", now)
        lag = 0.0 if missing is None or missing <= 0 else max(0.0, float(since or 0.0))
        if lag > self.max_lag_s:
            return ReplicaStatus(True, False, lag, "too_old", now)
        return ReplicaStatus(True, True, lag, None, now)

    def _log(self, status: ReplicaStatus) -> None:
        if not status.configured:
            return
        if status.problem is None:
            log.info("read replica in use (lag %.1f s)", status.lag_seconds or 0.0)
        else:
            log.warning("read replica not used (%s): aggregates read the primary", status.problem)

    def dispose(self) -> None:
        if self.replica is not None:
            self.replica.dispose()
