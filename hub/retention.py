"""Retention: purge records older than their dataset's retention period (settings),
except those linked to an open case, with one audit entry per dataset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from hub import models as m
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


def _linked_to_open_case(dataset: str):
    """SQL condition, never NULL: the record belongs to an open case (and must be kept)."""
    if dataset == "incidents":
        return exists().where(m.Case.id == m.Incident.case_id, m.Case.status == "open")
    if dataset == "sightings":  # reads of a vehicle linked to an open case
        return exists().where(
            m.Vehicle.plate == m.Sighting.plate,
            m.VehicleCaseLink.vehicle_id == m.Vehicle.id,
            m.Case.id == m.VehicleCaseLink.case_id,
            m.Case.status == "open",
        )
    return None


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
        expired = ts < cutoff
        keep = _linked_to_open_case(dataset)
        kept = 0 if keep is None else _count(session, model, expired & keep)
        condition = expired if keep is None else expired & ~keep
        victims = _count(session, model, condition)
        if not dry_run and victims:
            session.execute(
                delete(model).where(condition).execution_options(synchronize_session=False)
            )
        audit.record(
            session, principal, "retention", now=now, username=None if principal else "cli",
            dataset=dataset, result_count=victims, decision="dry_run" if dry_run else "purged",
            query={"days": n_days, "cutoff": cutoff.isoformat()},
            detail={"kept_for_open_cases": kept},
        )  # fmt: skip
        out.append(Purge(dataset, n_days, cutoff, victims, kept))
    return out
