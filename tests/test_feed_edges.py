"""Feeds from other systems at the edges an outside tester found: a file-level problem is
refused with a clear reason and nothing stored, a bad value is a reject of its row, and
nothing unforeseen reaches the person as a trace. Both backends."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from hub import models as m
from hub.ingest import pipeline
from hub.ingest.pipeline import ingest
from hub.ingest.spec import FeedError, load_spec
from hub.live.consumer import stream_spec
from hub.security.crypto import FieldCipher
from hub.settings import ROOT, load_settings
from hub.store import transaction
from tests.bus_support import HEFEI, incident

SAMPLE = (ROOT / "data/samples/standard_incidents.csv").read_bytes()
CIPHER = FieldCipher.from_settings(load_settings())


def _ingest(store, data: bytes, spec: str = "standard_incidents", city: str = HEFEI):
    spec_ = (
        stream_spec(spec.removeprefix("stream_")) if spec.startswith("stream_") else load_spec(spec)
    )
    return ingest(store, city_code=city, spec=spec_, source=io.BytesIO(data),
                  source_name="edge", cipher=CIPHER)  # fmt: skip


def _incidents(store) -> int:
    with transaction(store) as s:
        return s.scalar(select(func.count()).select_from(m.Incident))


def test_lines_ending_in_cr_alone_are_refused_with_the_reason(store):
    with pytest.raises(FeedError) as err:
        _ingest(store, SAMPLE.replace(b"\n", b"\r"))
    assert err.value.code == "bad_file" and "CR" in str(err.value.params)
    assert _incidents(store) == 0


def test_a_mapped_column_named_twice_is_refused(store):
    lines = SAMPLE.decode("utf-8").splitlines()
    doubled = [f"{line},{line.rsplit(',', 1)[1]}" for line in lines]
    with pytest.raises(FeedError) as err:
        _ingest(store, ("\n".join(doubled) + "\n").encode())
    assert err.value.code == "duplicate_column" and err.value.params["columns"] == "summary"
    assert _incidents(store) == 0


def test_geojson_with_a_byte_order_mark_is_read(store):
    data = (ROOT / "data/samples/wuhu_help_requests.geojson").read_bytes()
    report = _ingest(store, b"\xef\xbb\xbf" + data, "wuhu_help_geojson", city="340200")
    assert report.rows_inserted > 0


def test_times_no_clock_holds_are_rejects_of_their_rows(store):
    """A signed year, a year 9999 beside nanoseconds, and day-first text in a column that
    mixes zones: each row is judged alone, in the spec's format, never guessed."""
    lines = SAMPLE.decode("utf-8").splitlines()
    head, rows = lines[0], lines[1:7]
    stamps = ["-2026-11-21", "2026-11-21T11:43:00.123456789+08:00", "9999-12-31T23:59:59Z",
              "2026-11-21T11:43:00.5Z", "05/11/2026 10:00", "2026-11-21T03:43:00+00:00"]  # fmt: skip
    out = [head]
    for row, stamp in zip(rows, stamps, strict=True):
        cells = row.split(",")
        cells[5] = stamp
        out.append(",".join(cells))
    report = _ingest(store, ("\n".join(out) + "\n").encode())
    assert report.status == "done"
    assert report.rows_inserted == 3 and report.reasons == {"bad_datetime": 2, "in_future": 1}


def test_json_values_no_text_can_hold_are_rejects_of_their_rows(store):
    bodies = [incident(1), incident(2).replace(b'"test 2"', b'"\\ud800"'),
              incident(3).replace(b'"severity": 2', b'"severity": ' + b"9" * 5000)]  # fmt: skip
    report = _ingest(store, b"\n".join(bodies) + b"\n", "stream_incidents")
    assert report.rows_inserted == 1 and report.reasons == {"not_json": 2}


def test_an_unforeseen_fault_is_a_refused_batch_recorded_never_a_trace(store, monkeypatch):
    def broken(*a, **k):
        raise NotImplementedError("something no feed should reach")

    monkeypatch.setattr(pipeline, "_map", broken)
    with pytest.raises(FeedError) as err:
        _ingest(store, SAMPLE)
    assert err.value.code == "ingest_failed" and "something no feed" in str(err.value)
    with transaction(store) as s:
        batch = s.scalars(select(m.FeedBatch).order_by(m.FeedBatch.id.desc())).first()
    assert batch.status == "failed" and _incidents(store) == 0


def _with(column: int, value: str) -> bytes:
    """The sample with one column's value replaced in every row."""
    lines = SAMPLE.decode("utf-8").splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[column] = value
        out.append(",".join(cells))
    return ("\n".join(out) + "\n").encode()


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [(11, "", "field_emptied"),  # the summaries
     (4, "", "field_reset"),  # the status, defaulted back to open
     (5, "2026-11-29T00:00:00+00:00", "time_collapse"),  # one stamp for every time
     (7, "117.227000", "position_collapse")],  # one spot for every point (with 8)
)  # fmt: skip
def test_a_file_that_would_wipe_what_the_store_holds_is_refused(store, column, value, code):
    first = _with(4, "closed")  # every incident stored closed
    _ingest(store, first)
    with transaction(store) as s:
        before = s.execute(select(m.Incident).order_by(m.Incident.id)).scalars().all()
        before = [(r.status, r.summary, r.ts, r.lon, r.lat) for r in before]
    changed = _with(4, "closed") if code != "field_reset" else _with(4, "")
    lines = changed.decode("utf-8").splitlines()
    rows = [line.split(",") for line in lines]
    for cells in rows[1:]:
        cells[column] = value
        if code == "position_collapse":
            cells[8] = "31.820000"
    data = ("\n".join(",".join(c) for c in rows) + "\n").encode()
    with pytest.raises(FeedError) as err:
        _ingest(store, data)
    assert err.value.code == code
    with transaction(store) as s:
        after = s.execute(select(m.Incident).order_by(m.Incident.id)).scalars().all()
        assert [(r.status, r.summary, r.ts, r.lon, r.lat) for r in after] == before
    report = ingest(store, city_code=HEFEI, spec=load_spec("standard_incidents"),
                    source=io.BytesIO(data), source_name="meant", cipher=CIPHER,
                    accept=(code,))  # fmt: skip
    assert report.rows_updated == len(before), "an operator who means it can accept it"


@pytest.mark.parametrize("cut", ['"未闭合的引号', '"第一行\n第二行"'])
def test_a_value_that_spans_lines_is_refused_not_stored_as_one(store, cut):
    """A quote left open swallowed every line after it into one summary; a quoted line
    break shifted the line numbers of every later row. Values cannot span lines: the
    file is refused at the line where it happens."""
    lines = SAMPLE.decode("utf-8").splitlines()
    cells = lines[6].split(",")
    cells[11] = cut
    lines[6] = ",".join(cells)
    with pytest.raises(FeedError) as err:
        _ingest(store, ("\n".join(lines) + "\n").encode())
    assert err.value.code == "line_break_in_value" and err.value.params["line"] == 7
    assert _incidents(store) == 0


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_excel_unicode_text_is_read(store, encoding):
    """Excel's "Unicode text" export: tab-separated UTF-16 (with a byte-order mark when
    the spec says utf-16). Its lines are read as any other file's, line numbers included."""
    from hub.ingest.spec import parse_spec

    text = (ROOT / "data/specs/standard_incidents.toml").read_text(encoding="utf-8")
    spec = parse_spec(
        text.replace('encoding = "utf-8"', f'encoding = "{encoding}"\ndelimiter = "\\t"')
    )
    rows = SAMPLE.decode("utf-8").replace(",", "\t").splitlines()
    rows[3] = rows[3].replace("\ttheft\t", "\tteleport\t")
    report = ingest(store, city_code=HEFEI, spec=spec, source=io.BytesIO(
        ("\r\n".join(rows) + "\r\n").encode(encoding)), source_name="unicode.txt", cipher=CIPHER)  # fmt: skip
    assert report.rows_inserted == len(rows) - 2 and report.reasons == {"unknown_code": 1}
    with transaction(store) as s:
        line = s.scalar(select(m.FeedReject.row_number))
    assert line == 4


def test_every_field_a_batch_can_report_changed_has_a_name_in_both_languages():
    """ "Fields changed", a dry run's before/after and a reject's reason name the field in
    the reader's language, on the Feeds page (the standard's names) and in the CLI:
    every compared column of every dataset, the H3 cells too."""
    from hub.cli_text import catalogue as cli_catalogue
    from hub.ingest.datasets import DATASETS, dataset
    from hub.ingest.pipeline import _field_name, _table_columns
    from ui.feeds import reason_line
    from ui.i18n import catalogue

    names = {_field_name(dataset(n), col) for n in DATASETS for col in _table_columns(dataset(n))
             if col not in ("created_at", "updated_at", "source_batch_id")
             and not col.endswith("_enc")}  # fmt: skip
    ui, cli = catalogue(), cli_catalogue()
    assert not [n for n in names if not any(k in ui for k in (f"sd_field_{n}", f"field_{n}"))]
    assert not [n for n in names if f"field_{n}" not in cli]
    line = reason_line([{"code": "bad_plate", "field": "plate", "value": "X1"}])
    assert "plate" not in line and "X1" in line, line
