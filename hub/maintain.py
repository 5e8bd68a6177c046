"""`python -m hub maintain`: the store's housekeeping, safe to run from cron.

On PostgreSQL: the day partitions of the coming days are created (plate reads and
incidents never fall into the DEFAULT partition in normal operation) and retention drops
expired days whole (hub/retention.py), with the records of open cases kept. Running it
twice changes nothing the second time. On SQLite there are no partitions: it says so
and does nothing (`python -m hub retention apply` purges row by row there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from hub import partitions
from hub.retention import Purge, apply_retention

AHEAD_DAYS = 7
LOCK_TIMEOUT_S = 10


@dataclass(frozen=True)
class Maintenance:
    backend: str
    created: dict[str, tuple[date, ...]]  # partitioned table -> days created now
    purges: tuple[Purge, ...]

    @property
    def skipped(self) -> bool:
        """True on a backend without partitions (nothing was done)."""
        return self.backend != "postgresql"


def maintain(
    session: Session, retention_days: dict[str, int], *, now: datetime | None = None,
    ahead: int = AHEAD_DAYS, lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> Maintenance:  # fmt: skip
    """Create the partitions of today and the next `ahead` days, then apply retention.

    Everything happens in the caller's transaction (the retention audit entries with it).
    """
    now = now or datetime.now(UTC)
    conn = session.connection()
    backend = conn.dialect.name
    if backend != "postgresql":
        return Maintenance(backend, {}, ())
    # Attaching and detaching a day takes the parent table's exclusive lock for a moment.
    # Behind a long report it would wait, and every new read of the table would queue
    # behind it: give up instead (the transaction rolls back whole; cron tries again).
    # (DETACH … CONCURRENTLY, which needs no such lock, is refused beside a DEFAULT
    # partition.)
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
    created = {
        table: tuple(partitions.ensure_ahead(conn, table, today=now.date(), ahead=ahead))
        for table in partitions.PARTITIONED
        if partitions.is_partitioned(conn, table)
    }
    purges = apply_retention(session, retention_days, now=now)
    return Maintenance(backend, created, tuple(purges))
