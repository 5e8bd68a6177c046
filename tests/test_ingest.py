"""Feeds end to end: the shipped samples, every bad input of issue 7, idempotent
re-ingest, counts that add up, audit in the same transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from hub import models as m
from hub.ingest.pipeline import ingest, ingest_file
from hub.ingest.spec import FeedError, load_spec, parse_spec
from hub.security.crypto import FieldCipher
from hub.settings import load_settings
from hub.store import make_engine, transaction
from tests.conftest import PEER, ROOT
from tests.security_support import seeded_copy

SAMPLES = ROOT / "data" / "samples"
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
CIPHER = FieldCipher.from_settings(load_settings())
HEFEI = SAMPLES / "hefei_incidents_gbk.csv"


def run(engine, data: bytes, spec="hefei_incidents_gbk", city="340100", name="feed.csv"):
    spec = load_spec(spec) if isinstance(spec, str) else spec
    return ingest(engine, city_code=city, spec=spec, source=io.BytesIO(data), source_name=name,
                  cipher=CIPHER, now=NOW)  # fmt: skip


def counts(engine) -> dict[str, int]:
    with transaction(engine) as s:
        return {
            t: s.scalar(select(func.count()).select_from(m.Base.metadata.tables[t]))
            for t in ("incidents", "sightings", "cases", "persons", "help_requests", "feed_rejects")
        }


def last_batch(engine) -> m.FeedBatch:
    with transaction(engine) as s:
        return s.scalars(select(m.FeedBatch).order_by(m.FeedBatch.id.desc())).first()


def hefei_lines() -> list[str]:
    return HEFEI.read_bytes().decode("gbk").splitlines()


def gbk(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("gbk")


# --- the samples ------------------------------------------------------------------------

SAMPLE_RUNS = [
    ("340100", "hefei_incidents_gbk", "hefei_incidents_gbk.csv", "incidents"),
    ("341100", "chuzhou_sightings_bd09", "chuzhou_sightings_bd09.jsonl", "sightings"),
    ("340200", "wuhu_cases_xlsx", "wuhu_cases.xlsx", "cases"),
    ("340200", "wuhu_help_geojson", "wuhu_help_requests.geojson", "help_requests"),
    ("340300", "bengbu_persons_nokey", "bengbu_persons.csv", "persons"),
    ("340100", "standard_incidents", "standard_incidents.csv", "incidents"),
]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_sample_loads_and_reingesting_changes_nothing(backend, tmp_path_factory):
    engine = seeded_copy(backend, tmp_path_factory)
    for city, spec, file, dataset in SAMPLE_RUNS:
        before = counts(engine)
        r = ingest_file(engine, SAMPLES / file, city_code=city, spec=load_spec(spec),
                        cipher=CIPHER, now=NOW)  # fmt: skip
        assert r.adds_up and r.status == "done", r.summary()
        assert r.rows_inserted == r.rows_read, r.summary()
        assert counts(engine)[dataset] == before[dataset] + r.rows_inserted
        again = ingest_file(engine, SAMPLES / file, city_code=city, spec=load_spec(spec),
                            cipher=CIPHER, now=NOW)  # fmt: skip
        assert again.status == "unchanged" and again.same_file_as == r.batch_id
        assert again.rows_inserted == again.rows_updated == 0
        assert again.rows_unchanged == r.rows_inserted and again.adds_up
        assert "nothing changed" in again.summary()
    with transaction(engine) as s:
        entries = s.scalars(select(m.AuditEntry).where(m.AuditEntry.action == "ingest")).all()
        assert len(entries) == 2 * len(SAMPLE_RUNS)
        inc = s.scalars(select(m.Incident).where(m.Incident.source_id == "HF11020261120000")).one()
        assert inc.city_code == "340100" and inc.district_code == "340104"  # 蜀山区, from GCJ-02
        assert (
            inc.type_code == "theft" and inc.h3_r8.startswith("88") and inc.h3_r7.startswith("87")
        )
        sighting = s.scalars(select(m.Sighting).where(m.Sighting.source_id == "CZGC0000000")).one()
        camera = s.get(m.Camera, sighting.camera_id)
        assert (
            abs(sighting.lon - camera.lon) < 1e-5 and abs(sighting.lat - camera.lat) < 1e-5
        )  # BD-09
        person = s.scalars(select(m.Person).where(m.Person.city_code == "340300",
                                                  m.Person.source_id.like("H%"))).first()  # fmt: skip
        assert person.id_bidx and CIPHER.decrypt("id_number", person.id_enc)[:6] == "340302"


def test_changed_row_is_updated_not_duplicated(store):
    lines = hefei_lines()
    first = run(store, gbk(lines))
    lines[1] = lines[1].replace("已办结", "处置中")
    second = run(store, gbk(lines))
    assert (second.rows_updated, second.rows_unchanged) == (1, first.rows_inserted - 1)
    assert counts(store)["incidents"] == first.rows_inserted


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite writes each chunk as it comes
def test_held_chunks_store_what_chunk_by_chunk_writes_store(backend, tmp_path_factory,
                                                            monkeypatch):  # fmt: skip
    """PostgreSQL holds a load's new rows for one COPY (`pipeline.HOLD_ROWS`); a chunk
    that updates stored rows releases what is held first. Held or written chunk by chunk,
    a file of new rows followed by a change to a stored one leaves the same store."""
    from hub.ingest import pipeline, readers

    lines = hefei_lines()
    head, rows = lines[0], lines[1:]
    first, later = rows[: len(rows) // 2], rows[len(rows) // 2 :]
    changed = first[0].replace("已办结", "处置中")
    assert changed != first[0]
    ids = [line.split(",")[0] for line in rows]
    monkeypatch.setattr(readers, "CHUNK_BYTES", 600)  # a few rows per chunk
    stores = {}
    for hold in (0, 10**9):
        monkeypatch.setattr(pipeline, "HOLD_ROWS", hold)
        engine = seeded_copy(backend, tmp_path_factory)
        run(engine, gbk([head, *first]))
        report = run(engine, gbk([head, *later, changed]))
        assert (report.rows_inserted, report.rows_updated) == (len(later), 1), report.summary()
        with transaction(engine) as s:
            stores[hold] = (
                sorted(s.execute(select(m.Incident.source_id, m.Incident.status,
                                        m.Incident.ts, m.Incident.h3_r8)
                                 .where(m.Incident.source_id.in_(ids))).all()),
                sorted(s.execute(select(m.RecordVersion.source_id, m.RecordVersion.op)
                                 .where(m.RecordVersion.source_id.in_(ids))).all()),
            )  # fmt: skip
        engine.dispose()
    assert stores[0] == stores[10**9]
    assert len(stores[0][0]) == len(rows)
    assert len(stores[0][1]) == len(rows) + 1  # every insert, and the one update


# --- bad input: fatal, nothing stored ---------------------------------------------------


def _fatal(store, data: bytes, code: str, **kw) -> FeedError:
    before = counts(store)
    with pytest.raises(FeedError) as exc:
        run(store, data, **kw)
    assert exc.value.code == code, str(exc.value)
    assert counts(store) == before
    batch = last_batch(store)
    assert batch.status == "failed" and batch.error_code == code
    with transaction(store) as s:
        entry = s.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq.desc())).first()
    assert (entry.action, entry.decision, entry.result_count) == ("ingest", code, 0)
    return exc.value


def test_truncated_file(store):
    data = gbk(hefei_lines())
    _fatal(store, data[: len(data) // 2 - 7], "truncated")


def test_truncated_after_chunks_were_written_stores_nothing(store, monkeypatch):
    """The cut is found on the last chunk while earlier ones are already written (on the
    writer thread): the whole feed still rolls back."""
    from hub.ingest import readers

    monkeypatch.setattr(readers, "CHUNK_BYTES", 2000)  # a dozen rows per chunk
    lines = hefei_lines()
    cut = ",".join(lines[-1].split(",")[:3])  # the last row stops after three fields
    _fatal(store, gbk(lines[:-1]) + cut.encode("gbk"), "truncated")


def test_wrong_encoding(store):
    utf8 = ("\n".join(hefei_lines()) + "\n").encode("utf-8")
    err = _fatal(store, utf8, "bad_encoding")
    assert err.params["line"] == 1 and err.params["encoding"] == "gbk"


def test_wrong_delimiter(store):
    lines = [ln.replace(",", ";") for ln in hefei_lines()]
    err = _fatal(store, gbk(lines), "wrong_delimiter")
    assert err.params["found"] == "';'"


def test_empty_file(store):
    _fatal(store, b"", "empty_file")


def test_header_only(store):
    _fatal(store, gbk(hefei_lines()[:1]), "no_rows")


def test_spec_naming_a_missing_column(store):
    text = load_spec("hefei_incidents_gbk").text.replace('"发生地址"', '"案发地址"')
    err = _fatal(store, gbk(hefei_lines()), "missing_column", spec=parse_spec(text))
    assert "案发地址" in err.params["columns"]


def test_header_with_ten_thousand_columns(store):
    lines = hefei_lines()
    lines[0] += "".join(f",x{i}" for i in range(10_000))
    _fatal(store, gbk(lines), "too_many_columns")


# --- bad input: row problems, the rest loaded -------------------------------------------


def _rejects(store, batch_id: int) -> dict[int, list[dict]]:
    with transaction(store) as s:
        rows = s.scalars(select(m.FeedReject).where(m.FeedReject.batch_id == batch_id)).all()
        return {r.row_number: json.loads(r.reasons) for r in rows}


def test_duplicate_rows_are_counted_and_conflicts_rejected(store):
    lines = hefei_lines()
    total = len(lines) - 1
    lines += [lines[1], lines[2], lines[3].replace("长江西路3号", "长江西路33号")]
    r = run(store, gbk(lines))
    assert r.adds_up and r.rows_read == total + 3
    assert r.rows_duplicate == 2 and r.rows_rejected == 1
    assert _rejects(store, r.batch_id)[len(lines)][0]["code"] == "conflicting_duplicate"


def test_coordinates_outside_the_province_and_the_city(store):
    lines = hefei_lines()
    cells = lines[1].split(",")
    cells[4], cells[5] = "121.4737", "31.2304"  # 上海
    lines[1] = ",".join(cells)
    cells = lines[2].split(",")
    cells[4], cells[5] = "118.3240", "32.3060"  # 滁州
    lines[2] = ",".join(cells)
    r = run(store, gbk(lines))
    assert r.rows_rejected == 2 and r.rows_inserted == len(lines) - 3 and r.adds_up
    reasons = _rejects(store, r.batch_id)
    assert reasons[2][0]["code"] == "outside_province"
    assert reasons[3][0]["code"] == "outside_city" and reasons[3][0]["found"] == "341100"


def test_a_row_with_ten_thousand_columns_is_rejected_with_its_raw_text(store):
    lines = hefei_lines()
    lines[5] = lines[5] + "," * 9_991
    r = run(store, gbk(lines))
    assert r.rows_rejected == 1 and r.rows_inserted == len(lines) - 2 and r.adds_up
    reasons = _rejects(store, r.batch_id)
    assert reasons[6] == [{"code": "field_count", "field": "", "expected": 9, "actual": 10_000}]


def test_row_problems_keep_every_reason(store):
    lines = hefei_lines()
    cells = lines[1].split(",")
    cells[1], cells[2], cells[3] = "2026/13/40 25:00:00", "打架", "严重"
    lines[1] = ",".join(cells)
    cells = lines[2].split(",")
    cells[1] = "2030/01/01 00:00:00"
    lines[2] = ",".join(cells)
    r = run(store, gbk(lines))
    reasons = _rejects(store, r.batch_id)
    assert {x["code"] for x in reasons[2]} == {"bad_datetime", "unknown_code"}
    assert len(reasons[2]) == 3
    assert reasons[3][0]["code"] == "in_future"
    assert r.rows_inserted == len(lines) - 3


def test_plates_agree_with_the_peer_vectors(tmp_path_factory):
    from hub.validate import normalize_plate, plate_problem

    peer = json.loads((PEER / "plates.json").read_text(encoding="utf-8"))
    plates = [p if isinstance(p, str) else p["plate"] for p in peer["valid"] + peer["invalid"]]
    engine = seeded_copy("sqlite", tmp_path_factory)
    feed = "\n".join(
        json.dumps({"gcxh": f"P{i}", "kkbh": "SXT341100-00000001", "hphm": p, "gcsj": 1795190400000,
                    "bd_lng": 118.236851, "bd_lat": 32.23753}, ensure_ascii=False)
        for i, p in enumerate(plates)
    ) + "\n"  # fmt: skip
    # Most rows are bad on purpose: the batch's reject limit is lifted to see every verdict.
    spec = parse_spec("max_reject_share = 1.0\n" + load_spec("chuzhou_sightings_bd09").text)
    r = run(engine, feed.encode(), spec=spec, city="341100")
    rejected = {int(row) - 1 for row in _rejects(engine, r.batch_id)}
    # A feed's plates are normalised first (case, separators), as entered text is: the
    # strict canonical check of the peer vectors then decides.
    expected = {i for i, p in enumerate(plates) if plate_problem(normalize_plate(p))}
    assert rejected == expected


# --- specs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (('dataset = "incidents"', 'dataset = "weather"'), "unknown dataset"),
        (('encoding = "gbk"', 'encoding = "klingon"'), "unknown encoding"),
        (('crs = "gcj02"', 'crs = "mars"'), "unknown coordinate system"),
        (('"盗窃" = "theft"', '"盗窃" = "burglary"'), "not codes of incident_type"),
        (('ts = "报警时间"', 'tss = "报警时间"'), "not a field of incidents"),
        (('type_code = "警情类别"\n', ""), "required field 'type_code'"),
        (("[columns]", "[columns"), "not valid TOML"),
    ],
)
def test_bad_spec_is_refused_with_a_clear_message(change, problem):
    text = load_spec("hefei_incidents_gbk").text.replace(*change)
    with pytest.raises(FeedError, match=problem) as exc:
        parse_spec(text)
    assert exc.value.code == "bad_spec"


def test_every_shipped_spec_is_valid():
    from hub.ingest.spec import shipped_specs

    assert {"standard_incidents", "hefei_incidents_gbk", "wuhu_cases_xlsx"} <= set(shipped_specs())


def test_cli_ingest_reports_and_refuses_in_one_line(store, tmp_path):
    import subprocess
    import sys

    url = store.url.render_as_string(hide_password=False)
    cmd = [sys.executable, "-m", "hub", "--lang", "en", "ingest", "--db", url, "--city",
           "340100", "--dataset", "incidents", "--spec", "hefei_incidents_gbk"]  # fmt: skip
    ok = subprocess.run([*cmd, str(HEFEI)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert ok.returncode == 0 and "inserted 240" in ok.stdout
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    bad = subprocess.run([*cmd, str(empty)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 4 and "Traceback" not in bad.stderr  # 4: failed, nothing stored
    assert bad.stderr.strip() == "error: The file is empty; nothing was stored."
    zh = subprocess.run([sys.executable, "-m", "hub", *cmd[5:], str(empty)], capture_output=True,
                        text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert zh.returncode == 4 and zh.stderr.strip() == "错误：文件是空的，未接入任何数据。"


def test_repeats_are_found_across_chunks_and_within_one(store, monkeypatch):
    """Repeats of a row of an earlier chunk and of the same chunk: a duplicate when equal,
    rejected naming the first row when not; a rejected row is never the first one."""
    from hub.ingest import readers

    monkeypatch.setattr(readers, "CHUNK_BYTES", 2000)  # a dozen rows per chunk
    lines = hefei_lines()
    total = len(lines) - 1
    new = lines[4].split(",")
    new[0] = "HF-NEW-1"
    bad = [*new[:4], "0.0", *new[5:]]  # outside the province: refused, so not the first
    lines += [
        lines[1], lines[1],  # row 2 again, twice, chunks later
        lines[2].replace("长江西路", "长江东路"),  # row 3's key with other content
        ",".join(bad), ",".join(new), ",".join(new),
    ]  # fmt: skip
    r = run(store, gbk(lines))
    assert r.adds_up and r.rows_read == total + 6
    assert (r.rows_inserted, r.rows_duplicate, r.rows_rejected) == (total + 1, 3, 2)
    reasons = _rejects(store, r.batch_id)
    n = len(lines)
    assert [x["code"] for x in reasons[n - 2]] == ["outside_province"]
    assert reasons[n - 3] == [{"code": "conflicting_duplicate", "field": "source_id", "value": "3"}]


def test_a_store_error_on_the_writer_thread_stores_nothing(store, monkeypatch):
    """Chunks are written on a thread while the next is checked: a refusal there (the
    third chunk here) still fails the whole feed, with nothing but the failed batch kept."""
    from sqlalchemy.exc import IntegrityError

    from hub.ingest import pipeline, readers

    monkeypatch.setattr(readers, "CHUNK_BYTES", 2000)  # a dozen rows per chunk
    monkeypatch.setattr(pipeline, "HOLD_ROWS", 0)  # PostgreSQL: each chunk its own COPY
    before = counts(store)
    calls = []
    real_insert = pipeline._Writer.insert

    def refusing(self, frame):
        calls.append(len(frame))
        if len(calls) == 3:
            raise IntegrityError("INSERT", {}, Exception("disk says no"))
        real_insert(self, frame)

    monkeypatch.setattr(pipeline._Writer, "insert", refusing)
    with pytest.raises(FeedError) as err:
        run(store, HEFEI.read_bytes())
    assert err.value.code == "store_refused" and "disk says no" in str(err.value)
    assert len(calls) >= 3, "several chunks were written before the refusal"
    assert counts(store) == before
    batch = last_batch(store)
    assert (batch.status, batch.error_code) == ("failed", "store_refused")


def _forget_districts(engine, city: str) -> None:
    """Take a city's districts out of the store behind its back (foreign keys off), as a
    stale reference table would have it: the boundaries still place rows in them."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        with conn.begin():
            if not sqlite:
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.execute(m.District.__table__.delete().where(m.District.city_code == city))
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def test_a_row_referring_to_a_missing_record_fails_the_batch(store):
    """A batch whose new or changed rows refer to a record the store does not have (here
    districts) is refused whole, nothing of it kept; the check reads the batch's own rows,
    so records stored before the reference went stale do not block an unchanged file."""
    lines = hefei_lines()
    first = run(store, gbk(lines))
    assert first.rows_inserted > 200
    _forget_districts(store, "340100")
    added = [*lines, lines[1].replace("HF11020261120000", "HF11020261129999", 1)]
    errors = [_fatal(store, gbk(added), "store_refused")]
    if store.dialect.name == "sqlite":
        # A changed row is checked whole (PostgreSQL checks only a key the update changes).
        changed = list(lines)
        changed[1] = changed[1].replace("已办结", "处置中")
        errors.append(_fatal(store, gbk(changed), "store_refused"))
        for err in errors:
            assert "incidents: a row refers to a missing record" in str(err)
            assert "districts" in err.params["detail"], err.params
    again = run(store, gbk(lines))
    assert (again.status, again.rows_unchanged) == ("unchanged", first.rows_inserted)


def test_after_write_commits_with_the_batch_or_not_at_all(store):
    """The hook sees the finished batch in its transaction; what it writes commits with
    the rows, and its failure keeps nothing."""
    seen = []

    def note(session, report):
        batch = session.get(m.FeedBatch, report.batch_id)
        seen.append((batch.status, report.rows_inserted))
        session.add(m.FeedReject(batch_id=report.batch_id, row_number=0, raw="{}",
                                 reasons="[]"))  # fmt: skip

    spec = load_spec("hefei_incidents_gbk")
    report = ingest(store, city_code="340100", spec=spec, source=io.BytesIO(gbk(hefei_lines())),
                    source_name="feed.csv", cipher=CIPHER, now=NOW, after_write=note)  # fmt: skip
    assert seen == [("done", report.rows_inserted)] and report.rows_inserted > 200
    assert counts(store)["feed_rejects"] == report.rows_rejected + 1

    def fail(session, report):
        raise KeyError("hook failed")

    before = counts(store)
    lines = hefei_lines()
    lines.append(lines[1].replace("HF11020261120000", "HF11020261129999", 1))  # one more row
    with pytest.raises(FeedError) as err:
        ingest(store, city_code="340100", spec=spec, source=io.BytesIO(gbk(lines)),
               source_name="feed.csv", cipher=CIPHER, now=NOW, after_write=fail)  # fmt: skip
    assert err.value.code == "ingest_failed" and counts(store) == before


def test_rows_of_a_chunk_are_stored_in_time_order(store):
    """Time order makes the time-led indexes cheap to build; the rows are all there."""
    r = run(store, HEFEI.read_bytes())
    with transaction(store) as s:
        rows = s.execute(
            select(m.Incident.ts).where(m.Incident.source_batch_id == r.batch_id)
            .order_by(m.Incident.id).execution_options(policy="validation")
        ).scalars().all()  # fmt: skip
    assert len(rows) == r.rows_inserted > 10
    assert rows == sorted(rows)


def test_a_first_big_load_builds_indexes_and_keys_once_and_keeps_them(store, monkeypatch):
    """A load larger than its table drops the indexes (and on PostgreSQL the foreign
    keys), writes, and builds them back: afterwards the table has all of them."""
    from sqlalchemy import inspect

    from hub.ingest import pipeline

    monkeypatch.setattr(pipeline, "REBUILD_ROWS", 10)
    dropped = []
    real_drop = pipeline._Writer.maybe_drop_indexes

    def spy(self, expected_rows):
        real_drop(self, expected_rows)
        dropped.append((len(self.indexes), len(self.foreign_keys)))

    monkeypatch.setattr(pipeline._Writer, "maybe_drop_indexes", spy)
    r = run(store, HEFEI.read_bytes())
    assert r.rows_inserted > 200
    table = m.Incident.__table__
    pg = store.dialect.name == "postgresql"
    assert dropped == [(len(table.indexes), len(table.foreign_key_constraints) if pg else 0)]
    found = inspect(store)
    assert {ix["name"] for ix in found.get_indexes("incidents")} == {
        ix.name for ix in table.indexes
    }
    assert {fk["name"] for fk in found.get_foreign_keys("incidents")} == {
        fk.name for fk in table.foreign_key_constraints
    }
    again = run(store, HEFEI.read_bytes())
    assert again.status == "unchanged" and again.rows_unchanged == r.rows_inserted


def test_a_record_without_its_optional_identifier_is_stored_not_crashed(store):
    """A help request without a caller phone (the column absent from the record) used to
    crash the write (NaN reached the cipher); it is stored with no phone."""
    lines = [
        {"source_id": "HR-NOPHONE-1", "classification": "internal", "kind": "medical",
         "status": "open", "ts": "2026-11-22T07:00:00+00:00", "lon": 117.28, "lat": 31.86,
         "district_code": "340102", "summary": "（合成）无来电号码"},
        {"source_id": "HR-PHONE-2", "classification": "internal", "kind": "medical",
         "status": "open", "ts": "2026-11-22T07:05:00+00:00", "lon": 117.28, "lat": 31.86,
         "district_code": "340102", "summary": "（合成）有来电号码", "caller_phone": "13912345678"},
    ]  # fmt: skip
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines).encode()
    report = run(store, data, spec="stream_help_requests", name="help.jsonl")
    assert report.status == "done" and report.rows_inserted == 2, report
    with transaction(store) as s:
        phones = dict(s.execute(select(m.HelpRequest.source_id, m.HelpRequest.caller_phone_enc)
                                .execution_options(policy="validation")).all())  # fmt: skip
    assert phones["HR-NOPHONE-1"] is None and phones["HR-PHONE-2"] is not None


def _outcome(engine, r) -> tuple:
    """What a batch did, without the ids and ciphertexts that differ from store to store."""
    with transaction(engine) as s:
        records = sorted(s.execute(
            select(m.Incident.source_id, m.Incident.ts, m.Incident.lon, m.Incident.lat,
                   m.Incident.district_code, m.Incident.h3_r8, m.Incident.type_code,
                   m.Incident.address).execution_options(policy="validation")
        ).all())  # fmt: skip
        versions = sorted(s.execute(
            select(m.RecordVersion.source_id, m.RecordVersion.op, m.RecordVersion.row_number)
        ).all())  # fmt: skip
    rejects = {row: sorted(x["code"] for x in reasons)
               for row, reasons in _rejects(engine, r.batch_id).items()}  # fmt: skip
    counts = (r.rows_read, r.rows_inserted, r.rows_updated, r.rows_unchanged,
              r.rows_duplicate, r.rows_rejected)  # fmt: skip
    return counts, r.reasons, rejects, records, versions


def test_worker_processes_check_chunks_with_the_same_outcome(store, backend, tmp_path,
                                                             monkeypatch):  # fmt: skip
    """Chunks checked in worker processes (`workers`, HUB_INGEST_WORKERS) give a batch the
    same counts, rejects with their reasons, records and history as chunks checked in the
    ingest's own process: a first load with repeats and bad rows, then an update."""
    from hub.ingest import readers
    from hub.reference import load_reference
    from hub.store import upgrade
    from tests.conftest import new_database_url

    monkeypatch.setattr(readers, "CHUNK_BYTES", 2000)  # a dozen rows per chunk
    lines = hefei_lines()
    first = lines + [lines[1], lines[2].replace("长江西路", "长江东路"),
                     ",".join([*lines[4].split(",")[:4], "0.0", *lines[4].split(",")[5:]])]  # fmt: skip
    second = [lines[0], *(ln.replace("长江西路", "长江南路") for ln in lines[1:40])]
    other = make_engine(new_database_url(backend, tmp_path))
    upgrade(other)
    with transaction(other) as session:
        load_reference(session=session)
    outcomes = []
    for engine, workers in ((store, 0), (other, 2)):
        spec = load_spec("hefei_incidents_gbk")
        got = []
        for data, name in ((gbk(first), "a.csv"), (gbk(second), "b.csv")):
            r = ingest(engine, city_code="340100", spec=spec, source=io.BytesIO(data),
                       source_name=name, cipher=CIPHER, now=NOW, workers=workers)  # fmt: skip
            got.append(_outcome(engine, r))
        outcomes.append(got)
    other.dispose()
    (load, update), _ = outcomes
    assert load[0][4:] == (1, 2) and update[0][2] > 0, "repeats, rejects and updates were made"
    assert outcomes[0] == outcomes[1]


def test_ingest_workers_setting_and_default():
    from hub.ingest.pipeline import default_workers

    assert load_settings({"HUB_INGEST_WORKERS": "3"}).ingest_workers == 3
    assert load_settings({}).ingest_workers is None
    assert [default_workers(c) for c in (1, 2, 3, 8)] == [0, 0, 1, 6]
