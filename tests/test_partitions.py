"""Day partitions on PostgreSQL: the migration converts a seeded store in place (and
back), re-ingesting stays idempotent across partitions, and `hub maintain` creates days
ahead, is idempotent and drops an expired day while keeping open-case records. On
SQLite `maintain` does nothing and says so."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from hub import models as m
from hub import partitions
from hub.ingest.pipeline import ingest, ingest_file
from hub.ingest.spec import load_spec
from hub.maintain import maintain
from hub.security import audit
from hub.security.crypto import FieldCipher
from hub.service import Hub
from hub.settings import load_settings
from hub.store import downgrade, transaction, upgrade
from tests.conftest import ANCHOR, ROOT
from tests.security_support import principal, seeded_copy

SAMPLE = ROOT / "data" / "samples" / "standard_incidents.csv"
CIPHER = FieldCipher.from_settings(load_settings())
PLATE = "皖A12345"


def _state(engine) -> dict:
    """What must not change: counts, every natural key with its time, a plate's reads,
    the audit chain."""
    with transaction(engine) as s:
        out = {
            t: tuple(s.execute(text(f"SELECT count(*), sum(id), min(ts), max(ts) FROM {t}")).one())
            for t in partitions.PARTITIONED
        }
        plate = s.scalar(
            select(m.Sighting.plate).group_by(m.Sighting.plate).order_by(func.count().desc())
        )
        out["plate"] = s.execute(
            select(m.Sighting.id, m.Sighting.ts, m.Sighting.camera_id)
            .where(m.Sighting.plate == plate)
            .order_by(m.Sighting.ts)
        ).all()
        out["hourly"] = tuple(s.execute(select(func.count(), func.sum(m.IncidentHourly.n))).one())
        check = audit.verify(s)
        out["audit"] = (check.ok, check.checked)
    return out


def _trajectory(engine):
    hub = Hub(engine, load_settings())
    from hub import demo
    from hub.security.reasons import Reason

    who = principal(engine, "investigator.hf")
    tr = hub.plate_trajectory(
        who, demo.PURSUIT_PLATE, ANCHOR - timedelta(hours=3), ANCHOR + timedelta(hours=1),
        Reason("pursuit", demo.PURSUIT_CASE_NO), now=ANCHOR,
    )  # fmt: skip
    return [(p["ts"], p["lon"], p["lat"]) for p in tr.points], len(tr.pointers)


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    engine = seeded_copy("postgresql", tmp_path_factory)
    yield engine
    engine.dispose()


def test_the_migration_converts_a_seeded_store_in_place_and_back(pg) -> None:
    with pg.connect() as conn:
        assert all(partitions.is_partitioned(conn, t) for t in partitions.PARTITIONED)
    path = _trajectory(pg)  # audited: one entry, before the state is taken
    before = _state(pg)
    assert before["audit"][0] and before["plate"] and path[0]
    downgrade(pg, "0009")
    with pg.connect() as conn:
        assert not any(partitions.is_partitioned(conn, t) for t in partitions.PARTITIONED)
        rows = conn.execute(text("SELECT count(*), sum(id) FROM sightings")).one()
    assert tuple(rows) == before["sightings"][:2]
    upgrade(pg)  # the conversion in place, from a plain store with records
    with pg.connect() as conn:
        assert all(partitions.is_partitioned(conn, t) for t in partitions.PARTITIONED)
        days = partitions.day_partitions(conn, "sightings")
        in_default = conn.execute(text("SELECT count(*) FROM ONLY sightings_default")).scalar()
    assert len(days) >= 7 and in_default == 0, "every record lands in its day"
    after = _state(pg)
    assert after["audit"][1] == before["audit"][1] and after["audit"][0]
    assert after == before
    assert _trajectory(pg) == path


def test_reingest_changes_nothing_and_a_moved_time_updates_in_place(pg, tmp_path) -> None:
    spec = load_spec("standard_incidents")
    first = ingest_file(pg, SAMPLE, city_code="340100", spec=spec, cipher=CIPHER, now=ANCHOR)
    assert first.status == "done" and first.rows_inserted > 0
    again = ingest_file(pg, SAMPLE, city_code="340100", spec=spec, cipher=CIPHER, now=ANCHOR)
    assert again.rows_inserted == again.rows_updated == 0
    # The same records, the first one three days earlier: another day's partition.
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    head, row = lines[0], lines[1].split(",")
    moved_ts = datetime.fromisoformat(row[5]) - timedelta(days=3)
    row[5] = moved_ts.isoformat()
    changed = tmp_path / "moved.csv"
    changed.write_text("\n".join([head, ",".join(row), *lines[2:]]) + "\n", encoding="utf-8")
    with changed.open("rb") as fh:
        r = ingest(pg, source=fh, source_name="moved.csv", city_code="340100", spec=spec,
                   cipher=CIPHER, now=ANCHOR)  # fmt: skip
    assert (r.rows_inserted, r.rows_updated) == (0, 1), r.summary()
    with transaction(pg) as s:
        found = s.execute(
            select(m.Incident.id, m.Incident.ts, text("tableoid::regclass::text")).where(
                m.Incident.city_code == "340100", m.Incident.source_id == row[0]
            )
        ).all()
    assert len(found) == 1, "updated, not duplicated"
    assert found[0].ts == moved_ts
    assert found[0][2] == partitions.day_name("incidents", moved_ts.astimezone(UTC).date())


def test_maintain_creates_days_ahead_is_idempotent_and_drops_an_expired_day(pg) -> None:
    with pg.connect() as conn:
        oldest = partitions.day_partitions(conn, "incidents")[0]
    # An incident of the oldest day belongs to an open case: it must outlive its day.
    with transaction(pg) as s:
        case_id = s.scalar(select(m.Case.id).where(m.Case.status == "open").limit(1))
        day_rows = select(m.Incident.id).where(
            m.Incident.ts >= oldest.start, m.Incident.ts < oldest.end
        )
        in_day = s.scalars(day_rows.order_by(m.Incident.id)).all()
        assert len(in_day) > 1
        s.execute(update(m.Incident).where(m.Incident.id == in_day[0]).values(case_id=case_id))
    days = {"incidents": 1}
    now = oldest.end + timedelta(days=1, hours=1)  # that day (only) is past the period
    settings_days = {**load_settings().retention_days, **days, "sightings": 0,
                     "help_requests": 0, "alerts": 0}  # fmt: skip
    with transaction(pg) as s:
        done = maintain(s, settings_days, now=now, ahead=3)
    purge = {p.dataset: p for p in done.purges}["incidents"]
    assert purge.purged == len(in_day) - 1 and purge.kept_for_open_cases == 1
    with transaction(pg) as s:
        left = s.scalars(day_rows).all()
        conn = s.connection()
        assert oldest.table not in {p.table for p in partitions.day_partitions(conn, "incidents")}
        hourly = s.execute(select(func.sum(m.IncidentHourly.n))).scalar()
        total = s.scalar(select(func.count()).select_from(m.Incident))
        entry = s.scalars(
            select(m.AuditEntry).where(m.AuditEntry.action == "retention")
            .order_by(m.AuditEntry.seq.desc()).limit(1)
        ).one()  # fmt: skip
    assert left == [in_day[0]], "the open case's incident is kept, the rest of the day gone"
    assert hourly == total, "the counts follow the dropped day"
    assert oldest.table in entry.detail
    # Ahead: today and 3 days after it exist; a second run creates and drops nothing.
    with pg.connect() as conn:
        have = {p.day for p in partitions.day_partitions(conn, "sightings")}
    assert {now.date() + timedelta(days=k) for k in range(4)} <= have
    with transaction(pg) as s:
        twice = maintain(s, settings_days, now=now, ahead=3)
    assert all(not d for d in twice.created.values())
    assert {p.dataset: p.purged for p in twice.purges}["incidents"] == 0


def test_maintain_on_sqlite_is_a_no_op_that_says_so(tmp_path_factory) -> None:
    engine = seeded_copy("sqlite", tmp_path_factory)
    with transaction(engine) as s:
        done = maintain(s, load_settings().retention_days)
    assert done.skipped and not done.created and not done.purges
    url = str(engine.url)
    out = subprocess.run([sys.executable, "-m", "hub", "maintain", "--db", url],
                         capture_output=True, text=True, cwd=ROOT, check=True)  # fmt: skip
    assert "sqlite: no partitions" in out.stdout
    engine.dispose()


def test_a_write_before_the_partitions_lands_in_its_day(pg) -> None:
    """A bulk write of history creates its days (it does not fill the DEFAULT one)."""
    import pandas as pd

    from hub.bulk import bulk_insert

    with transaction(pg) as s:
        row = s.execute(select(m.Incident).limit(1)).scalar_one()
        cols = {c.name: getattr(row, c.name) for c in m.Incident.__table__.c if c.name != "id"}
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    frame = pd.DataFrame([{**cols, "source_id": "OLD-1", "ts": when}])
    bulk_insert(pg, m.Incident.__table__, [frame])
    with pg.connect() as conn:
        days = {p.day for p in partitions.day_partitions(conn, "incidents")}
        in_default = conn.execute(text("SELECT count(*) FROM ONLY incidents_default")).scalar()
    assert when.date() in days and in_default <= 1  # the open-case incident kept above
