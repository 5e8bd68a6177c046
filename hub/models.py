"""The provincial data standard as SQLAlchemy 2.0 typed models.

Every shared record carries the owning city (`city_code`, GB/T 2260 adcode, the
distribution key), its district where it has one, a classification, the feed batch it
came from, a natural key `(city_code, source_id)` that makes re-ingesting idempotent,
UTC timestamps and WGS84 coordinates. Personal identifiers are stored SM4-encrypted
with a keyed blind index for equality search (see `hub.security.crypto`).

Pages never import this module; they call hub services.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

from hub.codes import CLASSIFICATIONS

# Stable constraint names, so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only aliases INTEGER PRIMARY KEY to its rowid; BIGINT would lose autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# The text form SQLAlchemy's SQLite dialect stores DATETIME in; the bulk loader writes
# the same so that range comparisons agree with ORM-written rows.
SQLITE_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always returned timezone-aware (UTC).

    PostgreSQL keeps `timestamptz`; SQLite has no zone type, so values are stored as
    naive UTC text and the zone is re-attached on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: timestamps must carry a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL paths on SQLite
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


_CLASS_CHECK = "classification IN (" + ", ".join(f"'{c}'" for c in CLASSIFICATIONS) + ")"


class Record:
    """Columns every shared record carries (the standard's envelope)."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_id: Mapped[str] = mapped_column(String(64))
    classification: Mapped[str] = mapped_column(String(10), default="internal")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @declared_attr
    def city_code(cls) -> Mapped[str]:
        # No index of its own: the unique (city_code, source_id) index serves it.
        return mapped_column(String(6), ForeignKey("cities.adcode"))

    @declared_attr
    def source_batch_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("feed_batches.id"), nullable=True)

    @declared_attr.directive
    def __table_args__(cls):
        # The natural key is a unique *index* rather than a table constraint so the bulk
        # loader can drop and rebuild it around a load (SQLite cannot drop a constraint).
        key = ("city_code", "source_id", *getattr(cls, "__key_time__", ()))
        return (
            Index(f"uq_{cls.__tablename__}_{'_'.join(key)}", *key, unique=True),
            CheckConstraint(_CLASS_CHECK, name="classification"),
            *getattr(cls, "__extra_args__", ()),
        )


class InDistrict:
    @declared_attr
    def district_code(cls) -> Mapped[str | None]:
        return mapped_column(String(6), ForeignKey("districts.adcode"), nullable=True)


# --- geography and reference ----------------------------------------------------------


class City(Base):
    __tablename__ = "cities"

    adcode: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    name_en: Mapped[str] = mapped_column(String(40))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    geometry: Mapped[str] = mapped_column(Text, doc="GeoJSON geometry, WGS84")


class District(Base):
    __tablename__ = "districts"

    adcode: Mapped[str] = mapped_column(String(6), primary_key=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("cities.adcode"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    geometry: Mapped[str] = mapped_column(Text, doc="GeoJSON geometry, WGS84")


class CodeValue(Base):
    """The code tables of `data/codes.toml`, published in the store."""

    __tablename__ = "code_values"

    table_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    zh: Mapped[str] = mapped_column(String(80))
    en: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(Integer)
    attrs: Mapped[str] = mapped_column(Text, default="{}", doc="JSON object")


class FeedBatch(Base):
    """One arrival of one city's feed: counts, timing and lineage."""

    __tablename__ = "feed_batches"
    __table_args__ = (
        Index("ix_feed_batches_dataset_started_at", "dataset", "started_at"),
        # The pipeline's "same file as batch N" lookup, made by every arrival (a
        # stream's micro-batches: several a second) over a table that grows with them.
        Index(
            "ix_feed_batches_city_code_dataset_content_sha256",
            "city_code",
            "dataset",
            "content_sha256",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("cities.adcode"), index=True)
    dataset: Mapped[str] = mapped_column(String(40))
    source_name: Mapped[str] = mapped_column(String(200))
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    spec: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_inserted: Mapped[int] = mapped_column(Integer, default=0)
    rows_updated: Mapped[int] = mapped_column(Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Added by migration 0003 (feeds): the spec by name, repeats inside the file, the
    # refusal code of a failed arrival, and the batch's timings and quality figures.
    spec_name: Mapped[str | None] = mapped_column(String(80), nullable=True)
    rows_duplicate: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    timings: Mapped[str | None] = mapped_column(Text, nullable=True, doc="JSON: seconds per stage")
    stats: Mapped[str | None] = mapped_column(
        Text, nullable=True, doc="JSON: completeness per field, arrival lag, reasons"
    )


class FeedReject(Base):
    """A feed row that did not enter the standard, kept with its raw text and reasons."""

    __tablename__ = "feed_rejects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("feed_batches.id"), index=True)
    row_number: Mapped[int] = mapped_column(Integer)
    raw: Mapped[str] = mapped_column(Text)
    reasons: Mapped[str] = mapped_column(Text, doc="JSON list of reasons")


# --- the shared records ---------------------------------------------------------------


class Incident(Record, InDistrict, Base):
    __tablename__ = "incidents"
    # Day-partitioned by `ts` on PostgreSQL (hub/partitions.py): its unique keys carry
    # `ts` there, and the same key on SQLite keeps the two schemas one.
    __key_time__ = ("ts",)
    __extra_args__ = (
        # Time windows (with a bounding box) and, covered, the situation map's counts.
        Index(
            "ix_incidents_ts_covering",
            "ts",
            "lon",
            "lat",
            "h3_r7",
            "severity",
            "classification",
            "city_code",
        ),
        Index("ix_incidents_city_code_ts", "city_code", "ts"),
        Index("ix_incidents_h3_r7_ts", "h3_r7", "ts"),
        CheckConstraint("severity BETWEEN 1 AND 4", name="severity"),
    )

    type_code: Mapped[str] = mapped_column(String(32))
    severity: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")
    ts: Mapped[datetime] = mapped_column(UTCDateTime, doc="when it happened (UTC)")
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    h3_r7: Mapped[str] = mapped_column(String(15))
    h3_r8: Mapped[str] = mapped_column(String(15))
    address: Mapped[str | None] = mapped_column(String(200), nullable=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True, doc="free-text narrative")
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)


class Camera(Record, InDistrict, Base):
    __tablename__ = "cameras"

    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default="online")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    road: Mapped[str | None] = mapped_column(String(120), nullable=True)
    at_border: Mapped[bool] = mapped_column(Boolean, default=False)
    installed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Sighting(Record, InDistrict, Base):
    """A plate read by a camera (卡口过车记录)."""

    __tablename__ = "sightings"
    __key_time__ = ("ts",)  # day-partitioned on PostgreSQL, as incidents
    __extra_args__ = (
        Index("ix_sightings_plate_ts", "plate", "ts"),
        Index("ix_sightings_camera_id_ts", "camera_id", "ts"),
        Index("ix_sightings_city_code_ts", "city_code", "ts"),
    )

    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    plate: Mapped[str] = mapped_column(String(12))
    plate_color: Mapped[str | None] = mapped_column(String(8), nullable=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float | None] = mapped_column(Float, nullable=True)
    direction: Mapped[str | None] = mapped_column(String(8), nullable=True)


class Case(Record, InDistrict, Base):
    __tablename__ = "cases"
    __extra_args__ = (CheckConstraint("status IN ('open', 'closed')", name="status"),)

    case_no: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    case_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(8), default="open")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)


class Person(Record, InDistrict, Base):
    """A person file. ID number and phone are SM4 ciphertext plus a blind index."""

    __tablename__ = "persons"
    __extra_args__ = (
        Index("ix_persons_id_bidx", "id_bidx"),
        Index("ix_persons_phone_bidx", "phone_bidx"),
        Index("ix_persons_name", "name"),
    )

    name: Mapped[str] = mapped_column(String(60))
    sex: Mapped[str | None] = mapped_column(String(1), nullable=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    id_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    id_bidx: Mapped[str | None] = mapped_column(String(64), nullable=True)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    phone_bidx: Mapped[str | None] = mapped_column(String(64), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    address: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class PersonCaseLink(Base):
    __tablename__ = "person_case_links"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16), doc="suspect, victim, witness, missing")


class Vehicle(Record, Base):
    __tablename__ = "vehicles"
    __extra_args__ = (Index("ix_vehicles_plate", "plate"),)

    plate: Mapped[str] = mapped_column(String(12))
    make: Mapped[str | None] = mapped_column(String(40), nullable=True)
    color: Mapped[str | None] = mapped_column(String(16), nullable=True)
    owner_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), nullable=True)


class VehicleCaseLink(Base):
    __tablename__ = "vehicle_case_links"

    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16), doc="suspect_vehicle, stolen, involved")


class RiskZone(Record, InDistrict, Base):
    __tablename__ = "risk_zones"

    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    geometry: Mapped[str] = mapped_column(Text, doc="GeoJSON polygon, WGS84")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Unit(Record, InDistrict, Base):
    """A response unit (police car, SWAT, fire engine, ambulance) or a fixed hospital."""

    __tablename__ = "units"

    callsign: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), default="available")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    station: Mapped[str | None] = mapped_column(String(120), nullable=True)
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True, doc="hospital beds")
    status_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


UNRESOLVED = text("status <> 'closed'")  # written as a literal so a partial index can match


class HelpRequest(Record, InDistrict, Base):
    """A public request for help (群众求助)."""

    __tablename__ = "help_requests"
    __extra_args__ = (
        Index("ix_help_requests_city_code_ts", "city_code", "ts"),
        # Who still needs help: a few hundred unresolved among many thousand closed.
        Index(
            "ix_help_requests_unresolved_ts",
            "ts",
            sqlite_where=UNRESOLVED,
            postgresql_where=UNRESOLVED,
        ),
    )

    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    caller_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    caller_phone_bidx: Mapped[str | None] = mapped_column(String(64), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)


class Alert(Record, InDistrict, Base):
    """A security alert or risk warning (预警)."""

    __tablename__ = "alerts"

    kind: Mapped[str] = mapped_column(String(20), doc="hotspot, fraud_wave, manual, ...")
    level: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    radius_m: Mapped[float | None] = mapped_column(Float, nullable=True)


# --- people who use the hub -----------------------------------------------------------


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(20))
    city_code: Mapped[str | None] = mapped_column(ForeignKey("cities.adcode"), nullable=True)
    district_code: Mapped[str | None] = mapped_column(ForeignKey("districts.adcode"), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Bumped by a lock, a role change and a password reset: sessions signed in under an
    # older version end at their next hub call (hub.security.identity.require_current).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SignInThrottle(Base):
    """Recent sign-in failures per key ("source:…", "account:…", "pair:…") and when the
    next attempt is heard; a pair row also remembers the account's last sign-in from
    that source (hub.security.identity)."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    allowed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# The data classes shown on the overview, each with the tables that make it up.
DATA_CLASSES: dict[str, tuple[type[Base], ...]] = {
    "incidents": (Incident,),
    "surveillance": (Camera, Sighting),
    "cases": (Case,),
    "persons": (Person,),
    "alerts": (Alert,),
    "help_requests": (HelpRequest,),
}

RECORD_MODELS: tuple[type[Base], ...] = (
    Incident,
    Camera,
    Sighting,
    Case,
    Person,
    Vehicle,
    RiskZone,
    Unit,
    HelpRequest,
    Alert,
)


# --- access: requests, grants, reviews, audit, alarms -----------------------------------


class AccessRequest(Base):
    """A request to open records of another city or level, decided by an approver."""

    __tablename__ = "access_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'denied', 'withdrawn')", name="status"),
        CheckConstraint("route IN ('city_approver', 'province_approver')", name="route"),
        Index("ix_access_requests_owner_city_status", "owner_city", "status"),
        Index("ix_access_requests_requester_id", "requester_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requester_city: Mapped[str | None] = mapped_column(String(6), nullable=True)
    owner_city: Mapped[str] = mapped_column(ForeignKey("cities.adcode"))
    level: Mapped[str] = mapped_column(String(10))
    scope_kind: Mapped[str] = mapped_column(String(16), doc="plate, person, case, camera_area")
    scope_value: Mapped[str] = mapped_column(String(400), doc="normalised scope, JSON for areas")
    purpose: Mapped[str] = mapped_column(String(32))
    case_no: Mapped[str] = mapped_column(String(32))
    justification: Mapped[str] = mapped_column(Text)
    route: Mapped[str] = mapped_column(String(20))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Grant(Base):
    """Access in force for one user, one owning city, one scope, up to one level."""

    __tablename__ = "grants"
    __table_args__ = (
        CheckConstraint("kind IN ('approval', 'break_glass')", name="kind"),
        Index("ix_grants_user_id_expires_at", "user_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("access_requests.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(12))
    owner_city: Mapped[str] = mapped_column(ForeignKey("cities.adcode"))
    level: Mapped[str] = mapped_column(String(10))
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_value: Mapped[str] = mapped_column(String(400))
    purpose: Mapped[str] = mapped_column(String(32))
    case_no: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Review(Base):
    """An after-the-fact review owed by the owning city (break-glass, flagged access)."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_city_code_status", "city_code", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("cities.adcode"))
    kind: Mapped[str] = mapped_column(String(16), doc="break_glass, flagged")
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"), nullable=True)
    audit_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    close_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditEntry(Base):
    """One audited action. Append-only (triggers refuse UPDATE and DELETE) and chained:
    `hash` = SM3(prev_hash + canonical entry)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_user_id_ts", "user_id", "ts"),
        Index("ix_audit_log_city_code_ts", "city_code", "ts"),
        Index("ix_audit_log_action_ts", "action", "ts"),
        Index("ix_audit_log_subject_ts", "subject", "ts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    city_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    dataset: Mapped[str | None] = mapped_column(String(32), nullable=True)
    query: Mapped[str | None] = mapped_column(Text, nullable=True, doc="normalised, JSON")
    subject: Mapped[str | None] = mapped_column(
        String(120),
        nullable=True,
        doc="what was looked up, e.g. plate:皖A12345 (blind index for IDs)",
    )
    purpose: Mapped[str | None] = mapped_column(String(32), nullable=True)
    case_no: Mapped[str | None] = mapped_column(String(32), nullable=True)
    result_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    record_ids: Mapped[str | None] = mapped_column(Text, nullable=True, doc="JSON list")
    owner_cities: Mapped[str | None] = mapped_column(
        String(120), nullable=True, doc="comma-separated cities whose records were touched"
    )
    decision: Mapped[str | None] = mapped_column(
        String(32), nullable=True, doc="ok, pointer, or the refusal code"
    )
    grant_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True, doc="JSON object")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The tip of the audit chain; its row lock serialises appenders."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class Alarm(Base):
    """An alarm raised by a rule on an audited action; closing needs a note."""

    __tablename__ = "alarms"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        Index("ix_alarms_city_code_status", "city_code", "status"),
        Index("ix_alarms_dedupe_key_ts", "dedupe_key", "ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rule: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    city_code: Mapped[str | None] = mapped_column(String(6), nullable=True, doc="the user's city")
    audit_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default="open")
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    close_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    dedupe_key: Mapped[str] = mapped_column(
        String(200), doc="rule:user:subject, one open alarm each"
    )


class Export(Base):
    """A registered export (CSV/XLSX): who took which rows, when and why.

    The id is what the file's invisible mark carries (4 bytes, so it stays below 2³²);
    `sha256` is the file as it left the hub. Rows are never updated or deleted
    (triggers refuse it, as for the audit log).
    """

    __tablename__ = "exports"
    __table_args__ = (
        CheckConstraint("format IN ('csv', 'xlsx')", name="format"),
        Index("ix_exports_user_id_ts", "user_id", "ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    city_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    dataset: Mapped[str] = mapped_column(String(40))
    query: Mapped[str] = mapped_column(Text, doc="JSON: the selection exported")
    purpose: Mapped[str | None] = mapped_column(String(32), nullable=True)
    case_no: Mapped[str | None] = mapped_column(String(32), nullable=True)
    row_count: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(4))
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    audit_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


# --- joint response, alerts and assists -----------------------------------------------
# Coordination records between cities (DESIGN §5 "Joint response", "Alerts & assists").
# They are not shared records of one owning city: who may see one follows from the
# cities taking part (see hub.response, hub.alerts, hub.assists), and every record they
# point at (incident, unit, alert, case, person, vehicle) is still read through the policy.


class ExerciseRun(Base):
    """One playing of a scripted exercise (data/exercises/NAME.toml)."""

    __tablename__ = "exercise_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'finished', 'stopped')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    speed: Mapped[float] = mapped_column(Float, default=1.0)
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="running")
    injects_done: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ExerciseRecord(Base):
    """A shared record (incident, alert) an exercise created: it is marked as exercise
    wherever it is shown. The shared tables stay untouched by exercise mode."""

    __tablename__ = "exercise_records"

    dataset: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("exercise_runs.id"), index=True)


class Operation(Base):
    """A joint operation (联合处置): an incident or a planned event, led by one city."""

    __tablename__ = "operations"
    __table_args__ = (
        CheckConstraint("kind IN ('incident', 'planned_event')", name="kind"),
        CheckConstraint("status IN ('active', 'closed')", name="status"),
        CheckConstraint("radius_m > 0", name="radius"),
        Index("ix_operations_lead_city_status", "lead_city", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8), default="active")
    lead_city: Mapped[str] = mapped_column(ForeignKey("cities.adcode"))
    # No foreign key: incidents are day-partitioned (keyed by id and ts) and dropped a
    # day at a time by retention; the operation keeps the id it was opened for, which
    # hub/response.py checks when it is given.
    incident_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    risk_zone_id: Mapped[int | None] = mapped_column(
        ForeignKey("risk_zones.id", ondelete="SET NULL"), nullable=True
    )
    lon: Mapped[float] = mapped_column(Float, doc="area centre, WGS84")
    lat: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    objectives: Mapped[str | None] = mapped_column(Text, nullable=True)
    exercise_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("exercise_runs.id"), nullable=True
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OperationParticipant(Base):
    """A city invited to an operation, and its answer."""

    __tablename__ = "operation_participants"
    __table_args__ = (
        CheckConstraint("status IN ('invited', 'accepted', 'declined')", name="status"),
        Index("ix_operation_participants_city_code_status", "city_code", "status"),
    )

    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"), primary_key=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("cities.adcode"), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="invited")
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    responded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


_REQUEST_STATES = (
    "'requested', 'accepted', 'declined', 'dispatched', 'en_route', 'on_scene', "
    "'released', 'cancelled'"
)


class ResourceRequest(Base):
    """One unit asked for (or, by its own city, assigned) in an operation; its lifecycle
    is `hub.response_rules`. A city's own unit is dispatched straight away: its row
    has requesting_city = owner_city and starts at `dispatched`."""

    __tablename__ = "resource_requests"
    __table_args__ = (
        CheckConstraint(f"status IN ({_REQUEST_STATES})", name="status"),
        Index("ix_resource_requests_operation_id_status", "operation_id", "status"),
        Index("ix_resource_requests_owner_city_status", "owner_city", "status"),
        Index("ix_resource_requests_unit_id", "unit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"))
    requesting_city: Mapped[str] = mapped_column(ForeignKey("cities.adcode"))
    owner_city: Mapped[str] = mapped_column(String(6))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    status: Mapped[str] = mapped_column(String(10))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    en_route_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    on_scene_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, nullable=True, doc="declined, cancelled or released"
    )
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TimelineEntry(Base):
    """The operation's shared log: entries by participants, and system events."""

    __tablename__ = "timeline_entries"
    __table_args__ = (Index("ix_timeline_entries_operation_id_ts", "operation_id", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), nullable=True, doc="None: a system event"
    )
    city_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    significant: Mapped[bool] = mapped_column(Boolean, default=False)


class AlertRecipient(Base):
    """An alert pushed to one city, its acknowledgement and escalation."""

    __tablename__ = "alert_recipients"
    __table_args__ = (
        Index("ix_alert_recipients_city_code_acknowledged_at", "city_code", "acknowledged_at"),
    )

    # Cascade: retention purges old alerts, and their pushes go with them.
    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    city_code: Mapped[str] = mapped_column(ForeignKey("cities.adcode"), primary_key=True)
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AssistRequest(Base):
    """An assistance request (协查) from one city's case to other cities about a subject."""

    __tablename__ = "assist_requests"
    __table_args__ = (
        CheckConstraint("subject_kind IN ('person', 'vehicle')", name="subject_kind"),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        Index("ix_assist_requests_from_city_status", "from_city", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_city: Mapped[str] = mapped_column(ForeignKey("cities.adcode"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    case_no: Mapped[str] = mapped_column(String(32), doc="shared with the recipients")
    subject_kind: Mapped[str] = mapped_column(String(8))
    subject_id: Mapped[int] = mapped_column(BigId, doc="persons.id or vehicles.id")
    asked: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default="open")
    exercise_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("exercise_runs.id"), nullable=True
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AssistRecipient(Base):
    """One city asked in an assistance request, and its answer."""

    __tablename__ = "assist_recipients"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'responded', 'declined')", name="status"),
        Index("ix_assist_recipients_city_code_status", "city_code", "status"),
    )

    assist_id: Mapped[int] = mapped_column(ForeignKey("assist_requests.id"), primary_key=True)
    city_code: Mapped[str] = mapped_column(ForeignKey("cities.adcode"), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    responded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# --- plate watch (布控) and the notification read state (migration 0008) ------------------


class Watch(Base):
    """A plate on watch: who asked, why (purpose and open case), where (the province or
    chosen cities) and until when. Hits are matched by plate among active watches."""

    __tablename__ = "watches"
    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expiry"),
        # Matching reads one plate's active watches: the partial index holds only those.
        Index(
            "ix_watches_plate_active",
            "plate",
            "expires_at",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_watches_owner_city_expires_at", "owner_city", "expires_at"),
        Index("ix_watches_owner_id_expires_at", "owner_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plate: Mapped[str] = mapped_column(String(12), doc="normalised")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    owner_city: Mapped[str | None] = mapped_column(String(6), nullable=True)
    purpose: Mapped[str] = mapped_column(String(32))
    case_no: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int] = mapped_column(BigId)
    justification: Mapped[str | None] = mapped_column(Text, nullable=True)
    scope: Mapped[str] = mapped_column(
        String(200), doc="'province', or the watched cities' adcodes joined by commas"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True, doc="owner, approver")


class WatchHit(Base):
    """One read of a watched plate in the watch's scope. Unique per (watch, sighting), so
    a redelivered or rematched batch never raises a hit twice. The sighting is referred to
    without a foreign key: retention drops old sightings, their hits stay as history."""

    __tablename__ = "watch_hits"
    __table_args__ = (
        Index("uq_watch_hits_watch_id_sighting_id", "watch_id", "sighting_id", unique=True),
        Index("ix_watch_hits_watch_id_created_at", "watch_id", "created_at"),
        Index("ix_watch_hits_city_code_created_at", "city_code", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    watch_id: Mapped[int] = mapped_column(ForeignKey("watches.id"))
    sighting_id: Mapped[int] = mapped_column(BigId)
    plate: Mapped[str] = mapped_column(String(12))
    city_code: Mapped[str] = mapped_column(String(6), doc="where the car was read")
    camera_id: Mapped[int] = mapped_column(BigId)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, doc="when the car was read")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, doc="when the hit was raised")


class NoticeMark(Base):
    """Up to when a person has seen their notifications (events, not pending items)."""

    __tablename__ = "notice_marks"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The matcher reads one feed batch's sightings; without this index that is a scan of the
# largest table after every micro-batch. Declared here, with the watch tables it serves.
Index("ix_sightings_source_batch_id", Sighting.__table__.c.source_batch_id)


# --- record history (migration 0009) ------------------------------------------------------


class RecordVersion(Base):
    """One change a feed batch made to a shared record: the row it added (``insert``) or
    the columns it overwrote, as they were stored before (``update``), with the source
    line that made the change. A rollback of the batch replays these backwards.

    ``previous`` is JSON of the stored values (narratives sealed, identifiers encrypted,
    bytes as base64): history is records, read only by the rollback and by the feed roles
    through the same policy. No foreign key on ``batch_id``: the pipeline writes these
    rows in bulk beside the records, in the batch's own transaction.
    """

    __tablename__ = "record_versions"
    __table_args__ = (
        CheckConstraint("op IN ('insert', 'update')", name="op"),
        Index("ix_record_versions_batch_id", "batch_id"),
        Index(
            "ix_record_versions_dataset_city_code_source_id", "dataset", "city_code", "source_id"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(BigInteger, doc="the batch that made the change")
    dataset: Mapped[str] = mapped_column(String(40))
    city_code: Mapped[str] = mapped_column(String(6))
    source_id: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    op: Mapped[str] = mapped_column(String(6))
    row_number: Mapped[int | None] = mapped_column(Integer, nullable=True, doc="source line")
    previous: Mapped[str | None] = mapped_column(Text, nullable=True, doc="JSON, as stored")


# --- counts kept current by triggers (migration 0010, hub/rollup.py) ---------------------


class IncidentHourly(Base):
    """Incidents per UTC hour, H3 cell (r7), city, district ('' for none), data class,
    type and severity: the situation map's and the overviews' counts."""

    __tablename__ = "incident_hourly"
    __table_args__ = {"sqlite_with_rowid": False}

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    h3_r7: Mapped[str] = mapped_column(String(15), primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    district_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    classification: Mapped[str] = mapped_column(String(10), primary_key=True)
    type_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    severity: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger)


class RecordCount(Base):
    """Records per dataset, city and data class of the big tables (incidents, sightings)."""

    __tablename__ = "record_counts"
    __table_args__ = {"sqlite_with_rowid": False}

    dataset: Mapped[str] = mapped_column(String(32), primary_key=True)
    city_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    classification: Mapped[str] = mapped_column(String(10), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


# --- sessions that survive a reload (migration 0011, hub/security/identity.py) -----------


class WebSession(Base):
    """A browser's sign-in, behind an HttpOnly cookie: only a hash of its token is kept.

    Made unclaimed by a sign-in (its token a one-time hand-off code), claimed once by the
    cookie route (the token is replaced and the new one goes into the cookie), resumed on
    a reload while the user's session version, the idle limit and the absolute limit
    allow, ended by a sign-out or by the check that found it too old, idle or stale."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    session_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_why: Mapped[str | None] = mapped_column(String(16), nullable=True)
