"""Readers: a feed file as a stream of chunks of text columns, with line numbers.

Every reader yields `Chunk`s: a DataFrame of the source columns as text ("" when
absent), the file's line (CSV, JSON Lines) or row (XLSX) or feature (GeoJSON) number
of each row, and the rows that could not even be split into fields (`ReadProblem`),
which the pipeline rejects with their raw text. Problems with the file as a whole
raise `FeedError` before anything is stored.

CSV and JSON Lines hold one record per line (no line breaks inside quoted values).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from hub.ingest.spec import FeedError, Spec

CHUNK_BYTES = 4 << 20  # about 30,000 rows of a typical feed: chunks overlap
FIRST_CHUNK_BYTES = 1 << 20
CHUNK_ROWS = 100_000
MAX_COLUMNS = 1000  # a header wider than this is not a feed
MAX_RAW = 4000  # characters of a rejected row's raw text that are kept
LON, LAT = "__lon", "__lat"  # GeoJSON point coordinates as source columns
_OTHER_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class Limits:
    """How large a feed file may be: as sent, once decompressed (an XLSX is a zip, and a
    few hundred kilobytes can unpack to gigabytes), and in rows (accepted and rejected
    alike: a file of a million bad rows is refused, not written as a million rejects).
    The defaults are those of `hub.settings.Settings`."""

    max_bytes: int = 200 << 20
    max_unpacked_bytes: int = 300 << 20
    max_rows: int = 5_000_000

    @classmethod
    def from_settings(cls, settings) -> Limits:
        return cls(
            max_bytes=int(settings.upload_max_mb * (1 << 20)),
            max_unpacked_bytes=int(settings.upload_max_unpacked_mb * (1 << 20)),
            max_rows=settings.upload_max_rows,
        )


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f}"


@dataclass
class ReadProblem:
    row_number: int
    raw: str
    code: str
    params: dict = field(default_factory=dict)


@dataclass
class Chunk:
    frame: pd.DataFrame
    rows: np.ndarray  # line / row / feature number of each row of `frame`
    problems: list[ReadProblem]
    fraction: float  # share of the source read so far, for a progress bar


def _size(source: BinaryIO) -> int:
    here = source.tell()
    source.seek(0, io.SEEK_END)
    size = source.tell()
    source.seek(here)
    return size


def _ends_with_newline(source: BinaryIO, size: int) -> bool:
    here = source.tell()
    source.seek(max(0, size - 1))
    last = source.read(1)
    source.seek(here)
    return last == b"\n"


def _decode(data: bytes, spec: Spec, first_line: int) -> str:
    try:
        return data.decode(spec.encoding)
    except UnicodeDecodeError as exc:
        raise _bad_encoding(spec.encoding, first_line + data.count(b"\n", 0, exc.start)) from None


def _bad_encoding(encoding: str, line: int) -> FeedError:
    return FeedError("bad_encoding", f"line {line} is not valid {encoding}: is the file in "
                     "another encoding?", encoding=encoding, line=line)  # fmt: skip


def _check_header(
    header: list[str], spec: Spec, delimiter: str | None, *, records: bool = False
) -> None:
    """Refuse a header without the spec's columns (for JSON records, only those every
    row needs: an optional key may be left out of a record)."""
    if len(header) > MAX_COLUMNS:
        raise FeedError(
            "too_many_columns",
            f"the header has {len(header)} columns (at most {MAX_COLUMNS})",
            n=len(header),
            limit=MAX_COLUMNS,
        )
    wanted = spec.required_columns if records else spec.source_columns
    twice = sorted({c for c in header if c in spec.source_columns and header.count(c) > 1})
    if twice:  # which of the two the spec means cannot be told
        raise FeedError("duplicate_column", "the header names column(s) twice: " + ", ".join(twice),
                        columns=", ".join(twice))  # fmt: skip
    missing = [c for c in wanted if c not in header]
    if not missing:
        return
    if delimiter is not None and len(header) == 1:
        found = [d for d in _OTHER_DELIMITERS if d != delimiter and d in header[0]]
        if found:
            raise FeedError(
                "wrong_delimiter",
                f"the header is one column split by {found[0]!r}, the spec says {delimiter!r}",
                expected=repr(delimiter),
                found=repr(found[0]),
            )
    hint = ""
    if not records and not set(wanted) & set(header):  # nothing matches: a title row?
        hint = f" (is line {spec.header_row} the header? title rows above it: set header_row)"
    raise FeedError(
        "missing_column",
        "the file lacks column(s) the spec maps: " + ", ".join(missing) + hint,
        columns=", ".join(missing),
        found=", ".join(header[:20]),
    )


def _empty(source: BinaryIO, size: int) -> None:
    if size == 0 or not source.read(4096).strip(b"\xef\xbb\xbf \t\r\n"):
        raise FeedError("empty_file", "the file is empty")
    source.seek(0)


def _no_rows(total: int, problems: int) -> None:
    if total == 0 and problems == 0:
        raise FeedError("no_rows", "the file has a header but no rows")


# --- CSV --------------------------------------------------------------------------------


def _line_numbers(lines: list[bytes], first: int, bad: list[str], spec: Spec) -> tuple:
    """Line numbers of the rows pyarrow parsed, and of the ones it refused (in order)."""
    ok, refused, queue = [], [], list(bad)
    for i, line in enumerate(lines):
        text = line.rstrip(b"\r\n")
        if not text:
            continue
        if queue and text.decode(spec.encoding, "replace") == queue[0]:
            refused.append(first + i)
            queue.pop(0)
        else:
            ok.append(first + i)
    return np.array(ok, dtype=np.int64), refused


def _line_break_row(table: pa.Table) -> int | None:
    """The first row of which a value holds a line break, or None."""
    first = None
    for col in table.columns:
        hit = pc.index(pc.match_substring(col, "\n"), True).as_py()
        if hit >= 0 and (first is None or hit < first):
            first = hit
    return first


def read_csv(source: BinaryIO, spec: Spec) -> Iterator[Chunk]:
    size = _size(source)
    _empty(source, size)
    for _ in range(spec.header_row - 1):  # title rows above the header
        source.readline()
    header_bytes = source.readline()
    header_text = _decode(header_bytes, spec, spec.header_row).lstrip("\ufeff").rstrip("\r\n")
    try:
        header = [h.strip() for h in next(csv.reader([header_text], delimiter=spec.delimiter))]
    except csv.Error as exc:  # lines that end in CR alone (old Mac files): one long line
        raise FeedError("bad_file", f"cannot read the header: {exc}",
                        detail="lines must end in LF or CRLF, not CR alone"
                        if "\r" in header_text else str(exc)[:200]) from None  # fmt: skip
    _check_header(header, spec, spec.delimiter)
    ends_ok = _ends_with_newline(source, size)
    parse = pacsv.ParseOptions(delimiter=spec.delimiter, invalid_row_handler=None)
    convert = pacsv.ConvertOptions(
        column_types={h: pa.string() for h in header}, strings_can_be_null=False
    )
    line, total, n_problems = spec.header_row + 1, 0, 0
    while True:
        # A small first chunk: the writer starts on it while the next ones are checked.
        first = total == n_problems == 0
        lines = source.readlines(min(FIRST_CHUNK_BYTES, CHUNK_BYTES) if first else CHUNK_BYTES)
        if not lines:
            break
        data = b"".join(lines)
        text = _decode(data, spec, line)
        bad: list[tuple[str, int, int]] = []

        def handler(row, bad=bad):
            bad.append((row.text, row.expected_columns, row.actual_columns))
            return "skip"

        parse.invalid_row_handler = handler
        try:
            table = pacsv.read_csv(
                io.BytesIO(text.encode("utf-8")),
                read_options=pacsv.ReadOptions(column_names=header, use_threads=True),
                parse_options=parse,
                convert_options=convert,
            )
        except pa.ArrowInvalid as exc:
            if source.tell() >= size and not ends_ok:
                raise FeedError(
                    "truncated", "the file ends inside a row: it looks cut off"
                ) from None
            raise FeedError(
                "bad_file", f"cannot read the CSV: {exc}", detail=str(exc)[:200]
            ) from None
        if bad or table.num_rows != len(lines):  # refused rows, or blank lines skipped
            rows, refused = _line_numbers(lines, line, [b[0] for b in bad], spec)
        else:
            rows, refused = np.arange(line, line + len(lines), dtype=np.int64), []
        broken = _line_break_row(table)
        if broken is not None:  # a quote left open swallows the lines after it
            at = int(rows[min(broken, len(rows) - 1)]) if len(rows) else line
            raise FeedError("line_break_in_value", f"line {at}: a value holds a line break "
                            "(a quote left open?); a value cannot span lines", line=at)  # fmt: skip
        problems = [
            ReadProblem(n, raw[:MAX_RAW], "field_count", {"expected": exp, "actual": act})
            for n, (raw, exp, act) in zip(refused, bad, strict=False)
        ]
        last_line = line + len(lines) - 1
        if source.tell() >= size and not ends_ok and refused and refused[-1] == last_line:
            raise FeedError(
                "truncated",
                f"the last line ({last_line}) is cut short: the file looks truncated",
                line=last_line,
            )
        line += len(lines)
        frame = table.to_pandas()
        total += len(frame)
        n_problems += len(problems)
        yield Chunk(frame, rows[: len(frame)], problems, source.tell() / size)
    _no_rows(total, n_problems)


# --- JSON Lines -------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _records_frame(records: list[dict], columns: list[str]) -> pd.DataFrame:
    data = {c: [_cell(r.get(c)) for r in records] for c in columns}
    return (
        pd.DataFrame(data, dtype="str") if records else pd.DataFrame(columns=columns, dtype="str")
    )


def _lone_surrogate(obj: dict, cols: list[str]) -> bool:
    """Whether a value the spec reads holds half of a UTF-16 pair (JSON lets `\\ud800`
    stand alone; no text can be encoded with it)."""
    for c in cols:
        v = obj.get(c)
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def read_jsonl(source: BinaryIO, spec: Spec) -> Iterator[Chunk]:
    size = _size(source)
    _empty(source, size)
    ends_ok = _ends_with_newline(source, size)
    line, total, n_problems, checked = 1, 0, 0, False
    while True:
        lines = source.readlines(CHUNK_BYTES)
        if not lines:
            break
        text_lines = _decode(b"".join(lines), spec, line).split("\n")
        if text_lines and text_lines[-1] == "":
            text_lines.pop()
        records, rows, problems = [], [], []
        cols = spec.source_columns
        at_end = source.tell() >= size
        for i, raw in enumerate(text_lines):
            n = line + i
            raw = raw.strip().lstrip("\ufeff")
            if not raw:
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                if at_end and not ends_ok and i == len(text_lines) - 1:
                    raise FeedError(
                        "truncated",
                        f"the last line ({n}) is cut short: the file looks truncated",
                        line=n,
                    ) from None
                problems.append(ReadProblem(n, raw[:MAX_RAW], "not_json", {"detail": exc.msg}))
                continue
            except ValueError as exc:  # an integer of more digits than Python converts
                problems.append(
                    ReadProblem(n, raw[:MAX_RAW], "not_json", {"detail": str(exc)[:80]})
                )
                continue
            except RecursionError:  # nested deeper than any record of the standard
                problems.append(
                    ReadProblem(n, raw[:MAX_RAW], "not_json", {"detail": "nested too deeply"})
                )
                continue
            if not isinstance(obj, dict):
                problems.append(ReadProblem(n, raw[:MAX_RAW], "not_object"))
                continue
            if "\\u" in raw and _lone_surrogate(obj, cols):  # "\ud800": no character at all
                problems.append(
                    ReadProblem(n, raw[:MAX_RAW], "not_json", {"detail": "lone surrogate"})
                )
                continue
            nested = next((c for c in cols if isinstance(obj.get(c), dict | list)), None)
            if nested is not None:  # its text would be Python's, not the sender's
                problems.append(ReadProblem(n, raw[:MAX_RAW], "not_scalar", {"field": nested}))
                continue
            if len(obj) > MAX_COLUMNS:
                problems.append(ReadProblem(n, raw[:MAX_RAW], "field_count",
                                            {"expected": len(spec.source_columns), "actual": len(obj)}))  # fmt: skip
                continue
            records.append(obj)
            rows.append(n)
        if records and not checked:
            _check_header(list({k: None for r in records[:1000] for k in r}), spec, None,
                          records=True)  # fmt: skip
            checked = True
        line += len(lines)
        total += len(records)
        n_problems += len(problems)
        yield Chunk(_records_frame(records, cols), np.array(rows, dtype=np.int64), problems,
                    source.tell() / size)  # fmt: skip
    _no_rows(total, n_problems)


# --- GeoJSON ----------------------------------------------------------------------------


def read_geojson(source: BinaryIO, spec: Spec) -> Iterator[Chunk]:
    size = _size(source)
    _empty(source, size)
    text = _decode(source.read(), spec, 1).lstrip("\ufeff")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) - 1:
            raise FeedError(
                "truncated", "the GeoJSON ends early: the file looks truncated"
            ) from None
        raise FeedError("bad_file", f"not valid JSON: {exc.msg} at character {exc.pos}",
                        detail=exc.msg) from None  # fmt: skip
    except RecursionError:
        raise FeedError("bad_file", "not valid JSON: nested too deeply",
                        detail="nested too deeply") from None  # fmt: skip
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise FeedError("bad_file", "not a GeoJSON FeatureCollection", detail="no features")
    if not features:
        raise FeedError("no_rows", "the FeatureCollection has no features")
    keys = list({k: None for f in features[:1000] if isinstance(f, dict)
                 for k in (f.get("properties") or {})})  # fmt: skip
    _check_header(keys + [LON, LAT], spec, None, records=True)
    for start in range(0, len(features), CHUNK_ROWS):
        records, rows, problems = [], [], []
        for i, feat in enumerate(features[start : start + CHUNK_ROWS], start=start + 1):
            geom = feat.get("geometry") if isinstance(feat, dict) else None
            props = feat.get("properties") if isinstance(feat, dict) else None
            raw = json.dumps(feat, ensure_ascii=False)[:MAX_RAW]
            if not isinstance(props, dict):
                problems.append(ReadProblem(i, raw, "not_object"))
                continue
            rec = dict(props)
            coords = geom.get("coordinates") if isinstance(geom, dict) else None
            if (
                isinstance(geom, dict)
                and geom.get("type") == "Point"
                and isinstance(coords, list)
                and len(coords) >= 2
            ):
                rec[LON], rec[LAT] = coords[0], coords[1]
            elif geom is not None:
                problems.append(
                    ReadProblem(
                        i,
                        raw,
                        "not_point",
                        {"type": str(geom.get("type") if isinstance(geom, dict) else geom)},
                    )
                )
                continue
            records.append(rec)
            rows.append(i)
        cols = list(dict.fromkeys([*spec.source_columns, LON, LAT]))
        yield Chunk(_records_frame(records, cols), np.array(rows, dtype=np.int64), problems,
                    min(1.0, (start + CHUNK_ROWS) / len(features)))  # fmt: skip


# --- XLSX -------------------------------------------------------------------------------


def _check_unpacked(source: BinaryIO, limit: int) -> None:
    """Refuse a workbook whose parts would unpack past `limit`, before any is unpacked
    (the sizes come from the zip's own directory; a forged directory is caught by the
    zip module's own check of each part's size as it is read)."""
    try:
        with zipfile.ZipFile(source) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, EOFError):
        raise FeedError("truncated", "the workbook is incomplete (damaged or cut off)") from None
    finally:
        source.seek(0)
    if unpacked > limit:
        raise FeedError(
            "unpacked_too_large",
            f"the workbook unpacks to {_mb(unpacked)} MB (at most {_mb(limit)} MB)",
            size=_mb(unpacked), limit=_mb(limit),
        )  # fmt: skip


def read_xlsx(source: BinaryIO, spec: Spec, limits: Limits = Limits()) -> Iterator[Chunk]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    size = _size(source)
    _empty(source, size)
    _check_unpacked(source, limits.max_unpacked_bytes)
    try:
        wb = load_workbook(source, read_only=True, data_only=True)
    except (zipfile.BadZipFile, EOFError):
        raise FeedError("truncated", "the workbook is incomplete (damaged or cut off)") from None
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise FeedError("bad_file", f"not an XLSX workbook: {exc}", detail=str(exc)[:200]) from None
    try:
        if spec.sheet is not None and spec.sheet not in wb.sheetnames:
            raise FeedError("missing_sheet", f"no sheet {spec.sheet!r} in the workbook",
                            sheet=spec.sheet, found=", ".join(wb.sheetnames))  # fmt: skip
        ws = wb[spec.sheet] if spec.sheet is not None else wb.worksheets[0]
        # A cell far to the right (column XFD) would make every row 16,384 values wide:
        # the header is read at most one column past the limit, the rows one past it.
        top = spec.header_row  # title rows above the header are skipped
        first = next(ws.iter_rows(min_row=top, max_row=top, max_col=MAX_COLUMNS + 1,
                                  values_only=True), None)  # fmt: skip
        if first is None:
            raise FeedError("empty_file", "the sheet is empty")
        header = [_cell(h).strip() for h in first]
        while header and not header[-1]:
            header.pop()
        _check_header(header, spec, None)
        # Rows are read as wide as the sheet says it is (so a value right of the header is
        # still seen and refused), never wider than the column limit.
        width = ws.max_column if isinstance(ws.max_column, int) else MAX_COLUMNS + 1
        if width > MAX_COLUMNS:
            raise FeedError(
                "too_many_columns", f"the sheet is {width} columns wide (at most {MAX_COLUMNS})",
                n=width, limit=MAX_COLUMNS,
            )  # fmt: skip
        it = ws.iter_rows(min_row=top + 1, max_col=max(width, len(header)), values_only=True)
        n_rows = ws.max_row or 1
        records, rows, problems, total, n = [], [], [], 0, top
        for values in it:
            n += 1
            if values is None or all(v is None or v == "" for v in values):
                continue
            extra = [v for v in values[len(header) :] if v not in (None, "")]
            if extra:
                raw = "\t".join(_cell(v) for v in values)[:MAX_RAW]
                problems.append(ReadProblem(n, raw, "field_count",
                                            {"expected": len(header), "actual": len(values)}))  # fmt: skip
                continue
            records.append(dict(zip(header, values, strict=False)))
            rows.append(n)
            if len(records) >= CHUNK_ROWS:
                total += len(records)
                yield Chunk(_records_frame(records, list(dict.fromkeys(header))),
                            np.array(rows, dtype=np.int64), problems, min(1.0, n / n_rows))  # fmt: skip
                records, rows, problems = [], [], []
        total += len(records)
        if records or problems:
            yield Chunk(_records_frame(records, list(dict.fromkeys(header))),
                        np.array(rows, dtype=np.int64), problems, 1.0)  # fmt: skip
        _no_rows(total, len(problems))
    except (zipfile.BadZipFile, EOFError):
        raise FeedError("truncated", "the workbook is incomplete (damaged or cut off)") from None
    finally:
        wb.close()


READERS = {"csv": read_csv, "jsonl": read_jsonl, "geojson": read_geojson, "xlsx": read_xlsx}


def read_chunks(source: BinaryIO, spec: Spec, limits: Limits = Limits()) -> Iterator[Chunk]:
    """The feed as chunks, by the spec's format, within `limits`.

    Raises
    ------
    FeedError
        empty_file, no_rows, bad_encoding, wrong_delimiter, missing_column,
        too_many_columns, truncated, bad_file, missing_sheet, file_too_large,
        unpacked_too_large, too_many_rows (the last while reading: the pipeline then
        stores nothing of the batch).
    """
    size = _size(source)
    if size > limits.max_bytes:
        raise FeedError(
            "file_too_large", f"the file is {_mb(size)} MB (at most {_mb(limits.max_bytes)} MB)",
            size=_mb(size), limit=_mb(limits.max_bytes),
        )  # fmt: skip
    if spec.format == "xlsx":
        chunks = read_xlsx(source, spec, limits)
    else:
        source, spec = _as_utf8(source, spec)
        chunks = READERS[spec.format](source, spec)
    return _counted(chunks, limits.max_rows)


def _as_utf8(source: BinaryIO, spec: Spec) -> tuple[BinaryIO, Spec]:
    """A UTF-16 or UTF-32 file (Excel's "Unicode text") as UTF-8: the readers split lines
    on the byte of a line break, which these encodings do not have. Other files as they
    are."""
    name = codecs.lookup(spec.encoding).name
    if not name.startswith(("utf-16", "utf-32")):
        return source, spec
    out = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115 - returned open
    reader = codecs.getreader(spec.encoding)(source, errors="strict")
    lines = 1
    source.seek(0)
    try:
        while block := reader.read(1 << 20):
            out.write(block.encode("utf-8"))
            lines += block.count("\n")
    except UnicodeDecodeError:
        raise _bad_encoding(spec.encoding, lines) from None
    out.seek(0)
    return out, dataclasses.replace(spec, encoding="utf-8")


def _counted(chunks: Iterator[Chunk], limit: int) -> Iterator[Chunk]:
    seen = 0
    for chunk in chunks:
        seen += len(chunk.frame) + len(chunk.problems)
        if seen > limit:
            raise FeedError("too_many_rows", f"the file has more than {limit} rows", limit=limit)
        yield chunk
