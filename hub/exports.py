"""Registered, watermarked exports and the identification of a leaked file (DESIGN §4).

An export is three things written in one transaction: the audit entry (action `export`,
which the large-export alarm watches), the registry row (who, when, the selection, the
purpose, the row count, the file's SHA-256) and the file itself, whose visible footer and
invisible mark (`hub.security.watermark`) carry the registry id. The id is the audit
entry's sequence number: the chain already hands those out one at a time, so two
exports can never share one, and the mark can be written before the row is.

Records shown in a table on a page carry a visible view mark (`view_code`): who saw them
and the minute. `identify_export` reads both kinds, so a copy made without the export
(pasted cells, typed-out or OCR'd text of a screenshot) is traced to the viewer and the
reads they had made by then.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import AuditEntry, Export, User
from hub.security import audit, watermark
from hub.security.errors import InputError
from hub.security.policy import Principal

FORMATS = ("csv", "xlsx")
MAX_EXPORT_ROWS = 100_000
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a leaked file to identify; openpyxl opens whole zips
LOCAL_TZ = "Asia/Shanghai"
# What a view mark is matched against: the reads that put records on a page.
READ_ACTIONS = ("search", "view", "map_view")
VIEW_READS_SHOWN = 10


def watermark_key(blind_index_key: str) -> bytes:
    """The mark's MAC key, derived from the blind-index secret (HMAC-SM3 with a label) so
    a deployment has one secret less to keep, and neither key reveals the other."""
    return hmac.new(blind_index_key.encode(), b"hub-export-watermark/v1", "sm3").digest()


@dataclass(frozen=True)
class ExportFile:
    export_id: int
    filename: str
    data: bytes
    mime: str
    rows: int


@dataclass(frozen=True)
class ExportMatch:
    """A leaked file traced to its export."""

    export_id: int
    ts: datetime
    username: str
    role: str
    city_code: str | None
    dataset: str
    query: dict
    purpose: str | None
    case_no: str | None
    row_count: int
    filename: str
    same_file: bool  # byte-identical to what left the hub
    other_ids: tuple[int, ...]


@dataclass(frozen=True)
class ViewMatch:
    """Text copied off a page traced to its viewer by a verified view mark.

    `reads` are the viewer's last audited reads up to the end of the marked minute, newest
    first (the table may have been drawn again after the read that filled it)."""

    user_id: int
    username: str | None
    display_name: str | None
    role: str | None
    city_code: str | None
    minute: datetime
    reads: tuple[dict, ...]
    other_marks: int  # further verified view marks in the same text


def view_code(principal: Principal, blind_index_key: str, now: datetime) -> str:
    """The visible mark a table of records shows `principal` at `now`.

    Parameters
    ----------
    principal
        The viewer.
    blind_index_key
        The deployment's blind-index secret (`settings.blind_index_key`), from which the
        watermark key is derived.
    now
        When the table is drawn (aware).
    """
    mark = watermark.view_mark(principal.user_id, now)
    return mark.code(watermark_key(blind_index_key))


def _view_match(session: Session, data: bytes, key: bytes) -> ViewMatch | None:
    text = watermark.file_text(data)
    marks = watermark.find_view_marks(text, key) if text is not None else []
    if not marks:
        return None
    mark = marks[0]
    user = session.get(User, mark.user_id)
    a = AuditEntry
    reads = session.execute(
        select(a.seq, a.ts, a.action, a.dataset, a.query, a.purpose, a.case_no, a.result_count)
        .where(a.user_id == mark.user_id, a.action.in_(READ_ACTIONS),
               a.ts < mark.minute + timedelta(minutes=1))
        .order_by(a.ts.desc(), a.seq.desc()).limit(VIEW_READS_SHOWN)
    ).all()  # fmt: skip
    return ViewMatch(
        user_id=mark.user_id, username=user.username if user else None,
        display_name=user.display_name if user else None, role=user.role if user else None,
        city_code=user.city_code if user else None, minute=mark.minute,
        reads=tuple(r._asdict() | {"query": json.loads(r.query) if r.query else None}
                    for r in reads),
        other_marks=len(marks) - 1,
    )  # fmt: skip


def footer(principal: Principal, export_id: int, now: datetime, purpose: str | None) -> str:
    local = now.astimezone(ZoneInfo(LOCAL_TZ)).strftime("%Y-%m-%d %H:%M")
    why = f" · 用途 {purpose}" if purpose else ""
    return (
        f"导出人 {principal.display_name}（{principal.username}）· 时间 {local} · "
        f"编号 {export_id}{why} · 内部资料，禁止外传 / internal, do not forward"
    )


# Export headers in Chinese: a file is read without the code tables at hand.
HEADERS = {"city": "地市", "district": "区县", "type": "警情类型", "severity": "警情等级",
           "day": "日期", "weekday": "星期", "hour": "时段", "count": "数量"}  # fmt: skip


def register_export(
    session: Session,
    principal: Principal,
    frame: pd.DataFrame,
    *,
    dataset: str,
    query: dict,
    fmt: str,
    now: datetime,
    key: bytes,
    purpose: str | None = None,
    case_no: str | None = None,
    record_ids: list[str] | None = None,
    owner_cities: list[str] | None = None,
    keys: tuple[str, ...] | None = None,
) -> ExportFile:
    """Audit, register and write one export of `frame` (already authorised and masked).

    Column names are written as people read them (`HEADERS`). `keys` are the columns a
    spreadsheet joins on, left free of the invisible mark (`watermark._marked_rows`); by
    default every text column, since an export of counts is all grouping keys.

    Raises
    ------
    InputError
        `bad_format` for a format other than csv/xlsx, `export_empty` for no rows,
        `export_too_large` past `MAX_EXPORT_ROWS`.
    """
    if fmt not in FORMATS:
        raise InputError("bad_format", f"unknown export format {fmt!r}", value=fmt)
    if frame.empty:
        raise InputError("export_empty", "nothing to export")
    if len(frame) > MAX_EXPORT_ROWS:
        raise InputError("export_too_large", "too many rows", limit=MAX_EXPORT_ROWS)
    entry = audit.record(
        session, principal, "export", now=now, dataset=dataset, query=query, purpose=purpose,
        case_no=case_no, result_count=len(frame), record_ids=record_ids or (),
        owner_cities=owner_cities or (), decision="ok", detail={"format": fmt},
    )  # fmt: skip
    export_id = entry.seq
    mark = watermark.Mark.sign(export_id, key)
    text = footer(principal, export_id, now, purpose)
    writer = watermark.write_xlsx if fmt == "xlsx" else watermark.write_csv
    if keys is None:
        keys = tuple(c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c]))
    shown = frame.rename(columns=lambda c: HEADERS.get(c, c))
    data = writer(shown, mark, text, tz=LOCAL_TZ, keys=tuple(HEADERS.get(c, c) for c in keys))
    local = now.astimezone(ZoneInfo(LOCAL_TZ))
    filename = f"{dataset}-{local:%Y%m%d-%H%M}-{export_id}.{fmt}"
    session.add(
        Export(
            id=export_id, ts=now, user_id=principal.user_id, username=principal.username,
            role=principal.role, city_code=principal.city_code, dataset=dataset,
            query=json.dumps(query, ensure_ascii=False, sort_keys=True, default=str),
            purpose=purpose, case_no=case_no, row_count=len(frame), format=fmt,
            filename=filename, sha256=hashlib.sha256(data).hexdigest(), audit_seq=entry.seq,
        )
    )  # fmt: skip
    session.flush()
    mime = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if fmt == "xlsx"
        else "text/csv"
    )
    return ExportFile(export_id, filename, data, mime, len(frame))


def identify_export(
    session: Session, principal: Principal | None, data: bytes, filename: str, *, key: bytes,
    now: datetime, username: str | None = None,
) -> ExportMatch | ViewMatch | None:  # fmt: skip
    """The registered export a file came from; failing that, the viewer a copy of an on-screen
    table came from (its view mark); or None ("no export matches", never a guess).

    The attempt is audited whatever the answer (action `watermark_identify`).

    Raises
    ------
    InputError
        `upload_too_large` past `MAX_UPLOAD_BYTES`, `export_empty` for an empty file.
    """
    if not data:
        raise InputError("export_empty", "the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError("upload_too_large", "file too large", limit_mb=MAX_UPLOAD_BYTES >> 20)
    found = watermark.identify(data, filename, key)
    row = None
    if found is not None:
        row = session.scalar(select(Export).where(Export.id == found.export_id))
    seen = _view_match(session, data, key) if row is None else None
    if row is not None:
        decision, detail = "match", {"export_id": row.id, "username": row.username}
    elif seen is not None:
        decision = "view_match"
        detail = {"user_id": seen.user_id, "username": seen.username,
                  "minute": seen.minute.isoformat()}  # fmt: skip
    else:
        decision, detail = "no_match", None
    audit.record(
        session, principal, "watermark_identify", now=now, username=username, dataset="exports",
        query={"kind": "file", "value": filename[:100]},
        result_count=0 if decision == "no_match" else 1, decision=decision, detail=detail,
    )  # fmt: skip
    if row is None:  # no verified export mark, or one of an export not in this store
        return seen
    return ExportMatch(
        export_id=row.id, ts=row.ts, username=row.username, role=row.role,
        city_code=row.city_code, dataset=row.dataset, query=json.loads(row.query),
        purpose=row.purpose, case_no=row.case_no, row_count=row.row_count,
        filename=row.filename, same_file=hashlib.sha256(data).hexdigest() == row.sha256,
        other_ids=tuple(found.other_ids),
    )  # fmt: skip


def exports_log(session: Session, *, limit: int = 500) -> pd.DataFrame:
    """The registry, newest first (auditors)."""
    rows = session.execute(
        select(Export.id, Export.ts, Export.username, Export.role, Export.city_code,
               Export.dataset, Export.purpose, Export.case_no, Export.row_count,
               Export.format, Export.filename)
        .order_by(Export.id.desc()).limit(limit)
    ).all()  # fmt: skip
    cols = ["id", "ts", "username", "role", "city_code", "dataset", "purpose", "case_no",
            "row_count", "format", "filename"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)
