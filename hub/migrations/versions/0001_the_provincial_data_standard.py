"""the provincial data standard

Revision ID: 0001
Revises:
Create Date: 2026-11-22 13:44:43.348269
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cities",
        sa.Column("adcode", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("name_en", sa.String(length=40), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("geometry", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("adcode", name=op.f("pk_cities")),
    )
    op.create_table(
        "code_values",
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("zh", sa.String(length=80), nullable=False),
        sa.Column("en", sa.String(length=80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("attrs", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "code", name=op.f("pk_code_values")),
    )
    op.create_table(
        "districts",
        sa.Column("adcode", sa.String(length=6), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("geometry", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_districts_city_code_cities")
        ),
        sa.PrimaryKeyConstraint("adcode", name=op.f("pk_districts")),
    )
    with op.batch_alter_table("districts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_districts_city_code"), ["city_code"], unique=False
        )

    op.create_table(
        "feed_batches",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("dataset", sa.String(length=40), nullable=False),
        sa.Column("source_name", sa.String(length=200), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("spec", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_inserted", sa.Integer(), nullable=False),
        sa.Column("rows_updated", sa.Integer(), nullable=False),
        sa.Column("rows_unchanged", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["city_code"],
            ["cities.adcode"],
            name=op.f("fk_feed_batches_city_code_cities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_batches")),
    )
    with op.batch_alter_table("feed_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feed_batches_city_code"), ["city_code"], unique=False
        )

    op.create_table(
        "alerts",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("radius_m", sa.Float(), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column(
            "source_batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.CheckConstraint(
            "classification IN ('public', 'internal', 'sensitive', 'secret')",
            name=op.f("ck_alerts_classification"),
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_alerts_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.adcode"],
            name=op.f("fk_alerts_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["source_batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_alerts_source_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(
            "uq_alerts_city_code_source_id", ["city_code", "source_id"], unique=True
        )

    op.create_table(
        "cameras",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("road", sa.String(length=120), nullable=True),
        sa.Column("at_border", sa.Boolean(), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column(
            "source_batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.CheckConstraint(
            "classification IN ('public', 'internal', 'sensitive', 'secret')",
            name=op.f("ck_cameras_classification"),
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_cameras_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.adcode"],
            name=op.f("fk_cameras_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["source_batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_cameras_source_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
    )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.create_index(
            "uq_cameras_city_code_source_id", ["city_code", "source_id"], unique=True
        )

    op.create_table(
        "cases",
        sa.Column("case_no", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("case_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column(
            "source_batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.CheckConstraint(
            "classification IN ('public', 'internal', 'sensitive', 'secret')",
            name=op.f("ck_cases_classification"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'closed')", name=op.f("ck_cases_status")
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_cases_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.adcode"],
            name=op.f("fk_cases_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["source_batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_cases_source_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("case_no", name=op.f("uq_cases_case_no")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "uq_cases_city_code_source_id", ["city_code", "source_id"], unique=True
        )

    op.create_table(
        "feed_rejects",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_feed_rejects_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_rejects")),
    )
    with op.batch_alter_table("feed_rejects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feed_rejects_batch_id"), ["batch_id"], unique=False
        )

    op.create_table(
        "help_requests",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("caller_phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("caller_phone_bidx", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column(
            "source_batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.CheckConstraint(
            "classification IN ('public', 'internal', 'sensitive', 'secret')",
            name=op.f("ck_help_requests_classification"),
        ),
        sa.ForeignKeyConstraint(
            ["city_code"],
            ["cities.adcode"],
            name=op.f("fk_help_requests_city_code_cities"),
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.adcode"],
            name=op.f("fk_help_requests_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["source_batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_help_requests_source_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_help_requests")),
    )
    with op.batch_alter_table("help_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_help_requests_city_code_ts", ["city_code", "ts"], unique=False
        )
        batch_op.create_index(
            "uq_help_requests_city_code_source_id",
            ["city_code", "source_id"],
            unique=True,
        )

    op.create_table(
        "persons",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("id_enc", sa.LargeBinary(), nullable=True),
        sa.Column("id_bidx", sa.String(length=64), nullable=True),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_bidx", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column(
            "source_batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.CheckConstraint(
            "classification IN ('public', 'internal', 'sensitive', 'secret')",
            name=op.f("ck_persons_classification"),
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_persons_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.adcode"],
            name=op.f("fk_persons_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["source_batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_persons_source_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persons")),
    )
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.create_index("ix_persons_id_bidx", ["id_bidx"], unique=False)
        batch_op.create_index("ix_persons_name", ["name"], unique=False)
        batch_op.create_index("ix_persons_phone_bidx", ["phone_bidx"], unique=False)
        batch_op.create_index(
            "uq_persons_city_code_source_id", ["city_code", "source_id"], unique=True
        )

    op.create_table(
        "risk_zones",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("geometry", sa.Text(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column(
            "source_batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.CheckConstraint(
            "classification IN ('public', 'internal', 'sensitive', 'secret')",
            name=op.f("ck_risk_zones_classification"),
        ),
        sa.ForeignKeyConstraint(
            ["city_code"],
            ["cities.adcode"],
            name=op.f("fk_risk_zones_city_code_cities"),
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.adcode"],
            name=op.f("fk_risk_zones_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["source_batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_risk_zones_source_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_zones")),
    )
    with op.batch_alter_table("risk_zones", schema=None) as batch_op:
        batch_op.create_index(
            "uq_risk_zones_city_code_source_id", ["city_code", "source_id"], unique=True
        )

    op.create_table(
        "units",
        sa.Column("callsign", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("station", sa.String(length=120), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column(
            "source_batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.CheckConstraint(
            "classification IN ('public', 'internal', 'sensitive', 'secret')",
            name=op.f("ck_units_classification"),
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_units_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.adcode"],
            name=op.f("fk_units_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["source_batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_units_source_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
    )
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.create_index(
            "uq_units_city_code_source_id", ["city_code", "source_id"], unique=True
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=60), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=True),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_users_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.adcode"],
            name=op.f("fk_users_district_code_districts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "incidents",
        sa.Column("type_code", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("h3_r7", sa.String(length=15), nullable=False),
        sa.Column("h3_r8", sa.String(length=15), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "case_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column(
            "source_batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.CheckConstraint(
            "classification IN ('public', 'internal', 'sensitive', 'secret')",
            name=op.f("ck_incidents_classification"),
        ),
        sa.CheckConstraint(
            "severity BETWEEN 1 AND 4", name=op.f("ck_incidents_severity")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_incidents_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_incidents_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.adcode"],
            name=op.f("fk_incidents_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["source_batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_incidents_source_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incidents_city_code_ts", ["city_code", "ts"], unique=False
        )
        batch_op.create_index("ix_incidents_h3_r7_ts", ["h3_r7", "ts"], unique=False)
        batch_op.create_index(
            "ix_incidents_ts_lon_lat", ["ts", "lon", "lat"], unique=False
        )
        batch_op.create_index(
            "uq_incidents_city_code_source_id", ["city_code", "source_id"], unique=True
        )

    op.create_table(
        "person_case_links",
        sa.Column(
            "person_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "case_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_person_case_links_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_person_case_links_person_id_persons"),
        ),
        sa.PrimaryKeyConstraint(
            "person_id", "case_id", name=op.f("pk_person_case_links")
        ),
    )
    with op.batch_alter_table("person_case_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_person_case_links_case_id"), ["case_id"], unique=False
        )

    op.create_table(
        "sightings",
        sa.Column(
            "camera_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("plate", sa.String(length=12), nullable=False),
        sa.Column("plate_color", sa.String(length=8), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("speed_kmh", sa.Float(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column(
            "source_batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.CheckConstraint(
            "classification IN ('public', 'internal', 'sensitive', 'secret')",
            name=op.f("ck_sightings_classification"),
        ),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_sightings_camera_id_cameras")
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_sightings_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["district_code"],
            ["districts.adcode"],
            name=op.f("fk_sightings_district_code_districts"),
        ),
        sa.ForeignKeyConstraint(
            ["source_batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_sightings_source_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
    )
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sightings_camera_id_ts", ["camera_id", "ts"], unique=False
        )
        batch_op.create_index(
            "ix_sightings_city_code_ts", ["city_code", "ts"], unique=False
        )
        batch_op.create_index("ix_sightings_plate_ts", ["plate", "ts"], unique=False)
        batch_op.create_index(
            "uq_sightings_city_code_source_id", ["city_code", "source_id"], unique=True
        )

    op.create_table(
        "vehicles",
        sa.Column("plate", sa.String(length=12), nullable=False),
        sa.Column("make", sa.String(length=40), nullable=True),
        sa.Column("color", sa.String(length=16), nullable=True),
        sa.Column(
            "owner_person_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("classification", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column(
            "source_batch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.CheckConstraint(
            "classification IN ('public', 'internal', 'sensitive', 'secret')",
            name=op.f("ck_vehicles_classification"),
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_vehicles_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["owner_person_id"],
            ["persons.id"],
            name=op.f("fk_vehicles_owner_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["source_batch_id"],
            ["feed_batches.id"],
            name=op.f("fk_vehicles_source_batch_id_feed_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicles")),
    )
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.create_index("ix_vehicles_plate", ["plate"], unique=False)
        batch_op.create_index(
            "uq_vehicles_city_code_source_id", ["city_code", "source_id"], unique=True
        )

    op.create_table(
        "vehicle_case_links",
        sa.Column(
            "vehicle_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "case_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_vehicle_case_links_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_vehicle_case_links_vehicle_id_vehicles"),
        ),
        sa.PrimaryKeyConstraint(
            "vehicle_id", "case_id", name=op.f("pk_vehicle_case_links")
        ),
    )
    with op.batch_alter_table("vehicle_case_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vehicle_case_links_case_id"), ["case_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("vehicle_case_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vehicle_case_links_case_id"))

    op.drop_table("vehicle_case_links")
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.drop_index("uq_vehicles_city_code_source_id")
        batch_op.drop_index("ix_vehicles_plate")

    op.drop_table("vehicles")
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        batch_op.drop_index("uq_sightings_city_code_source_id")
        batch_op.drop_index("ix_sightings_plate_ts")
        batch_op.drop_index("ix_sightings_city_code_ts")
        batch_op.drop_index("ix_sightings_camera_id_ts")

    op.drop_table("sightings")
    with op.batch_alter_table("person_case_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_case_links_case_id"))

    op.drop_table("person_case_links")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("uq_incidents_city_code_source_id")
        batch_op.drop_index("ix_incidents_ts_lon_lat")
        batch_op.drop_index("ix_incidents_h3_r7_ts")
        batch_op.drop_index("ix_incidents_city_code_ts")

    op.drop_table("incidents")
    op.drop_table("users")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index("uq_units_city_code_source_id")

    op.drop_table("units")
    with op.batch_alter_table("risk_zones", schema=None) as batch_op:
        batch_op.drop_index("uq_risk_zones_city_code_source_id")

    op.drop_table("risk_zones")
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_index("uq_persons_city_code_source_id")
        batch_op.drop_index("ix_persons_phone_bidx")
        batch_op.drop_index("ix_persons_name")
        batch_op.drop_index("ix_persons_id_bidx")

    op.drop_table("persons")
    with op.batch_alter_table("help_requests", schema=None) as batch_op:
        batch_op.drop_index("uq_help_requests_city_code_source_id")
        batch_op.drop_index("ix_help_requests_city_code_ts")

    op.drop_table("help_requests")
    with op.batch_alter_table("feed_rejects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_rejects_batch_id"))

    op.drop_table("feed_rejects")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("uq_cases_city_code_source_id")

    op.drop_table("cases")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_index("uq_cameras_city_code_source_id")

    op.drop_table("cameras")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("uq_alerts_city_code_source_id")

    op.drop_table("alerts")
    with op.batch_alter_table("feed_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_batches_city_code"))

    op.drop_table("feed_batches")
    with op.batch_alter_table("districts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_districts_city_code"))

    op.drop_table("districts")
    op.drop_table("code_values")
    op.drop_table("cities")
