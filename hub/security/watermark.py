"""Watermarked exports (DESIGN §4): safe cells, a visible footer, an invisible keyed mark,
and identification of a leaked file. Pure: no database; the caller registers the export
and passes its id in.

The mark
--------
Ten bytes: the export id (4 bytes, big-endian) and the first 6 bytes of
HMAC-SM3(key, ``hub-export-mark/v1`` + id). They are written as 40 zero-width characters,
two bits each (U+200B, U+200C, U+200D, U+2060), appended to every cell that holds a
letter: header cells, data cells and the footer. Every such cell carries the whole mark,
so one intact cell identifies the export: deleting the footer, the header, rows or
columns, re-sorting and re-saving (the characters are part of the cell values, which
every spreadsheet and CSV reader keeps) leave it readable. Marking every text cell
rather than a few keeps equal values equal inside the file: a filter or pivot on 城市
still shows one 合肥市, not a marked and an unmarked one that look the same. An XLSX
also gets the mark as a custom document property; a re-save through pandas drops it,
which is why it is only a second channel.

What humans see and compare: zero-width characters have no glyph and no width, and
``str.strip()`` keeps them (they are format characters, not whitespace). Only cells with
at least one letter (any script) are marked, so numbers, codes such as ``340100``, dates
written as text and empty cells are left exactly as they are and still parse as numbers
and dates in a spreadsheet. A marked cell no longer equals the same text typed by hand
(a formula ``=A2="张三"``, or ``df["城市"]`` after ``pandas.read_csv``); that is the price
of an in-cell mark. It costs 120 bytes (40 characters of 3 UTF-8 bytes) per text cell.

Limits (tested): a file saved in a legacy code page that has no zero-width characters
(GBK, as Excel's "CSV" on Chinese Windows writes) loses the cell marks; GB18030, UTF-8
and UTF-16 keep them. Anyone who knows of the mark can strip the characters. A file
with no text cell left (numbers only, header and footer cut) carries no mark. In every
such case `identify` answers None, never a guess: a mark is believed only when its MAC
verifies under the key.

Records on screen carry a visible view mark instead (`ViewMark`, end of this module).

Formula injection: a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR is
prefixed with a single quote (OWASP CSV injection guidance), in both formats, so a file
converted from XLSX to CSV stays safe. Numbers stay numbers: a numeric value is written
as a number, and a text cell that is exactly a plain decimal number (``-12.5``) is left
alone, since a spreadsheet reads it as that number and nothing else.
"""

from __future__ import annotations

import base64
import csv
import hmac
import io
import math
import operator
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

# openpyxl's own pattern (openpyxl.cell.cell.ILLEGAL_CHARACTERS_RE): the control characters a
# worksheet cannot hold. openpyxl itself is imported where a workbook is written or read, so
# that a page showing a table does not pay for it.
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Only an anchored plain decimal number may keep a leading sign: "-2+3+cmd|..." may not.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)

ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060")
_ID_BYTES, _TAG_BYTES = 4, 6
MARK_CHARS = (_ID_BYTES + _TAG_BYTES) * 4  # four 2-bit symbols per byte
_ZW_CLASS = "[" + "".join(ZERO_WIDTH) + "]"
# A run of exactly one mark's length; longer or shorter runs are damaged or not ours.
_MARK_RUN = re.compile(f"(?<!{_ZW_CLASS}){_ZW_CLASS}{{{MARK_CHARS}}}(?!{_ZW_CLASS})")
_MAC_CONTEXT = b"hub-export-mark/v1"
PROPERTY_NAME = "hub_export_mark"
MAX_EXPORT_ID = 2 ** (8 * _ID_BYTES) - 1


def safe_csv(frame) -> bytes:
    """A table as a CSV file for a spreadsheet (UTF-8 with BOM), every cell `neutralise`d:
    what a feed sent (a rejected row's raw text) is data, never a formula."""
    return frame.map(neutralise).to_csv(index=False).encode("utf-8-sig")


def neutralise(value):
    """Make one cell value safe from spreadsheet formula injection.

    Parameters
    ----------
    value
        Any cell value. Only strings are changed.

    Returns
    -------
    object
        A string starting with ``=``, ``+``, ``-``, ``@``, tab or CR, prefixed with a single
        quote, unless it is exactly a plain decimal number; anything else unchanged (numbers
        stay numbers, so a negative amount remains a negative number).
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_TRIGGERS):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


@dataclass(frozen=True)
class Mark:
    """The invisible mark of one export: its id and a truncated HMAC-SM3 tag."""

    export_id: int
    tag: bytes

    @classmethod
    def sign(cls, export_id: int, key: bytes) -> Mark:
        """The mark for `export_id` under `key`.

        Parameters
        ----------
        export_id
            The export registry's id, 0 to 2**32 - 1.
        key
            Secret for the HMAC; the same key must be given to `identify`.

        Raises
        ------
        ValueError
            For an id out of range or an empty key.
        """
        # A registry id read back through pandas is a numpy integer.
        export_id = operator.index(export_id)
        if not 0 <= export_id <= MAX_EXPORT_ID:
            raise ValueError(f"export id {export_id} does not fit in {_ID_BYTES} bytes")
        return cls(export_id, _tag(export_id, key))

    def verifies(self, key: bytes) -> bool:
        """True when the tag is the one `key` gives for this id (constant-time compare)."""
        return hmac.compare_digest(self.tag, _tag(self.export_id, key))

    def payload(self) -> bytes:
        """Id then tag, the 10 bytes every channel carries."""
        return self.export_id.to_bytes(_ID_BYTES, "big") + self.tag

    def invisible(self) -> str:
        """The mark as zero-width characters, most significant bits first."""
        return "".join(
            ZERO_WIDTH[(byte >> shift) & 3] for byte in self.payload() for shift in (6, 4, 2, 0)
        )

    def token(self) -> str:
        """The mark as visible text, for the XLSX document property."""
        return f"v1:{self.payload().hex()}"

    @classmethod
    def from_payload(cls, payload: bytes) -> Mark:
        """Read back `payload()`; unverified until `verifies` says so."""
        return cls(int.from_bytes(payload[:_ID_BYTES], "big"), payload[_ID_BYTES:])


def _tag(export_id: int, key: bytes) -> bytes:
    if not key:
        raise ValueError("the watermark key is empty")
    msg = _MAC_CONTEXT + export_id.to_bytes(_ID_BYTES, "big")
    return hmac.new(key, msg, "sm3").digest()[:_TAG_BYTES]


def _from_invisible(run: str) -> Mark:
    digits = [ZERO_WIDTH.index(c) for c in run]
    payload = bytes(
        (a << 6) | (b << 4) | (c << 2) | d for a, b, c, d in zip(*[iter(digits)] * 4, strict=True)
    )
    return Mark.from_payload(payload)


# --- writing ------------------------------------------------------------------------------


def _plain(value, tz: ZoneInfo):
    """A pandas cell as a plain Python value a CSV writer and openpyxl both accept."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return None
        # Excel has no infinity; its text keeps the value honest instead of a wrong number.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, datetime):
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        if value.tzinfo is not None:
            # Stored in UTC, shown in local time (DESIGN §2); XLSX cannot hold an offset.
            value = value.astimezone(tz).replace(tzinfo=None)
        return value
    if isinstance(value, date | time):
        return value
    if isinstance(value, bytes):
        return value.hex()
    text = str(value)
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)


def _markable(value) -> bool:
    # A letter means a spreadsheet reads the cell as text anyway; digits-only strings
    # would turn from numbers or dates into text if marked.
    return isinstance(value, str) and any(ch.isalpha() for ch in value)


# With key columns, the mark rides in a column of its own on every row.
MARK_COLUMN = "来源标记"
MARK_TEXT = "省级数据平台导出"


def _marked_rows(
    frame: pd.DataFrame, mark: Mark, footer_text: str, tz: str, keys: Sequence[str] = ()
) -> list[list]:
    """Header, data rows and footer as plain values: neutralised, then marked.

    Cells of `keys` columns (city names, type labels: what a spreadsheet joins or looks
    up on) and their headers stay unmarked, so they equal the same text typed elsewhere;
    a `MARK_COLUMN` then carries the mark on every row instead.
    """
    zone, invisible = ZoneInfo(tz), mark.invisible()
    keep = [c in keys for c in frame.columns] + ([False] if keys else [])

    def cells(values) -> list:
        safe = [neutralise(_plain(v, zone)) for v in values]
        return [v + invisible if _markable(v) and not key else v
                for v, key in zip(safe, keep + [False] * len(safe), strict=False)]  # fmt: skip

    extra = [MARK_TEXT] if keys else []
    rows = [cells([*frame.columns, *([MARK_COLUMN] if keys else [])])]
    rows += [cells([*record, *extra]) for record in frame.itertuples(index=False, name=None)]
    rows.append(cells([footer_text]))
    return rows


def write_csv(
    frame: pd.DataFrame,
    mark: Mark,
    footer_text: str,
    *,
    tz: str = "Asia/Shanghai",
    keys: Sequence[str] = (),
) -> bytes:
    """A CSV export: header, rows, then a one-cell footer line; UTF-8 with BOM.

    Parameters
    ----------
    frame
        The rows to export, already desensitised; its index is not written.
    mark
        `Mark.sign(export_id, key)` for the registered export.
    footer_text
        The visible footer ("导出人 … 时间 … 编号 …").
    tz
        Time zone aware timestamps are written in, without an offset.
    keys
        Columns left unmarked (see `_marked_rows`).

    Returns
    -------
    bytes
        The file. The BOM makes Excel read it as UTF-8, which keeps Chinese text (and the
        mark) intact.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(_marked_rows(frame, mark, footer_text, tz, keys))
    return out.getvalue().encode("utf-8-sig")


def write_xlsx(
    frame: pd.DataFrame,
    mark: Mark,
    footer_text: str,
    *,
    tz: str = "Asia/Shanghai",
    keys: Sequence[str] = (),
) -> bytes:
    """An XLSX export: header (bold, frozen), rows, a footer row, and the mark also as a
    custom document property.

    Parameters
    ----------
    frame
        The rows to export, already desensitised; its index is not written.
    mark
        `Mark.sign(export_id, key)` for the registered export.
    footer_text
        The visible footer ("导出人 … 时间 … 编号 …").
    tz
        Time zone aware timestamps are written in, without an offset.
    keys
        Columns left unmarked (see `_marked_rows`).

    Returns
    -------
    bytes
        The workbook.
    """
    import openpyxl
    from openpyxl.packaging.custom import StringProperty
    from openpyxl.styles import Font

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "export"
    rows = _marked_rows(frame, mark, footer_text, tz, keys)
    for row in rows:
        # Every string is neutralised, so none starts with "=" and openpyxl stores each
        # one as text, never as a formula.
        ws.append(row)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.cell(row=len(rows), column=1).font = Font(italic=True)
    ws.freeze_panes = "A2"
    wb.custom_doc_props.append(StringProperty(name=PROPERTY_NAME, value=mark.token()))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- identifying ------------------------------------------------------------------------


@dataclass(frozen=True)
class Identification:
    """A leaked file traced to an export by marks whose MAC verifies.

    `export_id` has the most verified marks; `other_ids` are further exports whose marks
    also verify (a file pasted together from several exports), most marks first.
    """

    export_id: int
    marks: int
    channels: tuple[str, ...]
    other_ids: tuple[int, ...] = ()
    filename: str = ""


def _decode_text(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Excel's "Unicode Text" save: UTF-16 with a BOM, which keeps the mark.
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    # GB18030 decodes every GBK file as well, and keeps zero-width characters when a tool
    # re-saved in GB18030 itself.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _xlsx_texts(data: bytes) -> tuple[list[str], list[str]] | None:
    """(cell texts, custom property values) of every sheet, or None if not a workbook."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=False, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError):
        return None
    cells = [
        value
        for ws in wb.worksheets
        for row in ws.iter_rows(values_only=True)
        for value in row
        if isinstance(value, str)
    ]
    props = [p.value for p in wb.custom_doc_props.props if p.name == PROPERTY_NAME]
    return cells, [v for v in props if isinstance(v, str)]


def _token_mark(token: str) -> Mark | None:
    prefix = "v1:"
    if not token.startswith(prefix):
        return None
    try:
        payload = bytes.fromhex(token[len(prefix) :])
    except ValueError:
        return None
    if len(payload) != _ID_BYTES + _TAG_BYTES:
        return None
    return Mark.from_payload(payload)


def identify(data: bytes, filename: str, key: bytes) -> Identification | None:
    """Trace a leaked CSV or XLSX file to the export it came from.

    Parameters
    ----------
    data
        The file's bytes. The format is read from the bytes (an XLSX is a ZIP), not the
        name, so a renamed file is still read.
    filename
        The file's name, carried into the result for the report.
    key
        The watermark key the exports were signed with.

    Returns
    -------
    Identification or None
        None ("no export matches") when no mark verifies: a file never exported, one whose
        marks were stripped or damaged, or one signed under another key. Never a guess.
    """
    if data.startswith(b"PK\x03\x04"):
        found = _xlsx_texts(data)
        if found is None:
            return None
        cells, props = found
        candidates = [(run, "cells") for text in cells for run in _MARK_RUN.findall(text)]
        candidates += [(token.strip(), "properties") for token in props]
    else:
        text = _decode_text(data)
        if text is None:
            return None
        # The whole text is searched rather than parsed as CSV: any delimiter, quoting or
        # a paste into a plain text file keeps the runs intact.
        candidates = [(run, "cells") for run in _MARK_RUN.findall(text)]
    support: Counter[int] = Counter()
    channels: dict[int, set[str]] = {}
    verified: dict[str, Mark | None] = {}
    for raw, channel in candidates:
        # A file repeats one mark thousands of times: verify each distinct one once.
        if raw not in verified:
            mark = _from_invisible(raw) if channel == "cells" else _token_mark(raw)
            verified[raw] = mark if mark is not None and mark.verifies(key) else None
        if (mark := verified[raw]) is not None:
            support[mark.export_id] += 1
            channels.setdefault(mark.export_id, set()).add(channel)
    if not support:
        return None
    ranked = [i for i, _ in sorted(support.items(), key=lambda kv: (-kv[1], kv[0]))]
    best = ranked[0]
    return Identification(
        export_id=best,
        marks=support[best],
        channels=tuple(sorted(channels[best])),
        other_ids=tuple(ranked[1:]),
        filename=filename,
    )


# --- records on screen ------------------------------------------------------------------
#
# A table on a page is no file: what leaves it is a screenshot, a photo or typed-out text.
# Zero-width characters survive none of those, so a table of records carries a visible
# code instead: ``VM-XXXX-XXXX-XXXX-XXXX``, 16 base-32 characters (A-Z, 2-7) of ten bytes,
# the viewer's user id (3 bytes), the minute it was shown (3 bytes, minutes since
# VIEW_EPOCH, good until 2051) and the first 4 bytes of HMAC-SM3(key, context + both).
# The mark names who saw the records and when; the audit log names what they looked up
# in that minute. It is believed only when its MAC verifies, like an export's.

VIEW_EPOCH = datetime(2020, 1, 1, tzinfo=ZoneInfo("UTC"))
_VIEW_CONTEXT = b"hub-view-mark/v1"
_VIEW_USER_BYTES, _VIEW_MINUTE_BYTES, _VIEW_TAG_BYTES = 3, 3, 4
# OCR and retyping lose the dashes or add spaces; the letters are what count.
_VIEW_RUN = re.compile(r"VM[-\s]?((?:[A-Z2-7][-\s]?){16})")


@dataclass(frozen=True)
class ViewMark:
    """Who was shown records, and the minute they were shown (UTC)."""

    user_id: int
    minute: datetime

    def code(self, key: bytes) -> str:
        """The visible mark, ``VM-`` and four groups of four base-32 characters.

        Raises
        ------
        ValueError
            For a user id past 3 bytes, a minute outside 2020-2051, or an empty key.
        """
        minutes = int((self.minute - VIEW_EPOCH).total_seconds() // 60)
        if not 0 <= self.user_id < 2 ** (8 * _VIEW_USER_BYTES):
            raise ValueError(f"user id {self.user_id} does not fit in a view mark")
        if not 0 <= minutes < 2 ** (8 * _VIEW_MINUTE_BYTES):
            raise ValueError(f"{self.minute} is outside the view mark's range")
        body = self.user_id.to_bytes(_VIEW_USER_BYTES, "big") + minutes.to_bytes(
            _VIEW_MINUTE_BYTES, "big"
        )
        text = base64.b32encode(body + _view_tag(body, key)).decode()
        return "VM-" + "-".join(text[i : i + 4] for i in range(0, 16, 4))


def _view_tag(body: bytes, key: bytes) -> bytes:
    if not key:
        raise ValueError("the watermark key is empty")
    return hmac.new(key, _VIEW_CONTEXT + body, "sm3").digest()[:_VIEW_TAG_BYTES]


def view_mark(user_id: int, at: datetime) -> ViewMark:
    """The mark for `user_id` shown records at `at` (aware), to the minute."""
    return ViewMark(operator.index(user_id), at.astimezone(VIEW_EPOCH.tzinfo).replace(
        second=0, microsecond=0))  # fmt: skip


def find_view_marks(text: str, key: bytes) -> list[ViewMark]:
    """Every view mark in `text` whose MAC verifies under `key`, most frequent first.

    Parameters
    ----------
    text
        Anything a copy of a table became: pasted cells, a text file, OCR of a screenshot.
    key
        The watermark key the codes were made with.

    Returns
    -------
    list of ViewMark
        Distinct verified marks; an empty list, never a guess, when none verifies.
    """
    counts: Counter[bytes] = Counter()
    for run in _VIEW_RUN.findall(text.upper()):
        raw = base64.b32decode(re.sub(r"[-\s]", "", run))
        body, tag = raw[:-_VIEW_TAG_BYTES], raw[-_VIEW_TAG_BYTES:]
        if hmac.compare_digest(tag, _view_tag(body, key)):
            counts[body] += 1
    marks = []
    for body, _ in counts.most_common():
        user = int.from_bytes(body[:_VIEW_USER_BYTES], "big")
        minutes = int.from_bytes(body[_VIEW_USER_BYTES:], "big")
        marks.append(ViewMark(user, VIEW_EPOCH + timedelta(minutes=minutes)))
    return marks


def file_text(data: bytes) -> str | None:
    """The text of a CSV, text or XLSX file (every cell of every sheet), for
    `find_view_marks`; None when it is neither."""
    if data.startswith(b"PK\x03\x04"):
        found = _xlsx_texts(data)
        return None if found is None else "\n".join(found[0])
    return _decode_text(data)
