"""Day partitions on PostgreSQL: the migration converts a seeded store in place (and
back), re-ingesting stays idempotent across partitions, and `hub maintain` creates days
ahead, is idempotent and drops an expired day while keeping open-case records. On
SQLite `maintain` does nothing and says so."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError

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
    with pg.connect() as conn:
        _plate_days_exact(conn)  # 0012 filled from the converted store
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
    out = subprocess.run([sys.executable, "-m", "hub", "maintain", "--db", url, "--lang", "en"],
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


# --- plate_days: a lookup by plate opens the plate's days only ----------------------------

SIGHTINGS_FILE = ROOT / "data" / "samples" / "chuzhou_sightings_bd09.jsonl"


def _plate_days_exact(conn) -> None:
    """`plate_days` holds exactly the (plate, UTC day) pairs of the reads."""
    kept = "SELECT plate, day FROM plate_days"
    reads = "SELECT DISTINCT plate, CAST(ts AT TIME ZONE 'UTC' AS date) FROM sightings"
    for a, b in ((kept, reads), (reads, kept)):
        assert conn.execute(text(f"SELECT count(*) FROM ({a} EXCEPT {b}) x")).scalar() == 0


def _bounded(conn, plate: str):
    where = m.Sighting.plate == plate
    bound = partitions.plate_day_bounds(conn, partitions.plate_days.c.plate == plate, m.Sighting.ts)
    return select(m.Sighting.id).where(where, bound).order_by(m.Sighting.id)


def _opened(conn, stmt) -> set[str]:
    """The partitions the plan of `stmt` reads."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql))
    return set(re.findall(r" on (sightings_(?:p\d{8}|default))\b", plan))


def test_plate_days_follow_every_write_and_bound_a_plate_lookup(pg) -> None:
    spec = load_spec("chuzhou_sightings_bd09")
    first = ingest_file(pg, SIGHTINGS_FILE, city_code="341100", spec=spec, cipher=CIPHER,
                        now=ANCHOR)  # fmt: skip
    assert first.status == "done" and first.rows_inserted > 0
    with pg.connect() as conn:
        _plate_days_exact(conn)
        pairs = conn.execute(text("SELECT count(*) FROM plate_days")).scalar()
    again = ingest_file(pg, SIGHTINGS_FILE, city_code="341100", spec=spec, cipher=CIPHER,
                        now=ANCHOR)  # fmt: skip
    assert again.rows_inserted == again.rows_updated == 0, "a redelivered file changes nothing"
    with transaction(pg) as s:
        conn = s.connection()
        assert conn.execute(text("SELECT count(*) FROM plate_days")).scalar() == pairs
        plate = conn.execute(text(
            "SELECT plate FROM plate_days GROUP BY plate HAVING count(*) >= 2 LIMIT 1"
        )).scalar_one()  # fmt: skip
        everything = s.scalars(
            select(m.Sighting.id).where(m.Sighting.plate == plate).order_by(m.Sighting.id)
        ).all()
        days = {p.table for p in partitions.day_partitions(conn, "sightings")}
        assert s.scalars(_bounded(conn, plate)).all() == everything
        opened = _opened(conn, _bounded(conn, plate))
        seen = conn.execute(text("SELECT count(*) FROM plate_days WHERE plate = :p"), {"p": plate})
        assert 0 < len(opened) <= seen.scalar() < len(days), "only the plate's days are read"
        assert len(_opened(conn, select(m.Sighting.id).where(m.Sighting.plate == plate))) > len(
            days
        ), "without the bound every day (and the DEFAULT partition) is read"
        # A corrected time moves a read to another day: that day joins the plate's days.
        moved = everything[0]
        s.execute(text("UPDATE sightings SET ts = ts - interval '3 days' WHERE id = :i"),
                  {"i": moved})  # fmt: skip
        _plate_days_exact_or_more(conn)
        assert s.scalars(_bounded(conn, plate)).all() == everything


def _plate_days_exact_or_more(conn) -> None:
    """After an update: every read's day is there (the day it left may stay, one probe)."""
    reads = "SELECT DISTINCT plate, CAST(ts AT TIME ZONE 'UTC' AS date) FROM sightings"
    missing = f"SELECT count(*) FROM ({reads} EXCEPT SELECT plate, day FROM plate_days) x"
    assert conn.execute(text(missing)).scalar() == 0


def test_retention_takes_a_dropped_days_plates_and_keeps_an_open_cases(pg) -> None:
    with transaction(pg) as s:
        conn = s.connection()
        # The first day a registered vehicle was read: that vehicle is linked to an open
        # case, so its reads outlive their day; the days up to it expire.
        first = s.scalar(select(func.min(m.Sighting.ts))
                         .where(m.Sighting.plate.in_(select(m.Vehicle.plate))))  # fmt: skip
        oldest = next(p for p in partitions.day_partitions(conn, "sightings") if p.end > first)
        in_day = (m.Sighting.ts >= oldest.start) & (m.Sighting.ts < oldest.end)
        plate, vehicle = s.execute(
            select(m.Vehicle.plate, m.Vehicle.id)
            .where(m.Vehicle.plate.in_(select(m.Sighting.plate).where(in_day)))
            .order_by(m.Vehicle.id).limit(1)
        ).one()  # fmt: skip
        case_id = s.scalar(select(m.Case.id).where(m.Case.status == "open").limit(1))
        linked = select(m.VehicleCaseLink).where(m.VehicleCaseLink.vehicle_id == vehicle,
                                                 m.VehicleCaseLink.case_id == case_id)  # fmt: skip
        if s.scalar(linked) is None:
            s.add(m.VehicleCaseLink(vehicle_id=vehicle, case_id=case_id, role="involved"))
            s.flush()
        reads = s.scalars(select(m.Sighting.id).where(m.Sighting.plate == plate)
                          .order_by(m.Sighting.id)).all()  # fmt: skip
        others = conn.execute(
            text("SELECT count(*) FROM plate_days WHERE day = :d AND plate <> :p"),
            {"d": oldest.day, "p": plate},
        ).scalar()
    assert others > 0
    now = oldest.end + timedelta(days=1, hours=1)
    settings_days = {"incidents": 0, "sightings": 1, "help_requests": 0, "alerts": 0}
    with transaction(pg) as s:
        done = maintain(s, settings_days, now=now, ahead=0)
    purge = {p.dataset: p for p in done.purges}["sightings"]
    assert purge.purged > 0 and purge.kept_for_open_cases >= 1
    with transaction(pg) as s:
        conn = s.connection()
        assert oldest.table not in {p.table for p in partitions.day_partitions(conn, "sightings")}
        left = conn.execute(text("SELECT DISTINCT plate FROM plate_days WHERE day <= :d"),
                            {"d": oldest.day}).scalars().all()  # fmt: skip
        assert left == [plate], "the days' other plates are forgotten with their reads"
        _plate_days_exact(conn)
        # The kept read sits in the DEFAULT partition and the bounded lookup finds it.
        assert s.scalars(_bounded(conn, plate)).all() == reads
        counts = conn.execute(text(
            "SELECT sum(n) FROM record_counts WHERE dataset = 'sightings'"
        )).scalar()  # fmt: skip
        assert counts == s.scalar(select(func.count()).select_from(m.Sighting))


def test_maintain_gives_up_rather_than_queue_readers_behind_a_long_report(pg) -> None:
    """A report holding the reads open: `maintain` fails (rolled back, cron tries again)
    instead of waiting with the table's exclusive lock queued in front of every reader."""
    with pg.connect() as conn:
        oldest = partitions.day_partitions(conn, "sightings")[0]
    days = {"incidents": 0, "sightings": 1, "help_requests": 0, "alerts": 0}
    now = oldest.end + timedelta(days=1, hours=1)
    with pg.connect() as report:
        report.execute(text("SELECT count(*) FROM sightings"))  # its lock lasts the transaction
        with pytest.raises(OperationalError, match="lock timeout"), transaction(pg) as s:
            # Without the fix this would wait for ever: fail by a statement timeout then.
            s.execute(text("SET LOCAL statement_timeout = '60s'"))
            maintain(s, days, now=now, ahead=0, lock_timeout_s=0.2)
        report.rollback()
    with pg.connect() as conn:
        assert oldest.table in {p.table for p in partitions.day_partitions(conn, "sightings")}
