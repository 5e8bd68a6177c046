"""Per-city feed quality from the batch records: completeness, validity, timeliness,
duplicates and freshness, with the trend over batches and the rejected rows."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.ingest.datasets import LINE_VALUES, dataset
from hub.ingest.spec import FeedError, parse_spec
from hub.models import FeedBatch, FeedReject
from hub.security.crypto import FieldCipher
from hub.security.masking import mask_id_number, mask_name, mask_phone, mask_plate, mask_text
from hub.security.narrative import UNREADABLE, open_value

# Feeds are run by the platform admin and the provincial department (DESIGN §5).
FEED_ROLES = frozenset({"admin", "province_approver"})

BATCH_COLUMNS = [
    "id", "city_code", "dataset", "spec_name", "source_name", "status", "error_code",
    "rows_read", "rows_inserted", "rows_updated", "rows_unchanged", "rows_duplicate",
    "rows_rejected", "started_at", "finished_at", "note",
]  # fmt: skip
_FIGURES = ("completeness", "validity", "duplicate_share", "lag_p50_h", "lag_p90_h")


def _stats(raw: str | None) -> dict:
    return json.loads(raw) if raw else {}


def batches(session: Session, *, city: str | None = None, dataset: str | None = None,
            limit: int = 1000) -> pd.DataFrame:  # fmt: skip
    """Batch records, newest first, with quality figures per batch."""
    q = select(FeedBatch)
    if city:
        q = q.where(FeedBatch.city_code == city)
    if dataset:
        q = q.where(FeedBatch.dataset == dataset)
    rows = session.scalars(q.order_by(FeedBatch.id.desc()).limit(limit)).all()
    records = []
    for b in rows:
        st = _stats(b.stats)
        considered = b.rows_read - b.rows_duplicate
        records.append({
            **{c: getattr(b, c) for c in BATCH_COLUMNS},
            "completeness": st.get("completeness_overall"),
            "validity": (considered - b.rows_rejected) / considered if considered else None,
            "duplicate_share": b.rows_duplicate / b.rows_read if b.rows_read else None,
            "lag_p50_h": st["lag_s"]["p50"] / 3600 if "lag_s" in st else None,
            "lag_p90_h": st["lag_s"]["p90"] / 3600 if "lag_s" in st else None,
        })  # fmt: skip
    cols = [*BATCH_COLUMNS, "completeness", "validity", "duplicate_share", "lag_p50_h", "lag_p90_h"]
    df = pd.DataFrame(records, columns=cols)
    for c in _FIGURES:
        df[c] = pd.to_numeric(df[c]).astype("float64")
    for c in ("started_at", "finished_at"):
        df[c] = pd.to_datetime(df[c], utc=True)
    return df


def scorecard(session: Session, *, now: datetime) -> pd.DataFrame:
    """One row per city and dataset: the last batches' quality and how fresh the feed is."""
    df = batches(session, limit=20_000)
    cols = ["city_code", "dataset", "batches", "failed", "rows_read", "completeness", "validity",
            "duplicate_share", "lag_p50_h", "lag_p90_h", "last_arrival", "freshness_h"]  # fmt: skip
    if df.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for (city, ds), g in df.groupby(["city_code", "dataset"], sort=True):
        ok = g[g["status"] != "failed"]
        recent = ok.head(10)  # newest first
        considered = (recent["rows_read"] - recent["rows_duplicate"]).sum()
        last = g["started_at"].max()
        out.append({
            "city_code": city, "dataset": ds, "batches": len(g), "failed": int((g["status"] == "failed").sum()),
            "rows_read": int(ok["rows_read"].sum()),
            "completeness": recent["completeness"].dropna().iloc[0] if recent["completeness"].notna().any() else None,
            "validity": (considered - recent["rows_rejected"].sum()) / considered if considered else None,
            "duplicate_share": recent["rows_duplicate"].sum() / recent["rows_read"].sum() if recent["rows_read"].sum() else None,
            "lag_p50_h": recent["lag_p50_h"].dropna().iloc[0] if recent["lag_p50_h"].notna().any() else None,
            "lag_p90_h": recent["lag_p90_h"].dropna().iloc[0] if recent["lag_p90_h"].notna().any() else None,
            "last_arrival": last,
            "freshness_h": (pd.Timestamp(now) - last).total_seconds() / 3600,
        })  # fmt: skip
    card = pd.DataFrame(out, columns=cols)
    for c in (*_FIGURES, "freshness_h"):
        card[c] = pd.to_numeric(card[c]).astype("float64")
    return card


# What each feed role sees of a rejected row. A rejected row is a fragment of a record:
# the province approver fixes feeds, so sees the row with identifiers and names masked
# (as an analyst sees records); the admin opens no records (DESIGN §4), so sees only
# line numbers, reason codes, field names and parameters, never a value of the row.
REJECT_VIEWS = {"province_approver": "masked", "admin": "codes"}
WITHHELD = "***"
_MASKERS = {"id_number": mask_id_number, "phone": mask_phone, "plate": mask_plate,
            "name": mask_name}  # fmt: skip


def _field_kinds(dataset_name: str) -> dict[str, str]:
    """Standard field -> the mask kind of its values (identifiers and personal names)."""
    try:
        ds = dataset(dataset_name)
    except KeyError:
        return {}
    kinds = {n: f.check for n, f in ds.fields.items() if f.check in _MASKERS}
    if dataset_name == "persons":
        kinds["name"] = "name"
    return kinds


def _column_kinds(batch: FeedBatch | None) -> tuple[dict[str, str], str]:
    """Source column -> mask kind, and the cell delimiter, from the spec kept with the batch."""
    if batch is None or not batch.spec:
        return {}, ","
    try:
        spec = parse_spec(batch.spec)
    except FeedError:  # a spec that no longer parses: every value is masked as text
        return {}, ","
    fields = _field_kinds(batch.dataset)
    kinds = {col: fields[name] for name, cols in spec.columns.items() if name in fields
             for col in cols}  # fmt: skip
    return kinds, spec.delimiter or ","


def _masked_cell(cell: str) -> str:
    # A cell of a line that could not be split into columns: which column it belongs to
    # is unknown, so anything that is not an identifier is masked like a name (first
    # character kept), and the line keeps only its shape (the number of cells).
    shown = mask_text(cell)
    return shown if shown != cell else (mask_name(cell) or "")


def _mask_value(value: object, kind: str | None) -> object:
    if not isinstance(value, str):
        return value
    return _MASKERS[kind](value) if kind else mask_text(value)


def _masked_raw(stored: str, cipher: FieldCipher, columns: dict[str, str], delimiter: str) -> str:
    """A stored rejected row decrypted and masked: by column kind when it is a JSON object
    of source columns, cell by cell otherwise."""
    raw = open_value(stored, cipher)
    if raw is None:
        return UNREADABLE
    try:
        row = json.loads(raw)
    except ValueError:
        row = None
    if not isinstance(row, dict):
        return delimiter.join(_masked_cell(c) for c in raw.split(delimiter))
    shown = {k: _mask_value(v, columns.get(k)) for k, v in row.items()}
    return json.dumps(shown, ensure_ascii=False)


def _shown_reason(reason: dict, view: str, cipher: FieldCipher, fields: dict[str, str]) -> dict:
    if "value" not in reason or reason["code"] in LINE_VALUES:
        return reason
    if view != "masked":
        return {**reason, "value": WITHHELD}
    value = open_value(str(reason["value"]), cipher)
    shown = UNREADABLE if value is None else _mask_value(value, fields.get(reason.get("field")))
    return {**reason, "value": shown}


def rejects(session: Session, batch_id: int, *, role: str, cipher: FieldCipher,
            limit: int = 1000) -> pd.DataFrame:  # fmt: skip
    """Rejected rows of one batch as the role may see them (``REJECT_VIEWS``).

    Returns
    -------
    DataFrame
        ``row_number`` and ``reasons`` (list of dicts, values masked or withheld) and,
        for the province approver only, ``raw`` (the row decrypted and masked).

    Raises
    ------
    KeyError
        For a role not in ``REJECT_VIEWS`` (callers check ``FEED_ROLES`` first).
    """
    view = REJECT_VIEWS[role]
    batch = session.get(FeedBatch, batch_id)
    columns, delimiter = _column_kinds(batch)
    fields = _field_kinds(batch.dataset) if batch is not None else {}
    rows = session.execute(
        select(FeedReject.row_number, FeedReject.raw, FeedReject.reasons)
        .where(FeedReject.batch_id == batch_id)
        .order_by(FeedReject.row_number)
        .limit(limit)
    ).all()
    out = []
    for n, raw, reasons in rows:
        shown = [_shown_reason(r, view, cipher, fields) for r in json.loads(reasons)]
        if view == "masked":
            out.append((n, _masked_raw(raw, cipher, columns, delimiter), shown))
        else:
            out.append((n, shown))
    cols = ["row_number", "raw", "reasons"] if view == "masked" else ["row_number", "reasons"]
    return pd.DataFrame(out, columns=cols)


def reason_text(reason: dict) -> str:
    """A reason in plain English (the reject file; the UI translates the code)."""
    extra = {k: v for k, v in reason.items() if k not in ("code", "field")}
    where = f" {reason.get('field')}" if reason.get("field") else ""
    details = ", ".join(f"{k}={v}" for k, v in extra.items())
    return f"{reason['code']}{where}" + (f" ({details})" if details else "")
