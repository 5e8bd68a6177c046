"""Record history and undo (issue 18): every change a batch makes keeps the previous
version; a rollback restores the store row for row, refuses when a later batch changed
the same records, and is audited; a dry run stores nothing; lineage reaches the line."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import func, select

from hub import models as m
from hub.ingest.history import lineage, rollback
from hub.ingest.pipeline import ingest
from hub.ingest.spec import FeedError, load_spec
from hub.security import audit
from hub.security.crypto import FieldCipher
from hub.settings import load_settings
from hub.store import transaction
from tests.conftest import ROOT
from tests.security_support import seeded_copy

SAMPLES = ROOT / "data" / "samples"
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
CIPHER = FieldCipher.from_settings(load_settings())
SPEC = load_spec("standard_incidents")
PHONE = "13812345678"


def feed(engine, data: bytes, *, spec=SPEC, city="340100", **kw):
    return ingest(engine, city_code=city, spec=spec, source=io.BytesIO(data),
                  source_name="feed.csv", cipher=CIPHER, now=NOW, **kw)  # fmt: skip


def standard_lines() -> list[str]:
    return (SAMPLES / "standard_incidents.csv").read_text(encoding="utf-8").splitlines()


def file_a() -> bytes:
    """The sample, with a phone in one narrative (sealed when stored)."""
    lines = standard_lines()
    lines[1] = lines[1].replace("标准格式示例", f"报警人{PHONE}称")
    return ("\n".join(lines) + "\n").encode()


def file_b() -> bytes:
    """A wrong B: every time eight hours later, one summary edited, two new incidents."""
    frame = pd.read_csv(io.BytesIO(file_a()), dtype=str, keep_default_na=False)
    for c in ("ts", "reported_at"):
        frame[c] = (pd.to_datetime(frame[c]) + pd.Timedelta(hours=8)).map(lambda t: t.isoformat())
    frame.loc[2, "summary"] = f"（合成）改写，回电{PHONE}"
    extra = frame.iloc[:2].copy()
    extra["source_id"] = ["STD-HF-NEW-1", "STD-HF-NEW-2"]
    return pd.concat([frame, extra]).to_csv(index=False).encode()


def snapshot(engine) -> dict:
    """Every record table row for row, and the record counts."""
    out = {}
    with engine.connect() as conn:
        for mdl in m.RECORD_MODELS:
            t = mdl.__table__
            out[t.name] = [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))]
    return out


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_rollback_restores_the_store_row_for_row(backend, tmp_path_factory):
    engine = seeded_copy(backend, tmp_path_factory)
    a = feed(engine, file_a())
    assert a.status == "done" and a.rows_inserted == 40
    after_a = snapshot(engine)
    # The operator forces the wrong B past the guardrail that catches it.
    b = feed(engine, file_b(), accept=("time_offset",))
    assert b.rows_updated == 40 and b.rows_inserted == 2, b.summary()
    assert b.changed_fields["ts"] == 40 and b.changed_fields["summary"] == 1
    assert [(f["code"], f["field"], f["hours"], f["accepted"]) for f in b.findings] == [
        ("time_offset", "ts", 8, True),
        ("time_offset", "reported_at", 8, True),
    ]
    assert snapshot(engine) != after_a
    with transaction(engine) as s:
        versions = s.execute(select(m.RecordVersion.op, func.count()).where(
            m.RecordVersion.batch_id == b.batch_id).group_by(m.RecordVersion.op)).all()  # fmt: skip
        assert dict(versions) == {"insert": 2, "update": 40}
        stored = s.scalar(select(m.RecordVersion.previous).where(
            m.RecordVersion.batch_id == b.batch_id, m.RecordVersion.op == "update",
            m.RecordVersion.source_id == "STD-HF-000001"))  # fmt: skip
        assert PHONE not in stored and "⟦" in stored  # history keeps the narrative sealed
    with transaction(engine) as s:
        done = rollback(s, b.batch_id, principal=None, now=NOW)
    assert (done.deleted, done.restored) == (2, 40)
    assert snapshot(engine) == after_a
    with transaction(engine) as s:
        assert s.get(m.FeedBatch, b.batch_id).status == "rolled_back"
        entry = s.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq.desc())).first()
        assert entry.action == "feed_rollback" and entry.result_count == 42
        assert audit.verify(s).ok
        with pytest.raises(FeedError) as again:
            rollback(s, b.batch_id, principal=None, now=NOW)
        assert again.value.code == "nothing_to_roll_back"


def test_rollback_refused_when_a_later_batch_changed_the_records(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    feed(engine, file_a())
    b = feed(engine, file_b(), accept=("time_offset",))
    lines = file_b().decode().splitlines()
    lines[3] = lines[3].replace("open", "closed", 1)
    c = feed(engine, ("\n".join(lines) + "\n").encode())
    assert c.rows_updated == 1
    with transaction(engine) as s, pytest.raises(FeedError) as refused:
        rollback(s, b.batch_id, principal=None, now=NOW)
    assert refused.value.code == "rollback_conflict"
    assert f"changed by batch {c.batch_id}: 1 (e.g. STD-HF-000003)" in str(refused.value)
    # Undo in order: C, then B.
    with transaction(engine) as s:
        rollback(s, c.batch_id, principal=None, now=NOW)
    with transaction(engine) as s:
        assert rollback(s, b.batch_id, principal=None, now=NOW).restored == 40


def test_unchanged_reingest_writes_no_history_and_lineage_reaches_the_line(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    a = feed(engine, file_a())
    again = feed(engine, file_a())
    assert again.status == "unchanged"
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(m.RecordVersion).where(
            m.RecordVersion.batch_id == again.batch_id)) == 0  # fmt: skip
        steps = lineage(s, "incidents", "340100", "STD-HF-000005")
    assert [(x["batch_id"], x["op"], x["row_number"]) for x in steps] == [(a.batch_id, "insert", 6)]
    assert steps[0]["source_name"] == "feed.csv" and steps[0]["spec"] == SPEC.text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_dry_run_stores_nothing_and_previews_the_changes(backend, tmp_path_factory):
    engine = seeded_copy(backend, tmp_path_factory)
    feed(engine, file_a())
    before = snapshot(engine)
    with transaction(engine) as s:
        batches = s.scalar(select(func.count()).select_from(m.FeedBatch))
        entries = s.scalar(select(func.count()).select_from(m.AuditEntry))
    lines = file_a().decode().splitlines()
    lines[4] = lines[4].replace("theft", "fraud")
    lines[5] = lines[5].replace("STD-HF-000005", "")  # a row without its key: rejected
    r = feed(engine, ("\n".join(lines) + "\n").encode(), dry_run=True)
    assert r.dry_run and r.status == "done" and r.batch_id is not None
    assert (r.rows_updated, r.rows_unchanged, r.rows_rejected) == (1, 38, 1)
    assert r.preview["changes"]["type_code"] == [
        {"source_id": "STD-HF-000004", "before": "theft", "after": "fraud"}
    ]
    assert r.preview["rejects"][0]["row_number"] == 6
    assert r.preview["rejects"][0]["reasons"][0]["code"] == "missing_key"
    wrong = feed(engine, file_b(), dry_run=True)  # would fail: reported, not raised
    assert wrong.status == "failed" and wrong.error_code == "time_offset"
    assert wrong.rows_updated == 40 and "+8 h" in wrong.error
    assert snapshot(engine) == before
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(m.FeedBatch)) == batches
        assert s.scalar(select(func.count()).select_from(m.AuditEntry)) == entries


def test_feed_desk_previews_by_role_and_rolls_back_audited(tmp_path_factory):
    from hub.security.errors import AccessDenied
    from hub.service import Hub
    from tests.security_support import principal

    engine = seeded_copy("sqlite", tmp_path_factory)
    hub = Hub(engine, load_settings())
    prov, admin = principal(engine, "province.approver"), principal(engine, "admin")
    a = hub.feeds.ingest(prov, city="340100", spec_name="standard_incidents",
                         filename="a.csv", data=file_a())  # fmt: skip
    lines = file_a().decode().splitlines()
    lines[2] = lines[2].replace("标准格式示例", f"回电{PHONE}")
    edited = ("\n".join(lines) + "\n").encode()
    kw = {"city": "340100", "spec_name": "standard_incidents", "filename": "b.csv",
          "data": edited, "dry_run": True}  # fmt: skip
    seen = hub.feeds.ingest(prov, **kw).preview["changes"]["summary"][0]
    assert "138****5678" in seen["after"] and PHONE not in seen["after"]
    assert hub.feeds.ingest(admin, **kw).preview["changes"]["summary"][0]["after"] == "***"
    b = hub.feeds.ingest(prov, **{**kw, "dry_run": False})
    assert b.rows_updated == 1 and hub.feeds.batch(admin, b.batch_id)["versions"]["update"] == 1
    with pytest.raises(AccessDenied):
        hub.feeds.rollback(principal(engine, "officer.hf"), b.batch_id)
    assert hub.feeds.rollback(admin, b.batch_id).restored == 1
    with pytest.raises(FeedError) as exc:
        hub.feeds.rollback(admin, a.batch_id + 10_000)
    assert exc.value.code == "unknown_batch"
    with transaction(engine) as s:
        last = s.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq.desc())).first()
    assert (last.action, last.decision) == ("feed_rollback_refused", "unknown_batch")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_retention_purges_the_history_of_the_records_it_purges(backend, tmp_path_factory):
    """History is records: when retention removes a record, its versions (with their
    sealed content) go too; history of records still kept stays."""
    from datetime import timedelta

    from hub.retention import apply_retention

    engine = seeded_copy(backend, tmp_path_factory)
    feed(engine, file_a())

    def versions_and_records() -> tuple[set, set]:
        with transaction(engine) as s:
            keys = set(
                s.execute(
                    select(m.RecordVersion.city_code, m.RecordVersion.source_id).where(
                        m.RecordVersion.dataset == "incidents"
                    )
                ).all()
            )
            stored = set(
                s.execute(
                    select(m.Incident.city_code, m.Incident.source_id)
                    .where(m.Incident.source_id.like("STD-%"))
                    .execution_options(policy="validation")
                ).all()
            )
            return keys, stored

    keys, stored = versions_and_records()
    assert keys and keys == stored
    with transaction(engine) as s:
        times = sorted(
            s.scalars(
                select(m.Incident.ts)
                .where(m.Incident.source_id.like("STD-%"))
                .execution_options(policy="validation")
            )
        )
    # one day kept, two days after the feed's newest record (PostgreSQL drops whole days)
    with transaction(engine) as s:
        apply_retention(s, {"incidents": 1}, now=times[-1] + timedelta(days=2, seconds=1))
    left, kept = versions_and_records()
    assert not kept, "the feed's records expired"
    assert left == kept
    engine.dispose()
