"""Uploads are bounded before they cost memory or write anything: the size as sent, the
size once an XLSX is unpacked, the width of a sheet and the number of rows (settings
HUB_UPLOAD_MAX_MB, HUB_UPLOAD_MAX_UNPACKED_MB, HUB_UPLOAD_MAX_ROWS); a refused file
leaves the store as it was, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from hub import models as m
from hub.ingest.readers import Limits, read_chunks
from hub.ingest.spec import FeedError, load_spec
from hub.security.errors import HubError
from hub.service import Hub
from hub.settings import load_settings
from hub.store import transaction
from tests.conftest import ROOT
from tests.security_support import principal, seeded_copy

SAMPLES = ROOT / "data" / "samples"
XLSX_SPEC = load_spec("wuhu_cases_xlsx")


def _counts(engine) -> tuple[int, int]:
    with transaction(engine) as s:
        return (s.scalar(select(func.count()).select_from(m.Case)),
                s.scalar(select(func.count()).select_from(m.FeedReject)))  # fmt: skip


def _sample_rows() -> tuple[list, list[list]]:
    from openpyxl import load_workbook

    wb = load_workbook(SAMPLES / "wuhu_cases.xlsx", read_only=True)
    rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    wb.close()
    header = next(r for r in rows if any(isinstance(v, str) and v for v in r))
    return header, rows[rows.index(header) + 1 :]


def _workbook(rows: list[list], *, far_cell: tuple[int, int] | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = XLSX_SPEC.sheet or ws.title
    for r in rows:
        ws.append(r)
    if far_cell:
        ws.cell(row=far_cell[0], column=far_cell[1], value="x")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _bomb(data: bytes, megabytes: int) -> bytes:
    """The workbook with one more part of `megabytes` of zeros (a few kB compressed)."""
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/media/padding.bin", b"\0" * (megabytes << 20))
    return out.getvalue()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    yield engine
    engine.dispose()


def _hub(engine, **limits) -> Hub:
    return Hub(engine, dataclasses.replace(load_settings(), **limits))


def _refused(engine, hub: Hub, data: bytes, code: str, name: str = "cases.xlsx") -> None:
    before = _counts(engine)
    with pytest.raises(HubError) as caught:
        hub.ingest_feed(principal(engine, "province.approver"), city="340200",
                        spec_name="wuhu_cases_xlsx", filename=name, data=data)  # fmt: skip
    assert caught.value.code == code, caught.value
    assert _counts(engine) == before  # nothing stored, not even rejected rows


def test_a_file_larger_than_the_limit_is_refused_unread(env) -> None:
    header, rows = _sample_rows()
    data = _workbook([header, *rows])
    _refused(env, _hub(env, upload_max_mb=len(data) / (1 << 20) / 2), data, "file_too_large")


def test_a_zip_bomb_is_refused_before_it_is_unpacked(env) -> None:
    header, rows = _sample_rows()
    bomb = _bomb(_workbook([header, *rows]), 64)
    assert len(bomb) < 1 << 20  # well under the upload limit as sent
    _refused(env, _hub(env, upload_max_unpacked_mb=16), bomb, "unpacked_too_large")


def test_a_sheet_wider_than_any_feed_is_refused(env) -> None:
    header, rows = _sample_rows()
    data = _workbook([header, *rows], far_cell=(3, 16_000))
    _refused(env, _hub(env), data, "too_many_columns")


def test_more_rows_than_the_limit_store_nothing(env) -> None:
    header, rows = _sample_rows()
    many = [header, *(rows * (60 // len(rows) + 1))]
    _refused(env, _hub(env, upload_max_rows=len(many) - 5), _workbook(many), "too_many_rows")


def test_a_file_within_the_limits_still_loads(env) -> None:
    header, rows = _sample_rows()
    before = _counts(env)
    report = _hub(env, upload_max_rows=len(rows) + 1).ingest_feed(
        principal(env, "province.approver"), city="340200", spec_name="wuhu_cases_xlsx",
        filename="cases.xlsx", data=_workbook([header, *rows]),
    )  # fmt: skip
    assert report.status in ("done", "unchanged") and report.rows_read == len(rows)
    assert _counts(env)[0] >= before[0]


def test_a_value_right_of_the_header_is_refused_not_dropped() -> None:
    header, rows = _sample_rows()
    data = _workbook([header, rows[0], [*rows[1], None, "多出的一列"]])
    chunks = list(read_chunks(io.BytesIO(data), XLSX_SPEC, Limits()))
    problems = [p for c in chunks for p in c.problems]
    assert [p.code for p in problems] == ["field_count"]


def test_reader_limits_come_from_settings() -> None:
    s = load_settings({"HUB_UPLOAD_MAX_MB": "2", "HUB_UPLOAD_MAX_ROWS": "10"})
    assert Limits.from_settings(s) == Limits(max_bytes=2 << 20, max_unpacked_bytes=300 << 20,
                                             max_rows=10)  # fmt: skip
    with pytest.raises(FeedError):
        list(read_chunks(io.BytesIO(b"x" * 100), XLSX_SPEC, Limits(max_bytes=10)))
