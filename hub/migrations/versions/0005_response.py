"""response: joint operations, resource requests, timelines, alert pushes, assists, exercises

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_recipients",
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"],
            ["users.id"],
            name=op.f("fk_alert_recipients_acknowledged_by_users"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_recipients_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_alert_recipients_city_code_cities")
        ),
        sa.PrimaryKeyConstraint("alert_id", "city_code", name=op.f("pk_alert_recipients")),
    )
    op.create_index(
        "ix_alert_recipients_city_code_acknowledged_at",
        "alert_recipients",
        ["city_code", "acknowledged_at"],
        unique=False,
    )
    op.create_table(
        "exercise_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("speed", sa.Float(), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("injects_done", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'stopped')", name=op.f("ck_exercise_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["started_by"], ["users.id"], name=op.f("fk_exercise_runs_started_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exercise_runs")),
    )
    op.create_table(
        "assist_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_city", sa.String(length=6), nullable=False),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_no", sa.String(length=32), nullable=False),
        sa.Column("subject_kind", sa.String(length=8), nullable=False),
        sa.Column(
            "subject_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("asked", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("exercise_run_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_assist_requests_status")),
        sa.CheckConstraint(
            "subject_kind IN ('person', 'vehicle')", name=op.f("ck_assist_requests_subject_kind")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_assist_requests_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_assist_requests_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["exercise_run_id"],
            ["exercise_runs.id"],
            name=op.f("fk_assist_requests_exercise_run_id_exercise_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["from_city"], ["cities.adcode"], name=op.f("fk_assist_requests_from_city_cities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assist_requests")),
    )
    op.create_index(
        "ix_assist_requests_from_city_status",
        "assist_requests",
        ["from_city", "status"],
        unique=False,
    )
    op.create_table(
        "exercise_records",
        sa.Column("dataset", sa.String(length=32), nullable=False),
        sa.Column(
            "record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["exercise_runs.id"], name=op.f("fk_exercise_records_run_id_exercise_runs")
        ),
        sa.PrimaryKeyConstraint("dataset", "record_id", name=op.f("pk_exercise_records")),
    )
    op.create_index(
        op.f("ix_exercise_records_run_id"), "exercise_records", ["run_id"], unique=False
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("lead_city", sa.String(length=6), nullable=False),
        sa.Column(
            "incident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "risk_zone_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("objectives", sa.Text(), nullable=True),
        sa.Column("exercise_run_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('incident', 'planned_event')", name=op.f("ck_operations_kind")
        ),
        sa.CheckConstraint("status IN ('active', 'closed')", name=op.f("ck_operations_status")),
        sa.CheckConstraint("radius_m > 0", name=op.f("ck_operations_radius")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_operations_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["exercise_run_id"],
            ["exercise_runs.id"],
            name=op.f("fk_operations_exercise_run_id_exercise_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_operations_incident_id_incidents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lead_city"], ["cities.adcode"], name=op.f("fk_operations_lead_city_cities")
        ),
        sa.ForeignKeyConstraint(
            ["risk_zone_id"],
            ["risk_zones.id"],
            name=op.f("fk_operations_risk_zone_id_risk_zones"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations")),
    )
    op.create_index(
        "ix_operations_lead_city_status", "operations", ["lead_city", "status"], unique=False
    )
    op.create_table(
        "assist_recipients",
        sa.Column("assist_id", sa.Integer(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("responded_by", sa.Integer(), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'responded', 'declined')",
            name=op.f("ck_assist_recipients_status"),
        ),
        sa.ForeignKeyConstraint(
            ["assist_id"],
            ["assist_requests.id"],
            name=op.f("fk_assist_recipients_assist_id_assist_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["city_code"], ["cities.adcode"], name=op.f("fk_assist_recipients_city_code_cities")
        ),
        sa.ForeignKeyConstraint(
            ["responded_by"], ["users.id"], name=op.f("fk_assist_recipients_responded_by_users")
        ),
        sa.PrimaryKeyConstraint("assist_id", "city_code", name=op.f("pk_assist_recipients")),
    )
    op.create_index(
        "ix_assist_recipients_city_code_status",
        "assist_recipients",
        ["city_code", "status"],
        unique=False,
    )
    op.create_table(
        "operation_participants",
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_by", sa.Integer(), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('invited', 'accepted', 'declined')",
            name=op.f("ck_operation_participants_status"),
        ),
        sa.ForeignKeyConstraint(
            ["city_code"],
            ["cities.adcode"],
            name=op.f("fk_operation_participants_city_code_cities"),
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_operation_participants_operation_id_operations"),
        ),
        sa.ForeignKeyConstraint(
            ["responded_by"],
            ["users.id"],
            name=op.f("fk_operation_participants_responded_by_users"),
        ),
        sa.PrimaryKeyConstraint(
            "operation_id", "city_code", name=op.f("pk_operation_participants")
        ),
    )
    op.create_index(
        "ix_operation_participants_city_code_status",
        "operation_participants",
        ["city_code", "status"],
        unique=False,
    )
    op.create_table(
        "resource_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("requesting_city", sa.String(length=6), nullable=False),
        sa.Column("owner_city", sa.String(length=6), nullable=False),
        sa.Column("unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("en_route_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("on_scene_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('requested', 'accepted', 'declined', 'dispatched', 'en_route', 'on_scene', 'released', 'cancelled')",
            name=op.f("ck_resource_requests_status"),
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_resource_requests_operation_id_operations"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_resource_requests_requested_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["requesting_city"],
            ["cities.adcode"],
            name=op.f("fk_resource_requests_requesting_city_cities"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_resource_requests_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_resource_requests_updated_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_requests")),
    )
    op.create_index(
        "ix_resource_requests_operation_id_status",
        "resource_requests",
        ["operation_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_resource_requests_owner_city_status",
        "resource_requests",
        ["owner_city", "status"],
        unique=False,
    )
    op.create_index("ix_resource_requests_unit_id", "resource_requests", ["unit_id"], unique=False)
    op.create_table(
        "timeline_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("city_code", sa.String(length=6), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("significant", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_timeline_entries_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_timeline_entries_operation_id_operations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline_entries")),
    )
    op.create_index(
        "ix_timeline_entries_operation_id_ts",
        "timeline_entries",
        ["operation_id", "ts"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_timeline_entries_operation_id_ts", table_name="timeline_entries")
    op.drop_table("timeline_entries")
    op.drop_index("ix_resource_requests_unit_id", table_name="resource_requests")
    op.drop_index("ix_resource_requests_owner_city_status", table_name="resource_requests")
    op.drop_index("ix_resource_requests_operation_id_status", table_name="resource_requests")
    op.drop_table("resource_requests")
    op.drop_index("ix_operation_participants_city_code_status", table_name="operation_participants")
    op.drop_table("operation_participants")
    op.drop_index("ix_assist_recipients_city_code_status", table_name="assist_recipients")
    op.drop_table("assist_recipients")
    op.drop_index("ix_operations_lead_city_status", table_name="operations")
    op.drop_table("operations")
    op.drop_index(op.f("ix_exercise_records_run_id"), table_name="exercise_records")
    op.drop_table("exercise_records")
    op.drop_index("ix_assist_requests_from_city_status", table_name="assist_requests")
    op.drop_table("assist_requests")
    op.drop_table("exercise_runs")
    op.drop_index("ix_alert_recipients_city_code_acknowledged_at", table_name="alert_recipients")
    op.drop_table("alert_recipients")
