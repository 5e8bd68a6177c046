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
from typing import TypeVar

import pandas as pd
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

import hub.security.backstop  # noqa: F401  (registers the row-filter listener)
from hub import analytics, exports, overview, records, situation, trajectory, transparency
from hub.models import Alarm, AuditEntry, City, Review, User
from hub.security import access, audit, identity
from hub.security.alarms import thresholds_from
from hub.security.crypto import FieldCipher
from hub.security.errors import AccessDenied, HubError, InputError, SignInError, refuse_nul
from hub.security.policy import AGGREGATE_ROLES, AUDIT_ROLES, COUNTS_SECRET, Principal
from hub.security.reasons import Reason
from hub.settings import Settings, load_settings
from hub.store import make_engine, transaction

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


class Hub:
    """Entry point of every page."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.cipher = FieldCipher.from_settings(settings)
        self.thresholds = thresholds_from(settings)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Hub:
        settings = settings or load_settings()
        return cls(make_engine(settings.database_url), settings)

    # --- plumbing -------------------------------------------------------------------

    @contextmanager
    def _session(
        self, principal: Principal | None = None, *, now: datetime | None = None
    ) -> Iterator[Session]:
        with transaction(self.engine) as session:
            session.info["alarm_thresholds"] = self.thresholds
            if principal is not None:
                session.info["grants"] = access.grants_in_force(
                    session, principal, now=now or _now()
                )
                session.info["principal"] = principal
            yield session

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
            raise

    @staticmethod
    def _require(principal: Principal, roles: frozenset[str]) -> None:
        if principal.role not in roles:
            raise AccessDenied("role_not_allowed", "this role cannot do that")

    # --- identity -------------------------------------------------------------------

    def sign_in(self, username: str, password: str, *, now: datetime | None = None) -> Principal:
        """Sign in; failures are committed (lockout counter, audit) before raising."""
        if len(username) > 64 or len(password) > 256:
            raise InputError(
                "too_long", "user name or password too long", field="username", limit=64
            )
        failure: SignInError | None = None
        with self._session() as session:
            try:
                return identity.sign_in(session, username, password, now=now or _now())
            except SignInError as exc:
                failure = exc
        raise failure

    def sign_out(self, principal: Principal, *, idle: bool = False) -> None:
        with self._session() as session:
            identity.sign_out(session, principal, now=_now(), idle=idle)

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
        self._require(principal, AGGREGATE_ROLES)
        with self._session(principal) as session:
            return overview.province_overview(
                session=session, count_secret=principal.role in COUNTS_SECRET
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
                          "case_no": reason.case_no[:32]},
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
        """Hexagon counts, and the map features the viewer may open (audited as a map view)."""
        when = now or _now()

        def view(session: Session) -> situation.Situation:
            self._require(principal, situation.SITUATION_ROLES)
            return situation.situation(
                session, principal, query, now=when, count_secret=principal.role in COUNTS_SECRET
            )

        return self._run(
            principal, "map_view", view, now=now,
            audit_fields={"dataset": "situation", "query": query.as_audit()},
        )  # fmt: skip

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
            lambda s: access.break_glass(s, principal, now=now or _now(), **kw).id,
            now=now, audit_fields={"dataset": "sightings"},
        )  # fmt: skip

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
        with self._session(principal) as session:
            return analytics.overview(
                session, now=now or _now(), count_secret=principal.role in COUNTS_SECRET
            )

    def explore(self, principal: Principal, query: analytics.ExploreQuery) -> analytics.Exploration:
        """The analyst's pivot of a selection: counts only, never a record."""
        self._require(principal, analytics.EXPLORE_ROLES)
        with self._session(principal) as session:
            return analytics.explore(session, query, count_secret=principal.role in COUNTS_SECRET)

    def export_exploration(
        self, principal: Principal, query: analytics.ExploreQuery, fmt: str,
        *, now: datetime | None = None,
    ) -> exports.ExportFile:  # fmt: skip
        """The current selection's pivot as a registered, watermarked file."""
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
        return exports.watermark_key(self.settings.blind_index_key)

    def identify_export(
        self, principal: Principal, data: bytes, filename: str, *, now: datetime | None = None
    ) -> exports.ExportMatch | None:
        """Which registered export a leaked file came from; None: no export matches."""

        def identify(session: Session) -> exports.ExportMatch | None:
            self._require(principal, AUDITOR_ONLY)
            return exports.identify_export(
                session, principal, data, filename, key=self._watermark_key, now=now or _now()
            )

        return self._run(principal, "watermark_identify", identify, now=now,
                         audit_fields={"dataset": "exports"})  # fmt: skip

    def exports_log(self, principal: Principal) -> pd.DataFrame:
        self._require(principal, AUDITOR_ONLY)
        with self._session(principal) as session:
            return exports.exports_log(session)

    def transparency(
        self, principal: Principal, city_code: str, quarter: str
    ) -> transparency.TransparencyReport:
        """The city's report for a quarter, computed from the log itself. Auditors see any
        city; a city's approver only their own."""
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
        self._require(principal, AUDIT_ROLES)
        with self._session(principal) as session:
            result = audit.verify(session)
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
            rows = session.scalars(
                select(Review).where(Review.city_code == principal.city_code, Review.status == status)
                .order_by(Review.created_at.desc())
            ).all()  # fmt: skip
            cols = ["id", "created_at", "kind", "grant_id", "audit_id", "note"]
            return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in rows], columns=cols)

    def close_review(
        self, principal: Principal, review_id: int, note: str, *, now: datetime | None = None
    ) -> None:
        def close(session: Session) -> None:
            self._require(principal, frozenset({"city_approver"}))
            refuse_nul(note, "note")
            review = session.get(Review, review_id)
            if review is None or review.city_code != principal.city_code or review.status != "open":
                raise InputError("unknown_review", f"no open review {review_id}")
            if not note.strip():
                raise InputError("note_required", "closing a review needs a note")
            review.status, review.closed_by, review.closed_at = (
                "closed",
                principal.user_id,
                now or _now(),
            )
            review.close_note = note.strip()[:1000]
            audit.record(session, principal, "review_close", now=now or _now(), dataset="reviews",
                         query={"review_id": review_id}, detail={"kind": review.kind, "note": review.close_note})  # fmt: skip

        self._run(principal, "review_close", close, now=now, audit_fields={"dataset": "reviews"})

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
    # Feeds are run by the platform admin and the provincial department (DESIGN §5). Raw
    # rejected rows are fragments of operational records: the province approver sees
    # them as sent, the admin (who sees no records) with ID numbers and phones masked.

    FEED_ROLES = frozenset({"admin", "province_approver"})

    def feed_specs(self, principal: Principal) -> dict[str, tuple[str, str, str]]:
        """Shipped specs: name -> (dataset, format, description)."""
        from hub.ingest.spec import shipped_specs

        self._require(principal, self.FEED_ROLES)
        return {n: (s.dataset, s.format, s.description) for n, s in shipped_specs().items()}

    def ingest_feed(
        self, principal: Principal, *, city: str, spec_name: str, filename: str, data: bytes,
        progress: Callable[[float, int], None] | None = None,
    ):  # fmt: skip
        """Ingest an uploaded feed file; the batch report (a refusal raises FeedError)."""
        import io

        from hub.ingest.pipeline import ingest
        from hub.ingest.spec import load_spec

        def check(session: Session) -> None:
            self._require(principal, self.FEED_ROLES)

        self._run(principal, "ingest", check, now=None, audit_fields={"dataset": "feeds"})
        spec = load_spec(spec_name.replace("/", "").replace("\\", ""))
        return ingest(
            self.engine, city_code=city, spec=spec, source=io.BytesIO(data),
            source_name=filename[:200], cipher=self.cipher, principal=principal, progress=progress,
        )  # fmt: skip

    def feed_batches(
        self, principal: Principal, *, city: str = "", dataset: str = ""
    ) -> pd.DataFrame:
        from hub import quality

        self._require(principal, self.FEED_ROLES)
        with self._session(principal) as session:
            return quality.batches(session, city=city or None, dataset=dataset or None)

    def quality_scorecard(self, principal: Principal) -> pd.DataFrame:
        from hub import quality

        self._require(principal, self.FEED_ROLES)
        with self._session(principal) as session:
            return quality.scorecard(session, now=_now())

    def _rejects_shown(self, principal: Principal, frame: pd.DataFrame) -> pd.DataFrame:
        from hub.security.masking import mask_text

        if principal.role != "province_approver" and len(frame):
            frame = frame.assign(raw=frame["raw"].map(mask_text))
        return frame

    def feed_rejects(
        self, principal: Principal, batch_id: int, *, limit: int = 1000
    ) -> pd.DataFrame:
        """Rejected rows of a batch with every reason (audited as a view)."""
        from hub import quality

        self._require(principal, self.FEED_ROLES)
        with self._session(principal) as session:
            frame = quality.rejects(session, int(batch_id), limit=limit)
            audit.record(session, principal, "view", now=_now(), dataset="feed_rejects",
                         query={"batch_id": int(batch_id)}, result_count=len(frame))  # fmt: skip
            return self._rejects_shown(principal, frame)

    def reject_file(self, principal: Principal, batch_id: int) -> bytes:
        """Every rejected row of a batch as CSV (audited as an export)."""
        from hub import quality

        self._require(principal, self.FEED_ROLES)
        with self._session(principal) as session:
            frame = self._rejects_shown(
                principal, quality.rejects(session, int(batch_id), limit=1_000_000)
            )
            audit.record(session, principal, "export", now=_now(), dataset="feed_rejects",
                         query={"batch_id": int(batch_id)}, result_count=len(frame))  # fmt: skip
        frame["reasons"] = frame["reasons"].map(
            lambda rs: "; ".join(quality.reason_text(r) for r in rs)
        )
        return frame.to_csv(index=False).encode("utf-8-sig")

    def published_standard(self) -> dict:
        """The standard (JSON Schema of every entity and the code tables): public."""
        from hub.standard import standard

        return standard()
