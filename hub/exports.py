"""Registered, watermarked exports and the identification of a leaked file (DESIGN §4).

An export is three things written in one transaction: the audit entry (action `export`,
which the large-export alarm watches), the registry row (who, when, the selection, the
purpose, the row count, the file's SHA-256) and the file itself, whose visible footer and
invisible mark (`hub.security.watermark`) carry the registry id. The id is the audit
entry's sequence number: the chain already hands those out one at a time, so two
exports can never share one, and the mark can be written before the row is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Export
from hub.security import audit, watermark
from hub.security.errors import InputError
from hub.security.policy import Principal

FORMATS = ("csv", "xlsx")
MAX_EXPORT_ROWS = 100_000
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a leaked file to identify; openpyxl opens whole zips
LOCAL_TZ = "Asia/Shanghai"


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


def footer(principal: Principal, export_id: int, now: datetime, purpose: str | None) -> str:
    local = now.astimezone(ZoneInfo(LOCAL_TZ)).strftime("%Y-%m-%d %H:%M")
    why = f" · 用途 {purpose}" if purpose else ""
    return (
        f"导出人 {principal.display_name}（{principal.username}）· 时间 {local} · "
        f"编号 {export_id}{why} · 内部资料，禁止外传 / internal, do not forward"
    )


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
) -> ExportFile:
    """Audit, register and write one export of `frame` (already authorised and masked).

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
    data = writer(frame, mark, text, tz=LOCAL_TZ)
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
) -> ExportMatch | None:  # fmt: skip
    """The registered export a file came from, or None ("no export matches", never a guess).

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
    audit.record(
        session, principal, "watermark_identify", now=now, username=username, dataset="exports",
        query={"kind": "file", "value": filename[:100]},
        result_count=1 if row is not None else 0,
        decision="match" if row is not None else "no_match",
        detail={"export_id": row.id, "username": row.username} if row is not None else None,
    )  # fmt: skip
    if row is None:  # no verified mark, or a verified mark of an export not in this store
        return None
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
