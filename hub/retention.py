"""Retention: purge records older than their dataset's retention period (settings),
except those linked to an open case, with one audit entry per dataset.

On PostgreSQL the day-partitioned datasets (hub/partitions.py) lose a whole day at a
time: a partition whose day ended before the cutoff is detached and dropped after its
open-case records were moved to the DEFAULT partition; rows are deleted one by one only
there. A record is therefore kept until its whole UTC day has expired (at most a day
past its period), which is what makes retention of a day take seconds, not an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, false, func, or_, select, text
from sqlalchemy.orm import Session

from hub import models as m
from hub import partitions, rollup
from hub.models import RecordVersion
from hub.security import audit
from hub.security.policy import Principal

# dataset -> (model, the time that ages it)
RETAINED = {
    "incidents": (m.Incident, m.Incident.ts),
    "sightings": (m.Sighting, m.Sighting.ts),
    "help_requests": (m.HelpRequest, m.HelpRequest.ts),
    "alerts": (m.Alert, m.Alert.ts),
}


@dataclass(frozen=True)
class Purge:
    dataset: str
    days: int
    cutoff: datetime | None
    purged: int
    kept_for_open_cases: int


def _linked_to_open_case(session: Session, dataset: str):
    """SQL condition, never NULL: the record belongs to an open case (and must be kept).

    For plate reads, the plates of vehicles linked to an open case are read first (a
    handful) and matched with `plate IN (…)`: the (plate, ts) index of each day then
    finds the reads to keep, where a correlated EXISTS would read the whole day."""
    if dataset == "incidents":
        return exists().where(m.Case.id == m.Incident.case_id, m.Case.status == "open")
    if dataset == "sightings":  # reads of a vehicle linked to an open case
        plates = session.scalars(
            select(m.Vehicle.plate).distinct().where(
                m.VehicleCaseLink.vehicle_id == m.Vehicle.id,
                m.Case.id == m.VehicleCaseLink.case_id,
                m.Case.status == "open",
            )
        ).all()  # fmt: skip
        return m.Sighting.plate.in_(sorted(plates)) if plates else false()
    return None


def _outside(ts, whole: list[partitions.DayPartition], cutoff: datetime):
    """`ts < cutoff` outside the days that go whole, as ranges (the gaps between those
    days), so that the planner reads the DEFAULT partition only, not the days."""
    ranges, lo = [], None
    for p in whole:
        if lo is None or lo < p.start:
            ranges.append(ts < p.start if lo is None else (ts >= lo) & (ts < p.start))
        lo = p.end
    if lo is None:
        return ts < cutoff
    if lo < cutoff:
        ranges.append((ts >= lo) & (ts < cutoff))
    return or_(*ranges) if ranges else false()


def _drop_day(
    session: Session, model, part: partitions.DayPartition, keep, *, versions: bool
) -> tuple[int, int]:
    """Drop one expired day partition, its open-case records moved to the DEFAULT one;
    returns (records purged, records kept).

    The kept rows leave through the parent (its triggers take them out of the counts)
    and come back after the detach, when no day covers them (the triggers count them
    again); the rest of the day goes with the partition, subtracted from the counts
    first, as dropping a table fires no trigger. The day is read once (the counts' one
    grouped pass, whose difference is also its size); the kept rows are found by index.
    """
    conn = session.connection()
    parent, table = model.__tablename__, part.table
    in_day = (model.ts >= part.start) & (model.ts < part.end)
    held = conn.execute(select(model.id).where(in_day, keep)).scalars().all()
    if held:
        conn.exec_driver_sql(f'CREATE TEMP TABLE retention_keep (LIKE "{parent}") ON COMMIT DROP')
        conn.exec_driver_sql(
            f'WITH moved AS (DELETE FROM "{parent}" WHERE ts >= %(lo)s AND ts < %(hi)s '
            "AND id = ANY(%(ids)s) RETURNING *) INSERT INTO retention_keep SELECT * FROM moved",
            {"lo": part.start, "hi": part.end, "ids": list(held)},
        )
    # The day's size is what the counts lose: no second pass over the day to count it.
    counted = text("SELECT coalesce(sum(n), 0) FROM record_counts WHERE dataset = :d")
    before = conn.execute(counted, {"d": parent}).scalar()
    rollup.subtract_relation(conn, parent, f'"{table}"')
    purged = int(before - conn.execute(counted, {"d": parent}).scalar())
    conn.exec_driver_sql(f'ALTER TABLE "{parent}" DETACH PARTITION "{table}"')
    # The history of the day's records goes with them (it holds their content): the
    # versions whose key is in the detached day and nowhere else in the table. Skipped
    # when the dataset has no versions at all: planning the check alone opens every day.
    if versions:
        conn.execute(
            text(
                "DELETE FROM record_versions rv WHERE rv.dataset = :d "
                f'AND EXISTS (SELECT 1 FROM "{table}" x WHERE x.city_code = rv.city_code '
                "AND x.source_id = rv.source_id) "
                f'AND NOT EXISTS (SELECT 1 FROM "{parent}" y WHERE y.city_code = rv.city_code '
                "AND y.source_id = rv.source_id)"
            ),
            {"d": parent},
        )
    conn.exec_driver_sql(f'DROP TABLE "{table}"')
    if held:
        conn.exec_driver_sql(f'INSERT INTO "{parent}" SELECT * FROM retention_keep')
        conn.exec_driver_sql("DROP TABLE retention_keep")
    return purged, len(held)


def _count(session: Session, model, condition) -> int:
    return session.scalar(select(func.count()).select_from(model).where(condition)) or 0


def apply_retention(
    session: Session,
    days: dict[str, int],
    *,
    now: datetime | None = None,
    principal: Principal | None = None,
    dry_run: bool = False,
) -> list[Purge]:
    """Delete expired records of each dataset with a retention period (0 keeps for ever).

    Each dataset's purge is audited (action `retention`, its dataset, the count) in the
    caller's transaction, so records and audit entries go together.
    """
    now = now or datetime.now(UTC)
    out = []
    for dataset, (model, ts) in RETAINED.items():
        n_days = days.get(dataset, 0)
        if n_days <= 0:
            out.append(Purge(dataset, 0, None, 0, 0))
            continue
        cutoff = now - timedelta(days=n_days)
        keep = _linked_to_open_case(session, dataset)
        whole: list[partitions.DayPartition] = []
        partitioned = partitions.is_partitioned(session.connection(), dataset)
        if partitioned:
            cutoff = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
            whole = [p for p in partitions.day_partitions(session.connection(), dataset)
                    if p.end <= cutoff]  # fmt: skip
        # Row by row: everything expired outside the days that go whole (on PostgreSQL
        # what sits in the DEFAULT partition; on SQLite every expired row).
        expired = _outside(ts, whole, cutoff)
        kept = 0 if keep is None else _count(session, model, expired & keep)
        condition = expired if keep is None else expired & ~keep
        victims = _count(session, model, condition)
        row_by_row = victims
        if not dry_run and victims:
            session.execute(
                delete(model).where(condition).execution_options(synchronize_session=False)
            )
        versions = bool(whole) and session.scalar(
            select(exists().where(RecordVersion.dataset == dataset))
        )
        for part in whole:
            if dry_run:
                in_day = (ts >= part.start) & (ts < part.end)
                held = _count(session, model, in_day & keep)
                gone = _count(session, model, in_day) - held
            else:
                gone, held = _drop_day(session, model, part, keep, versions=versions)
            victims, kept = victims + gone, kept + held
        if partitioned and dataset == "sightings" and not dry_run:
            # The plates' days go with the reads (those of the reads kept stay).
            partitions.purge_plate_days(session.connection(), cutoff)
        if not dry_run and row_by_row:
            # The history of purged records is purged with them: it holds their content
            # (a dropped day's went with it, `_drop_day`).
            gone = ~exists(
                select(model.id).where(
                    model.city_code == RecordVersion.city_code,
                    model.source_id == RecordVersion.source_id,
                )
            )
            session.execute(
                delete(RecordVersion).where(RecordVersion.dataset == dataset, gone)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
        dropped = [p.table for p in whole]
        audit.record(
            session, principal, "retention", now=now, username=None if principal else "cli",
            dataset=dataset, result_count=victims, decision="dry_run" if dry_run else "purged",
            query={"days": n_days, "cutoff": cutoff.isoformat()},
            detail={"kept_for_open_cases": kept, **({"partitions_dropped": dropped} if dropped else {})},
        )  # fmt: skip
        out.append(Purge(dataset, n_days, cutoff, victims, kept))
    return out
