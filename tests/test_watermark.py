"""Watermarked exports: the mark survives cutting the footer and header, keeping a few
rows, and re-saving through openpyxl, pandas and the csv module; a forged, altered or
absent mark gives None; every formula payload is neutralised in both formats."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime

import numpy as np
import openpyxl
import pandas as pd
import pytest

from hub.security.watermark import (
    FORMULA_TRIGGERS,
    ZERO_WIDTH,
    Mark,
    identify,
    neutralise,
    write_csv,
    write_xlsx,
)
from tests.conftest import PEER

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
OTHER_KEY = b"another key entirely"
EXPORT_ID = 123_456
FOOTER = "导出人 分析员甲 时间 2026-11-22 16:00 编号 123456"
PAYLOADS = [
    line
    for line in (PEER / "payloads.txt").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
CITIES = ["合肥市", "芜湖市", "蚌埠市", "淮南市", "马鞍山市", "滁州市"]
TYPES = ["盗窃", "诈骗", "交通事故", "纠纷"]


def _frame(n: int = 1000) -> pd.DataFrame:
    rng = random.Random(8)
    return pd.DataFrame(
        {
            "城市": [CITIES[i % len(CITIES)] for i in range(n)],
            "city_code": ["340100" for _ in range(n)],
            "类型": [TYPES[i % len(TYPES)] for i in range(n)],
            "plate": [f"皖A{rng.randrange(10000, 99999)}" for _ in range(n)],
            "count": [rng.randrange(0, 50) for _ in range(n)],
            "delta": [rng.uniform(-5, 5) for _ in range(n)],
            "ts": pd.date_range("2026-11-01", periods=n, freq="h", tz="UTC"),
        }
    )


def _plain(text: str) -> str:
    """A cell as a reader sees it, without the invisible mark."""
    return text.translate({ord(c): None for c in ZERO_WIDTH}) if isinstance(text, str) else text


def _xlsx_rows(data: bytes) -> list[tuple]:
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    return [tuple(row) for row in ws.iter_rows(values_only=True)]


def _xlsx_from_rows(rows: list[tuple], source: bytes | None = None) -> bytes:
    """Rows written back as an openpyxl workbook (keeping the source's properties)."""
    wb = openpyxl.load_workbook(io.BytesIO(source)) if source else openpyxl.Workbook()
    ws = wb.active
    ws.delete_rows(1, ws.max_row)
    for row in rows:
        ws.append(list(row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def _csv_from_rows(rows, encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def _resave_xlsx(data: bytes) -> bytes:
    """What a spreadsheet does on open and save: parse everything, write it anew."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def mark() -> Mark:
    return Mark.sign(EXPORT_ID, KEY)


@pytest.fixture(scope="module")
def csv_export(mark) -> bytes:
    return write_csv(_frame(), mark, FOOTER)


@pytest.fixture(scope="module")
def xlsx_export(mark) -> bytes:
    return write_xlsx(_frame(), mark, FOOTER)


def _found(data: bytes, name: str = "leak") -> int | None:
    result = identify(data, name, KEY)
    return result.export_id if result else None


# --- round trip and the visible footer -------------------------------------------------


def test_round_trip_names_the_export(csv_export, xlsx_export):
    for data, name in ((csv_export, "a.csv"), (xlsx_export, "a.xlsx")):
        result = identify(data, name, KEY)
        assert result is not None and result.export_id == EXPORT_ID
        assert result.other_ids == () and result.filename == name
    assert identify(xlsx_export, "a.xlsx", KEY).channels == ("cells", "properties")


def test_visible_footer_is_the_last_line(csv_export, xlsx_export):
    assert _plain(_csv_rows(csv_export)[-1][0]) == FOOTER
    last = _xlsx_rows(xlsx_export)[-1]
    assert _plain(last[0]) == FOOTER and all(v is None for v in last[1:])


def test_values_look_the_same_and_keep_their_types(csv_export, xlsx_export):
    frame = _frame()
    rows = _xlsx_rows(xlsx_export)
    assert [_plain(c) for c in rows[0]] == list(frame.columns)
    first = rows[1]
    assert _plain(first[0]) == "合肥市" and _plain(first[2]) == "盗窃"
    # Digits-only codes and numbers are not marked: they stay what they were.
    assert first[1] == "340100" and first[4] == frame["count"][0]
    assert first[5] == pytest.approx(frame["delta"][0])
    # Stored in UTC, exported in Asia/Shanghai local time.
    assert first[6] == datetime(2026, 11, 1, 8, 0)
    csv_first = _csv_rows(csv_export)[1]
    assert csv_first[1] == "340100" and csv_first[6] == "2026-11-01 08:00:00"
    assert _plain(csv_first[3]) == frame["plate"][0]


def test_equal_values_stay_equal_inside_the_file(xlsx_export):
    """Every text cell carries the same mark, so a pivot on 城市 shows each city once."""
    cities = {row[0] for row in _xlsx_rows(xlsx_export)[1:-1]}
    assert len(cities) == len(CITIES)


# --- what the mark survives ------------------------------------------------------------


def test_csv_survives_cutting_footer_header_and_both(csv_export):
    lines = csv_export.decode("utf-8-sig").splitlines(keepends=True)
    for kept in (lines[:-1], lines[1:], lines[1:-1]):
        assert _found("".join(kept).encode("utf-8")) == EXPORT_ID


def test_xlsx_survives_cutting_footer_header_and_both(xlsx_export):
    rows = _xlsx_rows(xlsx_export)
    for kept in (rows[:-1], rows[1:], rows[1:-1]):
        assert _found(_xlsx_from_rows(kept)) == EXPORT_ID


def test_xlsx_survives_resave_and_deleting_rows_in_place(xlsx_export):
    assert _found(_resave_xlsx(xlsx_export)) == EXPORT_ID
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_export))
    ws = wb.active
    ws.delete_rows(ws.max_row)
    ws.delete_rows(1)
    out = io.BytesIO()
    wb.save(out)
    result = identify(_resave_xlsx(out.getvalue()), "cut.xlsx", KEY)
    assert result.export_id == EXPORT_ID and result.channels == ("cells", "properties")


def test_csv_survives_pandas_and_csv_module_resave(csv_export):
    frame = pd.read_csv(io.BytesIO(csv_export))
    assert _found(frame.to_csv(index=False).encode("utf-8")) == EXPORT_ID
    assert _found(_csv_from_rows(_csv_rows(csv_export), "utf-8-sig")) == EXPORT_ID
    # Read without the header (as if it had been cut), filtered, written back as TSV.
    body = pd.read_csv(
        io.BytesIO(csv_export), header=None, skiprows=1, skipfooter=1, engine="python"
    )
    tsv = body[body[4] > 25].to_csv(index=False, header=False, sep="\t")
    assert _found(tsv.encode("utf-8")) == EXPORT_ID


def test_csv_to_xlsx_and_xlsx_to_csv(csv_export, xlsx_export):
    as_xlsx = io.BytesIO()
    pd.read_csv(io.BytesIO(csv_export)).to_excel(as_xlsx, index=False)
    assert _found(as_xlsx.getvalue()) == EXPORT_ID
    as_csv = pd.read_excel(io.BytesIO(xlsx_export)).to_csv(index=False)
    assert _found(as_csv.encode("utf-8")) == EXPORT_ID


def test_pandas_resave_drops_the_property_but_not_the_cells(xlsx_export):
    out = io.BytesIO()
    pd.read_excel(io.BytesIO(xlsx_export)).to_excel(out, index=False)
    result = identify(out.getvalue(), "resaved.xlsx", KEY)
    assert result.export_id == EXPORT_ID and result.channels == ("cells",)


def test_twenty_of_a_thousand_rows_shuffled_and_resaved(csv_export, xlsx_export):
    rng = random.Random(20)
    body = _csv_rows(csv_export)[1:-1]
    kept = rng.sample(body, 20)
    assert _found(_csv_from_rows(kept)) == EXPORT_ID
    xbody = _xlsx_rows(xlsx_export)[1:-1]
    assert _found(_resave_xlsx(_xlsx_from_rows(rng.sample(xbody, 20)))) == EXPORT_ID


def test_one_text_column_alone_is_enough(csv_export):
    plates = [[row[3]] for row in _csv_rows(csv_export)[1:21]]
    assert _found(_csv_from_rows(plates)) == EXPORT_ID


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_csv_re_encoded_keeping_the_characters(csv_export, encoding):
    text = csv_export.decode("utf-8-sig")
    assert _found(text.encode(encoding)) == EXPORT_ID


def test_gbk_resave_loses_the_mark_and_says_so(csv_export):
    """GBK has no zero-width characters: a spreadsheet writes '?' for them. The Chinese
    text survives, the mark does not, and the answer is None rather than a guess."""
    gbk = csv_export.decode("utf-8-sig").encode("gbk", errors="replace")
    assert "合肥市" in gbk.decode("gbk")
    assert identify(gbk, "gbk.csv", KEY) is None


# --- what is refused ---------------------------------------------------------------------


def test_another_key_or_a_forged_mark_is_refused(csv_export, mark):
    assert identify(csv_export, "a.csv", OTHER_KEY) is None
    # A leaker who moves the id but cannot compute the tag.
    forged = Mark(EXPORT_ID + 1, mark.tag)
    text = csv_export.decode("utf-8-sig").replace(mark.invisible(), forged.invisible())
    assert identify(text.encode("utf-8"), "forged.csv", KEY) is None
    # One symbol changed in every mark.
    flipped = mark.invisible()[:-1] + next(c for c in ZERO_WIDTH if c != mark.invisible()[-1])
    altered = csv_export.decode("utf-8-sig").replace(mark.invisible(), flipped)
    assert identify(altered.encode("utf-8"), "altered.csv", KEY) is None


def test_truncated_marks_are_not_read(csv_export, mark):
    text = csv_export.decode("utf-8-sig").replace(mark.invisible(), mark.invisible()[:-4])
    assert identify(text.encode("utf-8"), "short.csv", KEY) is None


def test_a_forged_property_alone_is_refused(xlsx_export, mark):
    rows = [[_plain(v) for v in row] for row in _xlsx_rows(xlsx_export)]
    wb = openpyxl.load_workbook(io.BytesIO(_xlsx_from_rows(rows, source=xlsx_export)))
    prop = wb.custom_doc_props.props[0]
    assert identify(_save(wb), "stripped.xlsx", KEY).channels == ("properties",)
    prop.value = Mark(EXPORT_ID + 1, mark.tag).token()
    assert identify(_save(wb), "forged.xlsx", KEY) is None


def _save(wb) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_unrelated_files_match_nothing():
    frame = _frame(50).assign(ts=lambda f: f["ts"].dt.tz_localize(None))
    xlsx = io.BytesIO()
    frame.to_excel(xlsx, index=False)
    assert identify(frame.to_csv(index=False).encode("utf-8"), "mine.csv", KEY) is None
    assert identify(xlsx.getvalue(), "mine.xlsx", KEY) is None
    assert identify(b"", "empty.csv", KEY) is None
    assert identify(bytes(range(256)) * 4, "noise.bin", KEY) is None
    assert identify(b"PK\x03\x04 not really a zip", "bad.xlsx", KEY) is None
    # Zero-width characters that are not a mark (ordinary text may hold a few).
    assert identify("a\u200bb,\u200d\u200d\n".encode(), "zw.csv", KEY) is None


def test_two_exports_pasted_together_name_both():
    a, b = Mark.sign(7, KEY), Mark.sign(8, KEY)
    rows_a = _csv_rows(write_csv(_frame(30), a, "编号 7"))[1:-1]
    rows_b = _csv_rows(write_csv(_frame(10), b, "编号 8"))[1:-1]
    result = identify(_csv_from_rows(rows_a + rows_b), "merged.csv", KEY)
    assert (result.export_id, result.other_ids) == (7, (8,))


# --- formula payloads, Chinese text, edge frames -------------------------------------------


def _payload_frame() -> pd.DataFrame:
    return pd.DataFrame({"payload": PAYLOADS, "城市": ["合肥市"] * len(PAYLOADS)})


def _assert_safe(cells) -> None:
    for cell in cells:
        if isinstance(cell, str):
            assert not cell.startswith(FORMULA_TRIGGERS), repr(cell)


def test_payloads_are_neutralised_in_csv_and_xlsx(mark):
    frame = _payload_frame()
    # Payloads as values, as a column name and as the footer.
    frame.columns = ['=HYPERLINK("http://x")', "城市"]
    data_csv = write_csv(frame, mark, "=cmd|' /C calc'!A0")
    data_xlsx = write_xlsx(frame, mark, "@SUM(1+1)")
    csv_cells = [c for row in _csv_rows(data_csv) for c in row]
    xlsx_cells = [c for row in _xlsx_rows(data_xlsx) for c in row]
    _assert_safe(csv_cells)
    _assert_safe(xlsx_cells)
    ws = openpyxl.load_workbook(io.BytesIO(data_xlsx)).active
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    written = [_plain(row[0]) for row in _csv_rows(data_csv)[1:-1]]
    for payload, cell in zip(PAYLOADS, written, strict=True):
        expected = "'" + payload if payload.startswith(FORMULA_TRIGGERS) else payload
        assert cell == expected
    assert sum(p.startswith(FORMULA_TRIGGERS) for p in PAYLOADS) >= 10
    assert _found(data_csv) == _found(data_xlsx) == EXPORT_ID


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+86 13800000000", "'+86 13800000000"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("-1e5", "-1e5"),
        ("-\u0663", "'-\u0663"),  # an Arabic-Indic digit is no number to a spreadsheet
        ("-", "'-"),
        ("'=1", "'=1"),
        ("合肥市", "合肥市"),
        (-5, -5),
        (-2.5, -2.5),
        (None, None),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected


def test_negative_numbers_stay_numbers(mark):
    frame = pd.DataFrame({"name": ["甲", "乙"], "amount": [-5, 3], "text": ["-7", "=A1"]})
    rows = _xlsx_rows(write_xlsx(frame, mark, FOOTER))
    assert rows[1][1] == -5 and rows[1][2] == "-7" and _plain(rows[2][2]) == "'=A1"
    csv_rows = _csv_rows(write_csv(frame, mark, FOOTER))
    assert csv_rows[1][1] == "-5" and csv_rows[1][2] == "-7" and _plain(csv_rows[2][2]) == "'=A1"


def test_chinese_text_is_preserved(mark):
    frame = pd.DataFrame(
        {"姓名": ["张*", "欧阳**"], "地址": ["合肥市蜀山区长江西路", "滁州市琅琊区"]}
    )
    for data in (write_csv(frame, mark, FOOTER), write_xlsx(frame, mark, FOOTER)):
        rows = _xlsx_rows(data) if data.startswith(b"PK") else _csv_rows(data)
        assert [[_plain(c) for c in row] for row in rows[:3]] == [
            ["姓名", "地址"],
            ["张*", "合肥市蜀山区长江西路"],
            ["欧阳**", "滁州市琅琊区"],
        ]


def test_empty_frame_is_marked_by_header_and_footer(mark):
    """No rows: the header and the footer still carry the mark; cut both and nothing is
    left to identify (nor anything leaked)."""
    empty = pd.DataFrame(columns=["城市", "类型"])
    data = write_csv(empty, mark, FOOTER)
    lines = data.decode("utf-8-sig").splitlines(keepends=True)
    assert len(lines) == 2
    assert _found(data) == _found(lines[0].encode()) == _found(lines[1].encode()) == EXPORT_ID
    assert _found(write_xlsx(empty, mark, FOOTER)) == EXPORT_ID


def test_numbers_only_without_header_and_footer_carry_no_mark(mark):
    """A documented limit: digits carry nothing, so this answers None."""
    frame = pd.DataFrame({"count": [1, 2, 3], "share": [0.5, 0.25, 0.25]})
    lines = write_csv(frame, mark, FOOTER).decode("utf-8-sig").splitlines(keepends=True)
    assert _found("".join(lines[:-1]).encode()) == EXPORT_ID
    assert _found("".join(lines[1:-1]).encode()) is None


def test_export_ids_out_of_range_and_empty_keys_are_refused():
    with pytest.raises(ValueError):
        Mark.sign(-1, KEY)
    with pytest.raises(ValueError):
        Mark.sign(2**32, KEY)
    with pytest.raises(ValueError):
        Mark.sign(1, b"")
    assert Mark.sign(2**32 - 1, KEY).verifies(KEY)
    assert Mark.sign(np.int64(EXPORT_ID), KEY) == Mark.sign(EXPORT_ID, KEY)


def test_control_characters_do_not_break_the_workbook(mark):
    frame = pd.DataFrame(
        {"note": ["备注\x00结束", "行\x07响铃"], "when": [datetime(2026, 11, 1, tzinfo=UTC)] * 2}
    )
    rows = _xlsx_rows(write_xlsx(frame, mark, FOOTER))
    assert _plain(rows[1][0]) == "备注\ufffd结束" and rows[1][1] == datetime(2026, 11, 1, 8, 0)
