"""The hub as pages see it: one object, one method per question, sessions inside.

Pages hold a `Hub` (built once per process) and never open sessions, import the
models or SQLAlchemy. Each method runs in its own transaction with the caller's
principal in the session (so the backstop filters every ORM read), and a refused
action is audited in a transaction of its own after the action's was rolled back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

import hub.security.backstop  # noqa: F401  (registers the row-filter listener)

# Exports and transparency (openpyxl), the province overview (demo, boundaries), the anchor,
# the common picture and the feed desk are imported where used: a page pays for what it asks.
from hub import analytics, quality, records, situation, trajectory
from hub.boundary import guard_methods
from hub.models import Alarm, AuditEntry, City, Review, User
from hub.notify import NoticeBoard
from hub.replica import ReadRouter, counts_only
from hub.security import access, audit, identity
from hub.security.alarms import thresholds_from
from hub.security.crypto import FieldCipher
from hub.security.errors import AccessDenied, HubError, InputError, SignInError, refuse_nul
from hub.security.policy import AGGREGATE_ROLES, AUDIT_ROLES, COUNTS_SECRET, Principal
from hub.security.reasons import Reason
from hub.settings import Settings, load_settings
from hub.store import make_engine, transaction
from hub.watch import WatchDesk

if TYPE_CHECKING:
    from hub import exports, overview, transparency
    from hub.cop import CommonPicture
    from hub.feeds import FeedDesk

T = TypeVar("T")
# Leak identification and the export registry are the auditors' (discipline and secrecy).
AUDITOR_ONLY = frozenset({"auditor"})


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AlarmView:
    id: int
    ts: datetime
    rule: str
    severity: str
    username: str | None
    city_code: str | None
    detail: dict
    status: str
    close_note: str | None


@guard_methods
class Hub:
    """Entry point of every page; every public method checks its input and audits its
    refusals through `hub.boundary`."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.reads = ReadRouter.from_settings(engine, settings)  # aggregates: replica or primary
        self.cipher = FieldCipher.from_settings(settings)
        self.thresholds = thresholds_from(settings)
        self.watch = WatchDesk(self)
        self.notices = NoticeBoard(self)

    @cached_property
    def feeds(self) -> FeedDesk:
        from hub.feeds import FeedDesk

        return FeedDesk(self)

    @cached_property
    def cop(self) -> CommonPicture:
        from hub.cop import CommonPicture

        return CommonPicture(self)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Hub:
        settings = settings or load_settings()
        return cls(make_engine(settings.database_url), settings)

    @cached_property
    def live(self):
        """The live path as pages see it (bus up or down, each city's stream freshness):
        no records, so no principal. Made on first use: it reads the bus's credentials."""
        from hub.live import bus
        from hub.live.facade import LiveFacade

        return LiveFacade(bus.hub_endpoint(settings=self.settings), self.engine)

    def dead_letters(self, principal: Principal, *, limit: int = 100) -> list:
        """Messages the stream consumer parked (metadata only), for the feed operators."""
        self._require(principal, quality.FEED_ROLES)
        return self.live.dead_letters(limit=min(limit, 1000))

    # --- plumbing -------------------------------------------------------------------

    @contextmanager
    def _session(
        self, principal: Principal | None = None, *, now: datetime | None = None
    ) -> Iterator[Session]:
        with transaction(self.engine) as session:
            session.info["alarm_thresholds"] = self.thresholds
            if principal is not None:
                when = now or _now()
                # First, in this call's own transaction: is the session still current?
                identity.require_current(session, principal, now=when, settings=self.settings)
                session.info["grants"] = access.grants_in_force(session, principal, now=when)
                session.info["principal"] = principal
            yield session

    def _aggregate(self, principal: Principal, fn: Callable[[Session], T], now=None) -> T:
        """A read-only aggregate (nothing audited): the caller is checked on the primary,
        `fn` runs on the replica when one is fresh, else on the primary (hub/replica.py)."""
        return self.reads.aggregate(self._session(principal, now=now), fn)

    def read_freshness(self) -> float | None:
        """Seconds the replica serving the aggregates lags, when more than
        HUB_REPLICA_LAG_NOTICE_SECONDS (pages say so); None when they are current."""
        return self.reads.shown_lag(self.settings.replica_lag_notice_seconds)

    def _run(
        self,
        principal: Principal,
        action: str,
        fn: Callable[[Session], T],
        *,
        now: datetime | None,
        audit_fields: dict | None = None,
    ) -> T:
        """Run `fn` in one transaction; if it is refused, audit the refusal separately."""
        try:
            with self._session(principal, now=now) as session:
                return fn(session)
        except HubError as exc:
            with self._session() as session:
                fields = dict(audit_fields or {})
                detail = {"code": exc.code, **{k: str(v) for k, v in exc.params.items()}}
                audit.record(
                    session, principal, f"{action}_refused", now=now or _now(),
                    decision=exc.code, detail=detail, **fields,
                )  # fmt: skip
            exc.audited = True
            raise

    @staticmethod
    def _require(principal: Principal, roles: frozenset[str]) -> None:
        if principal.role not in roles:
            raise AccessDenied("role_not_allowed", "this role cannot do that")

    # --- identity -------------------------------------------------------------------

    def sign_in(
        self, username: str, password: str, *, source: str | None = None,
        now: datetime | None = None,
    ) -> Principal:  # fmt: skip
        """Sign in from `source` (the client's address); failures are committed
        (throttle counters, audit) before raising."""
        if len(username) > 64 or len(password) > 256:
            raise InputError(
                "too_long", "user name or password too long", field="username", limit=64
            )
        failure: SignInError | None = None
        with self._session() as session:
            try:
                when = now or _now()
                return identity.sign_in(session, username, password, now=when, source=source)
            except SignInError as exc:
                failure = exc
        raise failure

    def check_session(self, principal: Principal, *, web_session: str | None = None) -> None:
        """Raise `identity.SessionEnded` unless the session is current (the app asks on
        every rerun, so that no cached page outlives the access it was shown under); the
        person is active, so a reload soon after resumes `web_session` (its token)."""
        with transaction(self.engine) as session:
            identity.require_current(session, principal, now=_now(), settings=self.settings)
            if web_session is not None:
                identity.touch_web_session(session, web_session, now=_now())

    def sign_out(
        self, principal: Principal, *, why: str = "ok", web_session: str | None = None
    ) -> None:
        """Audit a sign-out, also of a session that has ended: `why` is ok, idle or
        session_ended; `web_session` (its token) no longer resumes."""
        with self._session() as session:
            identity.sign_out(session, principal, now=_now(), why=why)
            if web_session is not None:
                ended = {"ok": "signed_out", "idle": "idle"}.get(why, "access_changed")
                identity.end_web_session(session, web_session, now=_now(), why=ended)

    def open_web_session(self, principal: Principal) -> str:
        """A session that survives a reload, for a principal just signed in: its one-time
        hand-off code, which the cookie route claims (`claim_web_session`)."""
        with self._session(principal) as session:
            return identity.open_web_session(session, principal, now=_now(),
                                             settings=self.settings)  # fmt: skip

    def claim_web_session(self, code: str) -> str:
        """The cookie token for a fresh hand-off code, once (the cookie route's call)."""
        with self._session() as session:
            return identity.claim_web_session(session, code, now=_now())

    def resume_web_session(self, token: str, *, source: str | None = None) -> Principal:
        """The principal a session cookie resumes (audited as a sign-in); a session that
        ended is refused, its end committed first."""
        failure: HubError | None = None
        with self._session() as session:
            try:
                return identity.resume_web_session(session, token, now=_now(),
                                                   settings=self.settings, source=source)  # fmt: skip
            except HubError as exc:
                failure = exc
        raise failure

    def startup_problems(self) -> list[str]:
        """What stops a production start: demo keys and demo passwords still in use."""
        if not self.settings.is_production:
            return []
        problems = [
            f"{name} is the published demo key" for name in self.settings.demo_defaults_in_use()
        ]
        with self._session() as session:
            users = identity.users_with_demo_password(session)
        if users:
            problems.append("demo password still set for: " + ", ".join(users))
        return problems

    # --- reference data (public) ----------------------------------------------------

    def cities(self) -> dict[str, tuple[str, str]]:
        """adcode -> (Chinese name, English name) of every city."""
        with self._session() as session:
            rows = session.execute(
                select(City.adcode, City.name, City.name_en).order_by(City.adcode)
            )
            return {code: (zh, en) for code, zh, en in rows}

    # --- aggregates -----------------------------------------------------------------

    def province_overview(self, principal: Principal) -> overview.ProvinceOverview:
        from hub import overview

        self._require(principal, AGGREGATE_ROLES)
        secret = principal.role in COUNTS_SECRET
        return self._aggregate(
            principal, lambda s: overview.province_overview(session=s, count_secret=secret)
        )

    # --- records --------------------------------------------------------------------

    def _lookup(
        self,
        principal: Principal,
        service: Callable[..., T],
        *args: object,
        reason: Reason,
        dataset: str,
        shown: dict,
        now: datetime | None,
        action: str = "search",
        **kw: object,
    ) -> T:
        """Run a `records`-style service with the session's grants, the cipher and the
        time; a refusal is audited with `shown` as its query (never a raw identifier)."""
        return self._run(
            principal, action,
            lambda s: service(
                s, principal, *args, reason=reason, grants=s.info["grants"], cipher=self.cipher,
                now=now or _now(), **kw,
            ),
            now=now,
            audit_fields={"dataset": dataset, "query": shown, "purpose": reason.purpose[:32],
                          "case_no": reason.reference[:32]},
        )  # fmt: skip

    def search_plate(
        self, principal: Principal, plate: str, reason: Reason, *, now: datetime | None = None
    ) -> records.LookupResult:
        return self._lookup(
            principal, records.search_plate, plate, reason=reason, dataset="sightings",
            shown={"kind": "plate", "value": plate[:64]}, now=now,
        )  # fmt: skip

    def search_person(
        self,
        principal: Principal,
        kind: str,
        value: str,
        reason: Reason,
        *,
        now: datetime | None = None,
    ) -> records.LookupResult:
        # The refusal's audit never stores a raw ID number or phone typed by the user.
        shown = value[:64] if kind == "name" else "(withheld)"
        return self._lookup(
            principal, records.search_person, kind, value, reason=reason, dataset="persons",
            shown={"kind": kind[:16], "value": shown}, now=now,
        )  # fmt: skip

    def search_case(
        self, principal: Principal, value: str, reason: Reason, *, now: datetime | None = None
    ) -> records.LookupResult:
        return self._lookup(
            principal, records.search_case, value, reason=reason, dataset="cases",
            shown={"kind": "case", "value": value[:64]}, now=now,
        )  # fmt: skip

    def search_text(
        self, principal: Principal, value: str, reason: Reason, *, now: datetime | None = None
    ) -> records.LookupResult:
        return self._lookup(
            principal, records.search_text, value, reason=reason, dataset="incidents",
            shown={"kind": "text", "value": "(withheld)"}, now=now,
        )  # fmt: skip

    def view_record(
        self,
        principal: Principal,
        dataset: str,
        record_id: int,
        reason: Reason,
        *,
        now: datetime | None = None,
    ) -> records.RecordView:
        return self._lookup(
            principal, records.view_record, dataset, record_id, reason=reason, action="view",
            dataset=dataset[:32], shown={"kind": "record", "value": str(record_id)[:20]}, now=now,
        )  # fmt: skip

    # --- the situation map ------------------------------------------------------------

    def situation(
        self, principal: Principal, query: situation.SituationQuery, *, now: datetime | None = None
    ) -> situation.Situation:
        """Hexagon counts, and the map features the viewer may open (audited as a map view).
        Counts alone (no feature asked for) open nothing: an aggregate, for the replica."""
        when = now or _now()

        def view(session: Session) -> situation.Situation:
            self._require(principal, situation.SITUATION_ROLES)
            return situation.situation(
                session, principal, query, now=when, count_secret=principal.role in COUNTS_SECRET
            )

        if counts_only(query):
            return self._aggregate(principal, view, now=now)
        return self._run(
            principal, "map_view", view, now=now,
            audit_fields={"dataset": "situation", "query": query.as_audit()},
        )  # fmt: skip

    # --- joint response, alerts and assists ------------------------------------------
    # Services in hub.response, hub.alerts, hub.assists and hub.exercise; each method is
    # one transaction with the caller's principal, and a refusal is audited.

    def _act(self, principal: Principal, action: str, dataset: str, fn, now=None, **fields):
        when = now or _now()
        return self._run(
            principal, action, lambda s: fn(s, when), now=now,
            audit_fields={"dataset": dataset, **fields},
        )  # fmt: skip

    def operations(self, principal: Principal, *, include_closed: bool = False) -> pd.DataFrame:
        """Operations the viewer's city leads or was invited to."""
        from hub import response

        with self._session(principal) as session:
            return response.my_operations(session, principal, include_closed=include_closed)

    def create_operation(self, principal: Principal, *, now: datetime | None = None, **kw) -> int:
        from hub import response

        return self._act(principal, "operation_create", "operations",
                         lambda s, t: response.create_operation(s, principal, now=t, **kw), now)  # fmt: skip

    def invite_city(
        self, principal: Principal, operation_id: int, city: str, *, now: datetime | None = None
    ) -> None:
        from hub import response

        self._act(principal, "operation_invite", "operations",
                  lambda s, t: response.invite_city(s, principal, operation_id, city, now=t), now,
                  query={"operation_id": operation_id})  # fmt: skip

    def respond_invitation(
        self, principal: Principal, operation_id: int, *, accept: bool, now: datetime | None = None
    ) -> str:
        from hub import response

        return self._act(principal, "operation_respond", "operations",
                         lambda s, t: response.respond_invitation(s, principal, operation_id, accept=accept, now=t),
                         now, query={"operation_id": operation_id})  # fmt: skip

    def close_operation(
        self, principal: Principal, operation_id: int, *, now: datetime | None = None
    ) -> None:
        from hub import response

        self._act(principal, "operation_close", "operations",
                  lambda s, t: response.close_operation(s, principal, operation_id, now=t), now,
                  query={"operation_id": operation_id})  # fmt: skip

    def operation_board(
        self, principal: Principal, operation_id: int, *, now: datetime | None = None
    ):
        """The live board of one operation (audited as a map view)."""
        from hub import response

        return self._act(principal, "map_view", "operations",
                         lambda s, t: response.board(s, principal, operation_id, now=t), now,
                         query={"operation_id": operation_id})  # fmt: skip

    def request_unit(
        self, principal: Principal, operation_id: int, unit_id: int, *, note: str | None = None,
        now: datetime | None = None,
    ) -> int:  # fmt: skip
        from hub import response

        return self._act(principal, "unit_request", "operations",
                         lambda s, t: response.request_unit(s, principal, operation_id, unit_id, note=note, now=t),
                         now, query={"operation_id": operation_id, "unit_id": unit_id})  # fmt: skip

    def dispatch_unit(
        self, principal: Principal, operation_id: int, unit_id: int, *, now: datetime | None = None
    ) -> int:
        from hub import response

        return self._act(principal, "unit_dispatch", "operations",
                         lambda s, t: response.dispatch_unit(s, principal, operation_id, unit_id, now=t),
                         now, query={"operation_id": operation_id, "unit_id": unit_id})  # fmt: skip

    def act_on_request(
        self, principal: Principal, request_id: int, new: str, *, now: datetime | None = None
    ) -> str:
        from hub import response

        return self._act(principal, "unit_request_step", "operations",
                         lambda s, t: response.act_on_request(s, principal, request_id, new, now=t),
                         now, query={"request_id": request_id, "new": new[:16]})  # fmt: skip

    def set_unit_status(
        self, principal: Principal, unit_id: int, status: str, *, now: datetime | None = None
    ) -> None:
        from hub import response

        self._act(principal, "unit_status", "units",
                  lambda s, t: response.set_unit_status(s, principal, unit_id, status, now=t), now,
                  query={"unit_id": unit_id, "status": status[:16]})  # fmt: skip

    def add_timeline_entry(
        self, principal: Principal, operation_id: int, text: str, *, significant: bool = False,
        now: datetime | None = None,
    ) -> int:  # fmt: skip
        from hub import response

        return self._act(principal, "timeline_entry", "operations",
                         lambda s, t: response.add_entry(s, principal, operation_id, text, significant=significant, now=t),
                         now, query={"operation_id": operation_id})  # fmt: skip

    def operation_briefing(
        self, principal: Principal, operation_id: int, city_names: dict[str, str],
        *, now: datetime | None = None,
    ) -> dict:  # fmt: skip
        """The ICS-201-style briefing of an operation (audited as an export)."""
        from hub import response

        def brief(session: Session, when: datetime) -> dict:
            b = response.board(session, principal, operation_id, now=when)
            audit.record(session, principal, "export", now=when, dataset="operations",
                         query={"kind": "briefing", "value": str(operation_id)},
                         result_count=len(b.units) + len(b.requests), decision="ok")  # fmt: skip
            return response.briefing(b, city_names)

        return self._act(principal, "export", "operations", brief, now,
                         query={"operation_id": operation_id})  # fmt: skip

    def share_incident(
        self, principal: Principal, incident_id: int, reason: Reason, *, now: datetime | None = None
    ) -> dict:
        """An incident as EIDO-like JSON, if the viewer may open it (audited export)."""
        from hub import response

        return self._lookup(
            principal, response.incident_eido, incident_id, reason=reason, dataset="incidents",
            shown={"kind": "eido", "value": str(incident_id)[:20]}, now=now, action="export",
        )  # fmt: skip

    def import_incident(
        self, principal: Principal, eido: dict, *, now: datetime | None = None
    ) -> tuple[int, bool]:
        from hub import response

        return self._act(principal, "import", "incidents",
                         lambda s, t: response.import_eido(s, principal, eido, now=t, cipher=self.cipher), now)  # fmt: skip

    def alerts(
        self, principal: Principal, *, days: int = 7, include_acknowledged: bool = True,
        now: datetime | None = None,
    ) -> pd.DataFrame:  # fmt: skip
        """Alerts pushed to the viewer's city (audited)."""
        from hub import alerts

        return self._act(principal, "search", "alerts",
                         lambda s, t: alerts.alerts_for(s, principal, now=t, days=days,
                                                        include_acknowledged=include_acknowledged), now)  # fmt: skip

    def alert_recipients(self, principal: Principal, alert_id: int) -> pd.DataFrame:
        from hub import alerts

        return self._act(principal, "view", "alerts",
                         lambda s, t: alerts.recipients(s, principal, alert_id))  # fmt: skip

    def raise_alert(
        self, principal: Principal, *, now: datetime | None = None, **kw
    ) -> tuple[int, list[str]]:
        from hub import alerts

        return self._act(principal, "alert_raise", "alerts",
                         lambda s, t: alerts.raise_alert(s, principal, now=t, **kw), now)  # fmt: skip

    def acknowledge_alert(
        self, principal: Principal, alert_id: int, *, now: datetime | None = None
    ) -> None:
        from hub import alerts

        self._act(principal, "alert_ack", "alerts",
                  lambda s, t: alerts.acknowledge(s, principal, alert_id, now=t), now,
                  query={"alert_id": alert_id})  # fmt: skip

    def alert_cap(
        self, principal: Principal, alert_id: int, *, now: datetime | None = None
    ) -> dict:
        from hub import alerts

        return self._act(principal, "export", "alerts",
                         lambda s, t: alerts.alert_cap(s, principal, alert_id, now=t), now,
                         query={"alert_id": alert_id})  # fmt: skip

    def escalated_alerts(self, principal: Principal) -> pd.DataFrame:
        """Escalated pushes nobody acknowledged, of alerts the viewer may open (the
        overview's roles only)."""
        from hub import alerts

        self._require(principal, analytics.OVERVIEW_ROLES)
        with self._session(principal) as session:
            return alerts.escalated(session, principal)

    def scan_alerts(self, *, now: datetime | None = None, **kw):
        """Run the hotspot scan as the system (CLI and the app's periodic scan)."""
        from hub import alerts

        with self._session() as session:
            return alerts.scan(session, now=now or _now(), **kw)

    def alert_upkeep(self, *, scan_every: timedelta = timedelta(minutes=15)) -> None:
        """What the live alert pages do on refresh: escalate overdue pushes, and scan
        when the last scan is older than `scan_every`."""
        from hub import alerts

        now = _now()
        with self._session() as session:
            last = session.scalar(
                select(func.max(AuditEntry.ts)).where(AuditEntry.action == "alert_scan")
            )
            after = timedelta(minutes=self.settings.alert_escalate_minutes)
            if last is None or now - last >= scan_every:
                alerts.scan(session, now=now, escalate_after=after)
            else:
                alerts.escalate_overdue(session, now=now, after=after)

    def assists(self, principal: Principal, *, now: datetime | None = None) -> pd.DataFrame:
        """Assistance requests the viewer's city sent and received (audited)."""
        from hub import assists

        return self._act(principal, "search", "assists",
                         lambda s, t: assists.assists_for(s, principal, now=t), now)  # fmt: skip

    def create_assist(self, principal: Principal, *, now: datetime | None = None, **kw) -> int:
        from hub import assists

        return self._act(principal, "assist_create", "assists",
                         lambda s, t: assists.create_assist(s, principal, now=t, **kw), now)  # fmt: skip

    def respond_assist(
        self, principal: Principal, assist_id: int, response: str, *, decline: bool = False,
        now: datetime | None = None,
    ) -> None:  # fmt: skip
        from hub import assists

        self._act(principal, "assist_respond", "assists",
                  lambda s, t: assists.respond(s, principal, assist_id, response, decline=decline, now=t),
                  now, query={"assist_id": assist_id})  # fmt: skip

    def close_assist(
        self, principal: Principal, assist_id: int, *, now: datetime | None = None
    ) -> None:
        from hub import assists

        self._act(principal, "assist_close", "assists",
                  lambda s, t: assists.close_assist(s, principal, assist_id, now=t), now,
                  query={"assist_id": assist_id})  # fmt: skip

    def assist_timeline(self, principal: Principal, assist_id: int) -> pd.DataFrame:
        from hub import assists

        return self._act(principal, "view", "assists",
                         lambda s, t: assists.assist_timeline(s, principal, assist_id))  # fmt: skip

    def assist_subject(
        self, principal: Principal, assist_id: int, reason: Reason, *, now: datetime | None = None
    ) -> records.RecordView:
        """The subject of an assist, through grades, grants, masks and pointers."""
        from hub import assists

        return self._lookup(
            principal, assists.subject_details, assist_id, reason=reason, dataset="assists",
            shown={"kind": "assist", "value": str(assist_id)[:20]}, now=now, action="view",
        )  # fmt: skip

    def exercises(self) -> dict[str, tuple[str, str]]:
        """Shipped exercise scenarios: name -> (title, English title)."""
        from hub import exercise

        out = {}
        for name in exercise.scenario_names():
            s = exercise.load_scenario(name)
            out[name] = (s.title, s.title_en)
        return out

    def start_exercise(
        self, principal: Principal, name: str, *, speed: float = 1.0, now: datetime | None = None
    ) -> int:
        from hub import exercise

        return self._act(principal, "exercise_start", "exercises",
                         lambda s, t: exercise.start(s, principal, name, speed=speed, now=t), now,
                         query={"name": name[:64]})  # fmt: skip

    def exercise_tick(self, *, now: datetime | None = None) -> list[str]:
        """Apply the due injects of every running exercise (called on live refresh)."""
        from hub import exercise

        with self._session() as session:
            return exercise.advance_all(session, now=now or _now())

    def running_exercises(self) -> list[dict]:
        from hub import exercise

        with self._session() as session:
            return exercise.running(session)

    # --- requests and grants --------------------------------------------------------

    def request_access(self, principal: Principal, *, now: datetime | None = None, **kw) -> int:
        return self._run(
            principal, "request",
            lambda s: access.request_access(s, principal, now=now or _now(), cipher=self.cipher, **kw).id,
            now=now, audit_fields={"dataset": "access_requests"},
        )  # fmt: skip

    def decide_request(
        self,
        approver: Principal,
        request_id: int,
        *,
        approve: bool,
        note: str,
        now: datetime | None = None,
    ) -> str:
        return self._run(
            approver, "decide",
            lambda s: access.decide_request(s, approver, request_id, approve=approve, note=note, now=now or _now()).status,
            now=now, audit_fields={"dataset": "access_requests", "query": {"request_id": request_id}},
        )  # fmt: skip

    def break_glass(self, principal: Principal, *, now: datetime | None = None, **kw) -> int:
        return self._run(
            principal, "break_glass",
            lambda s: access.break_glass(s, principal, now=now or _now(),
                                         daily_cap=self.settings.break_glass_daily_cap, **kw).id,
            now=now, audit_fields={"dataset": "sightings"},
        )  # fmt: skip

    def revoke_grant(
        self, principal: Principal, grant_id: int, note: str, *, now: datetime | None = None
    ) -> None:
        """An approver of the owning city (or a province approver, for secret grants)
        revokes a grant in force at once; audited as `grant_revoke`."""
        self._run(principal, "grant_revoke",
                  lambda s: access.revoke_grant(s, principal, grant_id, note=note, now=now or _now()),
                  now=now, audit_fields={"dataset": "grants", "grant_id": grant_id})  # fmt: skip

    def my_requests(self, principal: Principal) -> list[access.RequestView]:
        with self._session(principal) as session:
            return access.my_requests(session, principal)

    def inbox(self, approver: Principal) -> list[access.RequestView]:
        with self._session(approver) as session:
            return access.inbox(session, approver)

    def grants(self, principal: Principal) -> list:
        with self._session(principal) as session:
            return list(session.info["grants"])

    # --- overview, explore, exports and transparency -----------------------------------

    def overview(self, principal: Principal, *, now: datetime | None = None) -> analytics.Overview:
        """Leadership KPIs and 30-day charts (aggregates only; nothing to audit)."""
        self._require(principal, analytics.OVERVIEW_ROLES)
        when, secret = now or _now(), principal.role in COUNTS_SECRET
        return self._aggregate(
            principal, lambda s: analytics.overview(s, now=when, count_secret=secret), now=now
        )

    def explore(self, principal: Principal, query: analytics.ExploreQuery) -> analytics.Exploration:
        """The analyst's pivot of a selection: counts only, never a record."""
        self._require(principal, analytics.EXPLORE_ROLES)
        secret = principal.role in COUNTS_SECRET
        return self._aggregate(
            principal, lambda s: analytics.explore(s, query, count_secret=secret)
        )

    def export_exploration(
        self, principal: Principal, query: analytics.ExploreQuery, fmt: str,
        *, now: datetime | None = None,
    ) -> exports.ExportFile:  # fmt: skip
        """The current selection's pivot as a registered, watermarked file."""
        from hub import exports

        when = now or _now()

        def export(session: Session) -> exports.ExportFile:
            self._require(principal, analytics.EXPLORE_ROLES)
            found = analytics.explore(session, query, count_secret=principal.role in COUNTS_SECRET)
            return exports.register_export(
                session, principal, analytics.labelled(session, found), dataset="incident_counts",
                query=query.as_audit(), fmt=fmt, now=when, key=self._watermark_key,
            )  # fmt: skip

        return self._run(principal, "export", export, now=now,
                         audit_fields={"dataset": "incident_counts", "query": query.as_audit()})  # fmt: skip

    @property
    def _watermark_key(self) -> bytes:
        from hub import exports

        return exports.watermark_key(self.settings.blind_index_key)

    def identify_export(
        self, principal: Principal, data: bytes, filename: str, *, now: datetime | None = None
    ) -> exports.ExportMatch | None:
        """Which registered export a leaked file came from; None: no export matches."""
        from hub import exports

        def identify(session: Session) -> exports.ExportMatch | None:
            self._require(principal, AUDITOR_ONLY)
            return exports.identify_export(
                session, principal, data, filename, key=self._watermark_key, now=now or _now()
            )

        return self._run(principal, "watermark_identify", identify, now=now,
                         audit_fields={"dataset": "exports"})  # fmt: skip

    def exports_log(self, principal: Principal) -> pd.DataFrame:
        from hub import exports

        self._require(principal, AUDITOR_ONLY)
        with self._session(principal) as session:
            return exports.exports_log(session)

    def transparency(
        self, principal: Principal, city_code: str, quarter: str
    ) -> transparency.TransparencyReport:
        """The city's report for a quarter, computed from the log itself. Auditors see any
        city; a city's approver only their own."""
        from hub import transparency

        self._require(principal, AUDIT_ROLES)
        if principal.role == "city_approver" and city_code != principal.city_code:
            raise AccessDenied("other_city", "approvers see their own city's report")
        try:
            start, end = transparency.quarter_bounds(quarter)
        except ValueError:
            raise InputError("bad_filter", "quarter is like 2026Q4", value=quarter[:10]) from None
        with self._session(principal) as session:
            # Requests filed up to 90 days before the quarter, so that decisions made in
            # it are timed.
            cols = [getattr(AuditEntry, c) for c in transparency.ENTRY_COLUMNS]
            rows = session.execute(
                select(*cols).where(
                    AuditEntry.ts < end,
                    or_(AuditEntry.ts >= start,
                        (AuditEntry.action == "request") & (AuditEntry.ts >= start - timedelta(days=90))),
                )
            ).all()  # fmt: skip
            entries = pd.DataFrame(rows, columns=list(transparency.ENTRY_COLUMNS))
            alarm_rows = session.execute(
                select(Alarm.ts, Alarm.rule, Alarm.city_code, Alarm.closed_at)
                .where(Alarm.ts < end, or_(Alarm.ts >= start, Alarm.closed_at >= start))
            ).all()  # fmt: skip
            alarms = pd.DataFrame(alarm_rows, columns=list(transparency.ALARM_COLUMNS))
            audit.record(session, principal, "transparency_report", now=_now(),
                         dataset="audit_log", query={"kind": "report", "value": f"{city_code}/{quarter}"},
                         result_count=len(entries))  # fmt: skip
            return transparency.transparency_report(entries, city_code, quarter, alarms=alarms)

    # --- audit and alarms -----------------------------------------------------------

    def alarms(self, principal: Principal, *, status: str | None = "open") -> list[AlarmView]:
        """Auditors see every alarm; approvers those about users of their city."""
        self._require(principal, AUDIT_ROLES)
        with self._session(principal) as session:
            q = select(Alarm, User.username).outerjoin(User, User.id == Alarm.user_id)
            if principal.role == "city_approver":
                q = q.where(Alarm.city_code == principal.city_code)
            if status:
                q = q.where(Alarm.status == status)
            rows = session.execute(q.order_by(Alarm.ts.desc()).limit(500)).all()
            return [
                AlarmView(a.id, a.ts, a.rule, a.severity, name, a.city_code, json.loads(a.detail), a.status, a.close_note)
                for a, name in rows
            ]  # fmt: skip

    def close_alarm(
        self, principal: Principal, alarm_id: int, note: str, *, now: datetime | None = None
    ) -> None:
        def close(session: Session) -> None:
            self._require(principal, AUDIT_ROLES)
            alarm = session.get(Alarm, alarm_id)
            if alarm is None or (
                principal.role == "city_approver" and alarm.city_code != principal.city_code
            ):
                raise InputError("unknown_alarm", f"no alarm {alarm_id}")
            if alarm.status == "closed":
                raise InputError("alarm_closed", "the alarm is already closed")
            refuse_nul(note, "note")
            if not note.strip():
                raise InputError("note_required", "closing an alarm needs a note")
            if len(note) > 1000:
                raise InputError("too_long", "note too long", field="note", limit=1000)
            alarm.status, alarm.closed_by, alarm.closed_at = (
                "closed",
                principal.user_id,
                now or _now(),
            )
            alarm.close_note = note.strip()
            audit.record(session, principal, "alarm_close", now=now or _now(), dataset="alarms",
                         query={"alarm_id": alarm_id}, detail={"rule": alarm.rule, "note": note.strip()})  # fmt: skip

        self._run(principal, "alarm_close", close, now=now, audit_fields={"dataset": "alarms"})

    def audit_log(
        self, principal: Principal, *, username: str = "", action: str = "", city: str = "",
        since: datetime | None = None, until: datetime | None = None, subject: str = "",
        limit: int = 500,
    ) -> pd.DataFrame:  # fmt: skip
        """Search the log. Approvers of a city see entries by its users or touching its records."""
        self._require(principal, AUDIT_ROLES)
        if not 1 <= limit <= 5000:  # SQLite reads a negative LIMIT as none at all
            raise InputError("out_of_range", "limit must be 1 to 5000", field="limit")
        with self._session(principal) as session:
            q = select(AuditEntry)
            if principal.role == "city_approver":
                mine = principal.city_code or ""
                q = q.where(
                    or_(AuditEntry.city_code == mine, AuditEntry.owner_cities.contains(mine))
                )
            if username:
                q = q.where(AuditEntry.username == username[:64])
            if action:
                q = q.where(AuditEntry.action == action[:32])
            if city:
                q = q.where(AuditEntry.city_code == city[:6])
            if subject:  # "plate:皖A…", "record:persons:12", or any part of one
                q = q.where(AuditEntry.subject.contains(subject[:64], autoescape=True))
            if since:
                q = q.where(AuditEntry.ts >= since)
            if until:
                q = q.where(AuditEntry.ts < until)
            rows = session.scalars(q.order_by(AuditEntry.seq.desc()).limit(limit)).all()
            audit.record(session, principal, "audit_search", now=_now(), dataset="audit_log",
                         query={"username": username, "action": action, "city": city, "subject": subject[:64]},
                         result_count=len(rows))  # fmt: skip
            cols = ["seq", "ts", "username", "role", "city_code", "action", "dataset", "subject",
                    "purpose", "case_no", "result_count", "owner_cities", "decision", "grant_id"]  # fmt: skip
            return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in rows], columns=cols)

    def verify_audit_chain(self, principal: Principal) -> audit.Verification:
        from hub.security import anchor

        self._require(principal, AUDIT_ROLES)
        with self._session(principal) as session:
            result = anchor.verify(session, self.settings)
            audit.record(session, principal, "audit_verify", now=_now(), dataset="audit_log",
                         decision="ok" if result.ok else "broken", result_count=result.checked)  # fmt: skip
            return result

    def owner_view(self, principal: Principal, *, days: int = 30) -> pd.DataFrame:
        """Every access by other cities' users to this approver's city's records."""
        self._require(principal, frozenset({"city_approver"}))
        city = principal.city_code or ""
        with self._session(principal) as session:
            since = _now() - timedelta(days=days)
            rows = session.scalars(
                select(AuditEntry).where(
                    AuditEntry.owner_cities.contains(city),
                    AuditEntry.city_code != city,
                    AuditEntry.ts >= since,
                    AuditEntry.action.in_(("search", "view", "break_glass", "export")),
                ).order_by(AuditEntry.seq.desc()).limit(1000)
            ).all()  # fmt: skip
            cols = [
                "seq",
                "ts",
                "username",
                "city_code",
                "action",
                "purpose",
                "case_no",
                "result_count",
                "grant_id",
            ]
            return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in rows], columns=cols)

    def flag_access(
        self, principal: Principal, seq: int, note: str, *, now: datetime | None = None
    ) -> int:
        """A city approver flags another city's access to our records for review."""

        def flag(session: Session) -> int:
            self._require(principal, frozenset({"city_approver"}))
            refuse_nul(note, "note")
            if not note.strip():
                raise InputError("note_required", "flagging needs a note")
            entry = session.scalar(select(AuditEntry).where(AuditEntry.seq == seq))
            city = principal.city_code or ""
            if (
                entry is None
                or city not in (entry.owner_cities or "").split(",")
                or entry.city_code == city
            ):
                raise InputError("unknown_access", f"no access to our records with seq {seq}")
            review = Review(city_code=city, kind="flagged", audit_id=entry.seq, created_by=principal.user_id,
                            note=note.strip()[:1000], created_at=now or _now())  # fmt: skip
            session.add(review)
            session.flush()
            audit.record(session, principal, "flag_access", now=now or _now(), dataset="audit_log",
                         query={"seq": seq}, detail={"review_id": review.id, "note": note.strip()[:1000]})  # fmt: skip
            return review.id

        return self._run(
            principal, "flag_access", flag, now=now, audit_fields={"dataset": "audit_log"}
        )

    def reviews(self, principal: Principal, *, status: str = "open") -> pd.DataFrame:
        """Reviews owed by this approver's city: break-glass uses and flagged accesses."""
        self._require(principal, frozenset({"city_approver"}))
        with self._session(principal) as session:
            rows = access.reviews(session, principal, status=status)
            return pd.DataFrame(rows, columns=list(access.REVIEW_COLUMNS))

    def close_review(
        self, principal: Principal, review_id: int, note: str, *, outcome: str = "accept",
        now: datetime | None = None,
    ) -> None:  # fmt: skip
        """Close a review: `outcome` "accept", or "reject" (revokes a break-glass grant)."""
        self._run(principal, "review_close",
                  lambda s: access.close_review(s, principal, review_id, note=note, outcome=outcome, now=now or _now()),
                  now=now, audit_fields={"dataset": "reviews"})  # fmt: skip

    def audit_count(self) -> int:
        with self._session() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0

    def plate_trajectory(
        self,
        principal: Principal,
        plate: str,
        start: datetime,
        end: datetime,
        reason: Reason,
        *,
        now: datetime | None = None,
    ) -> trajectory.Trajectory:
        """One plate's visible sightings in a window as a path; hidden ones as pointers."""
        return self._lookup(
            principal, trajectory.plate_trajectory, plate, reason=reason, dataset="sightings",
            shown={"kind": "plate", "value": plate[:64]}, now=now, start=start, end=end,
        )  # fmt: skip

    # --- feeds and quality ------------------------------------------------------------
    # Feeds are run by the roles in `quality.FEED_ROLES`. Rejected rows are fragments of
    # records, stored encrypted: the province approver sees them masked, the admin (who
    # opens no records) only line numbers and reasons (`quality.REJECT_VIEWS`).

    FEED_ROLES = quality.FEED_ROLES

    # The feed questions live in `hub.feeds.FeedDesk` (``self.feeds``); these delegates
    # keep the pages' older calls working.

    def feed_specs(self, principal: Principal) -> dict[str, tuple[str, str, str]]:
        return self.feeds.specs(principal)

    def ingest_feed(self, principal: Principal, **kw):
        return self.feeds.ingest(principal, **kw)

    def feed_batches(self, principal: Principal, *, city: str = "", dataset: str = ""):
        return self.feeds.batches(principal, city=city, dataset=dataset)

    def quality_scorecard(self, principal: Principal) -> pd.DataFrame:
        """One row per feed (city × dataset × spec): an aggregate of batch metadata."""
        self._require(principal, quality.FEED_ROLES)
        return self._aggregate(principal, lambda s: quality.scorecard(s, now=_now()))

    def feed_rejects(self, principal: Principal, batch_id: int, *, limit: int = 1000):
        return self.feeds.rejects(principal, batch_id, limit=limit)

    def reject_file(self, principal: Principal, batch_id: int) -> bytes:
        return self.feeds.reject_file(principal, batch_id)

    def published_standard(self) -> dict:
        """The standard (JSON Schema of every entity and the code tables): public."""
        from hub.standard import standard

        return standard()
