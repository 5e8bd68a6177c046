"""Alarm rules, evaluated on every audited action in the same transaction.

Rules (thresholds in settings): a burst of lookups, lookups in off-duty hours, repeated
refusals, one subject looked up by many users, a lookup attempted outside any open
case, any break-glass, a large export. An alarm reaches the auditors and the approvers
of the user's city; closing one needs a note and is itself audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hub.models import Alarm, AuditEntry
from hub.settings import SettingsError

LOOKUP_ACTIONS = ("search", "view")
# Decisions that count as a denial; besides these, every `<action>_refused` entry (the
# service audits each refusal so, with the refusal's code as the decision) counts.
REFUSED = ("refused", "pointer")


@dataclass(frozen=True)
class Thresholds:
    burst_count: int = 30
    burst_minutes: int = 10
    off_hours_start: int = 22  # local hour, inclusive
    off_hours_end: int = 6  # local hour, exclusive
    refusals_count: int = 5
    refusals_minutes: int = 30
    subject_users: int = 3
    subject_hours: int = 24
    export_rows: int = 5000
    timezone: str = "Asia/Shanghai"


def thresholds_from(settings) -> Thresholds:
    """Thresholds with the settings' HUB_ALARM_* overrides; unknown names are refused."""
    known = {f.name for f in fields(Thresholds)} - {"timezone"}
    overrides = dict(settings.alarm_overrides)
    unknown = sorted(set(overrides) - known)
    if unknown:
        names = ", ".join("HUB_ALARM_" + u.upper() for u in unknown)
        raise SettingsError(f"unknown alarm setting {names}; known: {', '.join(sorted(known))}")
    return Thresholds(timezone=settings.timezone, **overrides)


def _thresholds(session: Session) -> Thresholds:
    return session.info.get("alarm_thresholds") or Thresholds()


def _recent(entry: AuditEntry, minutes: float):
    """The user's entries of the last `minutes` (rows, to be counted by `_count_upto`)."""
    since = entry.ts - timedelta(minutes=minutes)
    return select(AuditEntry.seq).where(
        AuditEntry.user_id == entry.user_id, AuditEntry.ts > since, AuditEntry.ts <= entry.ts
    )


def _count_upto(session: Session, rows, cap: int) -> int:
    """How many rows `rows` selects, counting no further than `cap`.

    A rule only asks whether its threshold is reached; counting every entry of a busy
    user's window would make each audited lookup slower the busier its user is (an
    investigator's hundreds of lookups an hour were 1 ms a lookup)."""
    return session.connection().scalar(select(func.count()).select_from(rows.limit(cap).subquery()))


def _dedupe_key(rule: str, entry: AuditEntry, subject: str | None = None) -> str:
    who = "" if rule == "many_users_one_subject" else str(entry.user_id)
    return f"{rule}:{who}:{subject or ''}"[:200]


def _already(
    session: Session, rule: str, entry: AuditEntry, minutes: float, subject: str | None = None
) -> bool:
    """One open alarm per rule, user (and subject) and window: no alarm storm."""
    since = entry.ts - timedelta(minutes=minutes)
    hit = session.connection().scalar(
        select(Alarm.id)
        .where(
            Alarm.dedupe_key == _dedupe_key(rule, entry, subject),
            Alarm.ts > since,
            Alarm.status == "open",
        )
        .limit(1)
    )
    return hit is not None


def _is_refusal(entry: AuditEntry) -> bool:
    return entry.action.endswith("_refused") or entry.decision in REFUSED


def evaluate(session: Session, entry: AuditEntry) -> list[Alarm]:
    """Run every rule on a just-appended entry; returns the alarms raised.

    The rules read only the audit log and the alarms (no records), on the session's
    connection: the ORM's per-statement machinery would cost more than the queries.
    """
    th = _thresholds(session)
    raised: list[tuple[str, str, dict]] = []
    lookup = entry.action in LOOKUP_ACTIONS
    if lookup and entry.user_id is not None:
        n = _count_upto(
            session,
            _recent(entry, th.burst_minutes).where(AuditEntry.action.in_(LOOKUP_ACTIONS)),
            th.burst_count,
        )
        if n >= th.burst_count and not _already(session, "burst", entry, th.burst_minutes):
            raised.append(("burst", "medium", {"lookups": n, "minutes": th.burst_minutes}))
        hour = entry.ts.astimezone(ZoneInfo(th.timezone)).hour
        off = hour >= th.off_hours_start or hour < th.off_hours_end
        if off and not _already(session, "off_hours", entry, 60):
            raised.append(("off_hours", "low", {"local_hour": hour}))
    if _is_refusal(entry) and entry.user_id is not None:
        n = _count_upto(
            session,
            _recent(entry, th.refusals_minutes).where(
                or_(
                    AuditEntry.action.like("%\\_refused", escape="\\"),
                    AuditEntry.decision.in_(REFUSED),
                )
            ),
            th.refusals_count,
        )
        if n >= th.refusals_count and not _already(
            session, "repeated_refusals", entry, th.refusals_minutes
        ):
            raised.append(("repeated_refusals", "medium", {"refusals": n}))
    subject = entry.subject if lookup else None
    if subject:
        since = entry.ts - timedelta(hours=th.subject_hours)
        users = _count_upto(
            session,
            select(AuditEntry.user_id)
            .distinct()
            .where(
                AuditEntry.subject == subject,
                AuditEntry.ts > since,
                AuditEntry.action.in_(LOOKUP_ACTIONS),
            ),
            th.subject_users,
        )
        if users >= th.subject_users and not _already(
            session, "many_users_one_subject", entry, th.subject_hours * 60, subject
        ):
            raised.append(("many_users_one_subject", "medium", {"key": subject, "users": users}))
    if entry.action == "search_refused" and entry.decision == "no_open_case":
        raised.append(("outside_case", "high", {"case_no": entry.case_no}))
    if entry.action == "break_glass":
        raised.append(("break_glass", "high", {"grant_id": entry.grant_id}))
    if entry.action == "export" and (entry.result_count or 0) >= th.export_rows:
        raised.append(("large_export", "medium", {"rows": entry.result_count}))

    alarms = []
    for rule, severity, detail in raised:
        alarm = Alarm(
            ts=entry.ts,
            rule=rule,
            severity=severity,
            user_id=entry.user_id,
            city_code=entry.city_code,
            audit_seq=entry.seq,
            detail=json.dumps(
                {"action": entry.action, "username": entry.username, **detail},
                ensure_ascii=False,
                sort_keys=True,
            ),
            dedupe_key=_dedupe_key(rule, entry, detail.get("key")),
        )
        session.add(alarm)
        alarms.append(alarm)
    if alarms:
        session.flush()
    return alarms
