"""Rejected feed rows are records (issue 14, items 2 and 5): stored encrypted, shown
masked to the province approver who fixes feeds, and with no row content at all to the
admin, who opens no records; every view and export is audited. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from hub import models as m
from hub.ingest.pipeline import ingest
from hub.ingest.spec import load_spec
from hub.service import Hub
from hub.settings import load_settings
from hub.store import transaction
from hub.validate import find_id_numbers, find_phones
from tests.security_support import principal, seeded_copy

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
NAME = "（合成）蚌埠人员九"
GOOD_ID, GOOD_PHONE = "340302199211014305", "13849482548"
BAD_ID = "340302199211014306"  # wrong check digit
ROWS = [
    "姓名;性别;出生日期;身份证号;联系电话;住址",
    f"{NAME};女;19921101;{BAD_ID};{GOOD_PHONE};（合成）蚌山区1号",  # bad ID number
    f"{NAME}二;男;19821101;{GOOD_ID};1384948;（合成）蚌山区2号",  # bad phone
    f"{NAME}三;男;19821101;{GOOD_ID};{GOOD_PHONE};（合成）蚌山区3号;多余",  # field count
    f"{NAME}四;男;19821301;{GOOD_ID};{GOOD_PHONE};（合成）蚌山区4号",  # no such date
]
SECRETS = (NAME, GOOD_ID, BAD_ID, GOOD_PHONE, "1384948", "蚌山区")


@pytest.fixture(params=["sqlite", "postgresql"])
def fed(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    hub = Hub(engine, load_settings())
    report = ingest(engine, city_code="340300", spec=load_spec("bengbu_persons_nokey"),
                    source=io.BytesIO(("\n".join(ROWS) + "\n").encode()), source_name="p.csv",
                    cipher=hub.cipher, now=NOW)  # fmt: skip
    assert report.rows_rejected == 4, report.summary()
    yield hub, report.batch_id
    engine.dispose()


def test_rejected_rows_are_stored_encrypted(fed):
    hub, batch = fed
    with transaction(hub.engine) as s:
        rows = s.execute(select(m.FeedReject.raw, m.FeedReject.reasons)
                         .where(m.FeedReject.batch_id == batch)).all()  # fmt: skip
    assert len(rows) == 4
    for raw, reasons in rows:
        stored = raw + reasons
        assert not any(x in stored for x in SECRETS), stored
        assert not find_id_numbers(stored) and not find_phones(stored)
        assert raw.startswith("⟦raw:")


def test_the_province_approver_sees_rows_masked(fed):
    hub, batch = fed
    frame = hub.feed_rejects(principal(hub.engine, "province.approver"), batch)
    assert list(frame.columns) == ["row_number", "raw", "reasons"] and len(frame) == 4
    text = frame.to_json(force_ascii=False)
    assert not any(x in text for x in (NAME, GOOD_ID, BAD_ID, GOOD_PHONE)), text
    assert "340302********4306" in text and "138****2548" in text and "（*" in text
    first = frame.iloc[0]
    assert json.loads(first.raw)["住址"] == "（合成）蚌山区1号"  # no identifier: as sent
    reason = first.reasons[0]
    assert (reason["code"], reason["field"]) == ("bad_id_number", "id_number")
    assert reason["value"] == "340302********4306"
    codes = [r["code"] for rs in frame.reasons for r in rs]
    assert sorted(codes) == ["bad_datetime", "bad_id_number", "bad_phone", "field_count"]
    date = next(r for rs in frame.reasons for r in rs if r["code"] == "bad_datetime")
    assert date["value"] == "19821301"  # the value at fault, so that the feed can be fixed
    assert not any(x in frame.iloc[2].raw for x in SECRETS)  # a line not split into columns


def test_the_admin_sees_no_row_content(fed):
    hub, batch = fed
    admin = principal(hub.engine, "admin")
    frame = hub.feed_rejects(admin, batch)
    assert list(frame.columns) == ["row_number", "reasons"]
    assert list(frame.row_number) == [2, 3, 4, 5]
    values = {r.get("value") for rs in frame.reasons for r in rs} - {None}
    assert values == {"***"}
    assert {r["field"] for rs in frame.reasons for r in rs} == {
        "id_number", "phone", "", "birth_date"
    }  # fmt: skip
    csv = hub.reject_file(admin, batch).decode("utf-8-sig")
    assert "bad_id_number id_number" in csv and "bad_datetime birth_date" in csv
    assert not any(x in csv for x in (*SECRETS, "19821301")), csv
    with transaction(hub.engine) as s:
        last = s.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq.desc()).limit(2)).all()
    assert [(e.action, e.dataset, e.result_count, e.username) for e in last] == [
        ("export", "feed_rejects", 4, "admin"), ("view", "feed_rejects", 4, "admin"),
    ]  # fmt: skip


def test_a_reject_file_carries_no_formula_a_feed_sent(tmp_path_factory):
    """A rejected line is what a feed sent; in the reject file a spreadsheet opens it is
    text, never a formula (masking only hides digits: the formula would survive it)."""
    import csv

    from ui.feeds import reject_csv

    engine = seeded_copy("sqlite", tmp_path_factory)
    hub = Hub(engine, load_settings())
    lines = [ROWS[0], f"=cmd|' /C calc {GOOD_PHONE}'!A0", "@SUM(1+9)*cmd|' /C calc'!A0",
             f"+{NAME};女;19821301;{GOOD_ID};{GOOD_PHONE};-1+1"]  # fmt: skip
    report = ingest(engine, city_code="340300", spec=load_spec("bengbu_persons_nokey"),
                    source=io.BytesIO(("\n".join(lines) + "\n").encode()), source_name="f.csv",
                    cipher=hub.cipher, now=NOW)  # fmt: skip
    approver = principal(engine, "province.approver")
    for data in (hub.reject_file(approver, report.batch_id),
                 reject_csv(hub, approver, report.batch_id)):  # fmt: skip
        cells = [c for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for c in row]
        assert any("cmd|" in c for c in cells)
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], cells
    engine.dispose()
