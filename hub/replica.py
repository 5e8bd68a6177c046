"""Read-only aggregates on a PostgreSQL streaming replica, when one is configured and
fresh enough; everything else (every read that writes an audit entry, every write, every
check of who is asking) stays on the primary.

The replica is PostgreSQL's own physical standby (`pg_basebackup -R`); the hub only
chooses where to send a read. Its age is measured against the primary: the WAL the
primary has written that the standby has not yet replayed, and since when. An idle,
caught-up standby is fresh whatever its last replay time says; a standby that lost its
primary connection is as old as the WAL it is missing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from hub.settings import Settings
from hub.store import StoreError, make_engine

# How long one look at the replica is trusted before the next (each look is two short
# queries, one on each server).
RECHECK_SECONDS = 5.0


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
        """Whether pages should say how old the data is (or that the replica is unused)."""
        return self.configured and (
            self.problem is not None or (self.lag_seconds or 0.0) > threshold_s
        )


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
            replica = make_engine(settings.replica_url, check=False)
        return cls(primary, replica, max_lag_s=settings.replica_max_lag_seconds)

    def engine(self) -> Engine:
        """The engine a read-only aggregate should use now."""
        return self.replica if self.replica is not None and self.status().in_use else self.primary

    def status(self, *, fresh: bool = False) -> ReplicaStatus:
        """The replica's state, looked at most every `recheck_s` seconds (or now)."""
        with self._lock:
            if fresh or self._status is None or time.monotonic() - self._checked > self.recheck_s:
                self._status = self._look()
                self._checked = time.monotonic()
            return self._status

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

    def dispose(self) -> None:
        if self.replica is not None:
            self.replica.dispose()
