"""What waits on a person, as one feed every page shows (a badge, a toast, a link each).

Kinds: ``request_to_decide`` (an approver's inbox), ``request_decided`` (a decision on
one of my requests), ``operation_invitation`` and ``unit_request`` (to my city's
commanders), ``alert`` (pushed to my city, not acknowledged), ``watch_hit`` (on my
watches, or read in my city for its commanders), ``assist_request`` (an open assistance
request (协查) my city has not answered, to its commanders and investigators). Pending items wait until someone acts
on them; events (decisions, hits) wait until the person marks the feed seen
(`mark_seen`).

A notice carries codes and ids, never prose or record content: the UI translates it,
and opening the item goes through the item's own page (and its access checks and
audit). Each kind is one indexed query bounded by `LIMIT`, so the check a page makes
every few seconds stays cheap however much history there is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.alerts import ALERT_ROLES
from hub.assists import ASSIST_ROLES
from hub.boundary import guard_methods
from hub.models import (
    AccessRequest,
    AlertRecipient,
    AssistRecipient,
    AssistRequest,
    NoticeMark,
    Operation,
    OperationParticipant,
    ResourceRequest,
    Watch,
    WatchHit,
)
from hub.security.access import REQUESTER_ROLES
from hub.security.policy import Principal

if TYPE_CHECKING:
    from hub.service import Hub

KINDS = (
    "request_to_decide",
    "request_decided",
    "operation_invitation",
    "unit_request",
    "alert",
    "watch_hit",
    "assist_request",
)
# Events older than this are not news, even for someone who never marked the feed seen.
EVENT_HORIZON = timedelta(days=7)
LIMIT = 50


@dataclass(frozen=True)
class Notice:
    """One thing waiting on a person.

    `params` holds codes and ids for the UI's sentence (``notice_<kind>``); `target` is
    the deep link: the page key and its query parameters.
    """

    kind: str
    item_id: int
    created_at: datetime
    params: dict[str, str | int] = field(default_factory=dict)
    target: dict[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True)
class NoticeCheck:
    """A page's refresh: what waits (the badge) and what arrived since its last check
    (the toasts)."""

    notices: tuple[Notice, ...]
    new: tuple[Notice, ...]
    checked_at: datetime

    @property
    def count(self) -> int:
        return len(self.notices)


def _seen(session: Session, principal: Principal, now: datetime) -> datetime:
    mark = session.scalar(select(NoticeMark.seen_at).where(NoticeMark.user_id == principal.user_id))
    return max(mark or now - EVENT_HORIZON, now - EVENT_HORIZON)


def _to_decide(session: Session, principal: Principal) -> list[Notice]:
    # The inbox's rule (`hub.security.access.inbox`), without its per-requester history.
    q = select(AccessRequest.id, AccessRequest.created_at, AccessRequest.owner_city,
               AccessRequest.level, AccessRequest.urgent).where(
        AccessRequest.status == "pending", AccessRequest.requester_id != principal.user_id
    )  # fmt: skip
    if principal.role == "province_approver":
        q = q.where(AccessRequest.route == "province_approver")
    elif principal.role == "city_approver":
        q = q.where(
            AccessRequest.route == "city_approver", AccessRequest.owner_city == principal.city_code
        )
    else:
        return []
    rows = session.execute(q.order_by(AccessRequest.created_at.desc()).limit(LIMIT))
    return [
        Notice("request_to_decide", r.id, r.created_at,
               {"city": r.owner_city, "level": r.level, "urgent": int(r.urgent)},
               {"page": "requests", "request": r.id})
        for r in rows
    ]  # fmt: skip


def _decided(session: Session, principal: Principal, seen: datetime) -> list[Notice]:
    if principal.role not in REQUESTER_ROLES:
        return []
    rows = session.execute(
        select(AccessRequest.id, AccessRequest.decided_at, AccessRequest.status,
               AccessRequest.owner_city)
        .where(AccessRequest.requester_id == principal.user_id,
               AccessRequest.status.in_(("approved", "denied")),
               AccessRequest.decided_at > seen)
        .order_by(AccessRequest.decided_at.desc()).limit(LIMIT)
    )  # fmt: skip
    return [
        Notice("request_decided", r.id, r.decided_at, {"status": r.status, "city": r.owner_city},
               {"page": "requests", "request": r.id})
        for r in rows
    ]  # fmt: skip


def _invitations(session: Session, principal: Principal) -> list[Notice]:
    rows = session.execute(
        select(Operation.id, OperationParticipant.invited_at, Operation.lead_city)
        .join(Operation, Operation.id == OperationParticipant.operation_id)
        .where(OperationParticipant.city_code == principal.city_code,
               OperationParticipant.status == "invited", Operation.status == "active")
        .order_by(OperationParticipant.invited_at.desc()).limit(LIMIT)
    )  # fmt: skip
    return [
        Notice("operation_invitation", r.id, r.invited_at, {"city": r.lead_city},
               {"page": "response", "operation": r.id})
        for r in rows
    ]  # fmt: skip


def _unit_requests(session: Session, principal: Principal) -> list[Notice]:
    rows = session.execute(
        select(ResourceRequest.id, ResourceRequest.requested_at, ResourceRequest.operation_id,
               ResourceRequest.requesting_city)
        .where(ResourceRequest.owner_city == principal.city_code,
               ResourceRequest.status == "requested",
               ResourceRequest.requesting_city != principal.city_code)
        .order_by(ResourceRequest.requested_at.desc()).limit(LIMIT)
    )  # fmt: skip
    return [
        Notice("unit_request", r.id, r.requested_at, {"city": r.requesting_city},
               {"page": "response", "operation": r.operation_id, "unit_request": r.id})
        for r in rows
    ]  # fmt: skip


def _alerts(session: Session, principal: Principal) -> list[Notice]:
    rows = session.execute(
        select(AlertRecipient.alert_id, AlertRecipient.pushed_at, AlertRecipient.escalated)
        .where(AlertRecipient.city_code == principal.city_code,
               AlertRecipient.acknowledged_at.is_(None))
        .order_by(AlertRecipient.pushed_at.desc()).limit(LIMIT)
    )  # fmt: skip
    return [
        Notice("alert", r.alert_id, r.pushed_at, {"escalated": int(r.escalated)},
               {"page": "alerts", "alert": r.alert_id})
        for r in rows
    ]  # fmt: skip


def _assists(session: Session, principal: Principal) -> list[Notice]:
    rows = session.execute(
        select(AssistRequest.id, AssistRequest.created_at, AssistRequest.from_city,
               AssistRequest.case_no)
        .join(AssistRecipient, AssistRecipient.assist_id == AssistRequest.id)
        .where(AssistRecipient.city_code == principal.city_code,
               AssistRecipient.status == "pending", AssistRequest.status == "open")
        .order_by(AssistRequest.created_at.desc()).limit(LIMIT)
    )  # fmt: skip
    return [
        Notice("assist_request", r.id, r.created_at, {"city": r.from_city, "case_no": r.case_no},
               {"page": "alerts", "assist": r.id})
        for r in rows
    ]  # fmt: skip


def _hits(session: Session, principal: Principal, seen: datetime) -> list[Notice]:
    """Hits on my watches and, for a commander, hits read in my city: two index range
    reads (by watch, by city) rather than one OR that neither index serves."""
    cols = (WatchHit.id, WatchHit.created_at, WatchHit.watch_id, WatchHit.city_code,
            Watch.case_no, Watch.owner_city, Watch.owner_id)  # fmt: skip
    base = (
        select(*cols).join(Watch, Watch.id == WatchHit.watch_id).where(WatchHit.created_at > seen)
    )
    mine = session.execute(
        base.where(Watch.owner_id == principal.user_id)
        .order_by(WatchHit.created_at.desc()).limit(LIMIT)
    ).all()  # fmt: skip
    found = {r.id: r for r in mine}
    if principal.role == "commander" and principal.city_code:
        city = session.execute(
            base.where(WatchHit.city_code == principal.city_code)
            .order_by(WatchHit.created_at.desc()).limit(LIMIT)
        ).all()  # fmt: skip
        found.update({r.id: r for r in city})
    return [
        Notice("watch_hit", r.id, r.created_at,
               {"watch": r.watch_id, "city": r.city_code, "case_no": r.case_no,
                "from_city": r.owner_city or "", "mine": int(r.owner_id == principal.user_id)},
               {"page": "watch", "hit": r.id})
        for r in found.values()
    ]  # fmt: skip


def notifications(
    session: Session, principal: Principal, *, now: datetime, since: datetime | None = None
) -> list[Notice]:
    """What waits on `principal`, newest first; with `since`, only what arrived after it.

    Parameters
    ----------
    now
        The check's time: events (decisions, hits) count from the person's seen mark,
        and never from longer ago than `EVENT_HORIZON`.
    since
        The previous check's time (a page's toasts); None for all that waits.
    """
    seen = _seen(session, principal, now)
    out = _to_decide(session, principal) + _decided(session, principal, seen)
    if principal.role == "commander" and principal.city_code:
        out += _invitations(session, principal) + _unit_requests(session, principal)
    if principal.role in ALERT_ROLES and principal.city_code:
        out += _alerts(session, principal)
    if principal.role in ASSIST_ROLES and principal.city_code:
        out += _assists(session, principal)
    out += _hits(session, principal, seen)
    if since is not None:
        out = [n for n in out if n.created_at > since]
    return sorted(out, key=lambda n: (n.created_at, n.kind, n.item_id), reverse=True)


def mark_seen(session: Session, principal: Principal, *, now: datetime) -> None:
    """The person has seen their events up to `now`; pending items keep waiting."""
    mark = session.get(NoticeMark, principal.user_id)
    if mark is None:
        session.add(NoticeMark(user_id=principal.user_id, seen_at=now))
    else:
        mark.seen_at = max(mark.seen_at, now)


@guard_methods
class NoticeBoard:
    """The notification feed as pages call it: one transaction per check, refusals audited
    through `Hub._run` (an ended session is refused like any call)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def _session(self, principal: Principal | None = None, **kw):
        return self._hub._session(principal, **kw)

    def check(
        self, principal: Principal, *, since: datetime | None = None, now: datetime | None = None
    ) -> NoticeCheck:
        """The badge's notices and those new since the page's previous check."""
        when = now or datetime.now(UTC)

        def run(session: Session) -> NoticeCheck:
            waiting = notifications(session, principal, now=when)
            new = () if since is None else tuple(n for n in waiting if n.created_at > since)
            return NoticeCheck(tuple(waiting), new, when)

        return self._hub._run(principal, "notices", run, now=now)

    def mark_seen(self, principal: Principal, *, now: datetime | None = None) -> None:
        when = now or datetime.now(UTC)
        self._hub._run(principal, "notices", lambda s: mark_seen(s, principal, now=when), now=now)
