"""Feed quality from the batch records: per feed (city × dataset × spec) completeness
over the fields the feed supplies, validity, duplicates, timeliness over every batch,
guardrail findings and freshness; the trend over batches and the rejected rows."""

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
    return json.loads(raw) if isinstance(raw, str) and raw else {}


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


SCORECARD_COLUMNS = [
    "city_code", "dataset", "spec_name", "batches", "failed", "rolled_back", "rows_read",
    "completeness", "validity", "duplicate_share", "timely_share", "lag_p50_h", "lag_p90_h",
    "findings", "last_finding", "last_arrival", "freshness_h",
]  # fmt: skip
TIMELY_HOURS = 24  # `timely_share`: rows that arrived within a day of their event


def _feed_row(g: pd.DataFrame, stats: dict[int, dict], now: datetime) -> dict:
    """One feed's figures over all its batches (newest first in `g`)."""
    ok = g[g["status"].isin(["done", "unchanged"])]
    considered = int((ok["rows_read"] - ok["rows_duplicate"]).sum())
    read = int(ok["rows_read"].sum())
    # Completeness over the fields the feed's spec maps, weighted by rows read.
    parts = [(stats[i].get("completeness_feed", stats[i].get("completeness_overall")), r)
             for i, r in zip(ok["id"], ok["rows_read"], strict=True)]  # fmt: skip
    parts = [(c, r) for c, r in parts if c is not None and r]
    lags = [stats[i].get("lag_s", {}) for i in ok["id"]]
    with_counts = [x for x in lags if "n" in x]
    found = [f for i in g["id"] for f in stats[i].get("findings", [])]
    last = g["started_at"].max()
    p50 = [x["p50"] for x in lags if "p50" in x]
    p90 = [x["p90"] for x in lags if "p90" in x]
    return {
        "batches": len(g), "failed": int((g["status"] == "failed").sum()),
        "rolled_back": int((g["status"] == "rolled_back").sum()), "rows_read": read,
        "completeness": sum(c * r for c, r in parts) / sum(r for _, r in parts) if parts else None,
        "validity": (considered - int(ok["rows_rejected"].sum())) / considered if considered else None,
        "duplicate_share": int(ok["rows_duplicate"].sum()) / read if read else None,
        "timely_share": (sum(x["within_24h"] for x in with_counts) / sum(x["n"] for x in with_counts)
                         if with_counts and sum(x["n"] for x in with_counts) else None),
        # Over every batch: the median batch's median, the worst batch's p90.
        "lag_p50_h": float(pd.Series(p50).median()) / 3600 if p50 else None,
        "lag_p90_h": max(p90) / 3600 if p90 else None,
        "findings": len(found), "last_finding": found[0]["code"] if found else None,
        "last_arrival": last, "freshness_h": (pd.Timestamp(now) - last).total_seconds() / 3600,
    }  # fmt: skip


def scorecard(session: Session, *, now: datetime) -> pd.DataFrame:
    """One row per feed (city × dataset × spec): its quality over every batch, its
    guardrail findings (failed or accepted) and how fresh it is."""
    rows = session.execute(
        select(FeedBatch.id, FeedBatch.city_code, FeedBatch.dataset, FeedBatch.spec_name,
               FeedBatch.status, FeedBatch.rows_read, FeedBatch.rows_duplicate,
               FeedBatch.rows_rejected, FeedBatch.started_at, FeedBatch.stats)
        .where(FeedBatch.status != "running").order_by(FeedBatch.id.desc())
    ).all()  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=SCORECARD_COLUMNS)
    df = pd.DataFrame(rows, columns=["id", "city_code", "dataset", "spec_name", "status",
                                     "rows_read", "rows_duplicate", "rows_rejected",
                                     "started_at", "stats"])  # fmt: skip
    stats = {int(i): _stats(raw) for i, raw in zip(df["id"], df["stats"], strict=True)}
    df["started_at"] = pd.to_datetime(df["started_at"], utc=True)
    df["spec_name"] = df["spec_name"].fillna("")
    out = [
        {"city_code": city, "dataset": ds, "spec_name": spec, **_feed_row(g, stats, now)}
        for (city, ds, spec), g in df.groupby(["city_code", "dataset", "spec_name"], sort=True)
    ]
    card = pd.DataFrame(out, columns=SCORECARD_COLUMNS)
    for c in (*_FIGURES, "timely_share", "freshness_h"):
        card[c] = pd.to_numeric(card[c]).astype("float64")
    return card


def batch_detail(session: Session, batch_id: int) -> dict | None:
    """One batch: its record, timings, findings and figures (no record content)."""
    b = session.get(FeedBatch, batch_id)
    if b is None:
        return None
    st = _stats(b.stats)
    return {
        **{c: getattr(b, c) for c in BATCH_COLUMNS}, "content_sha256": b.content_sha256,
        "spec": b.spec, "timings": _stats(b.timings), "findings": st.get("findings", []),
        "changed_fields": st.get("changed_fields", {}), "reasons": st.get("reasons", {}),
        "completeness_feed": st.get("completeness_feed"), "would": st.get("would"),
    }  # fmt: skip


def masked_preview(report, role: str) -> dict:
    """A dry run's preview as the role may see record content (``REJECT_VIEWS``): values
    masked for the province approver, withheld from the admin."""
    view = REJECT_VIEWS.get(role)
    if view is None:
        return {}
    kinds = _field_kinds(report.dataset)

    def shown(value: str, field_: str | None) -> str:
        return WITHHELD if view != "masked" else _mask_value(value, kinds.get(field_ or ""))

    changes = {f: [{**x, "before": shown(x["before"], f), "after": shown(x["after"], f)}
                   for x in samples]
               for f, samples in report.preview.get("changes", {}).items()}  # fmt: skip
    rejects = [
        {"row_number": r["row_number"],
         "reasons": [{**x, "value": shown(str(x["value"]), x.get("field"))}
                     if "value" in x and x["code"] not in LINE_VALUES else x
                     for x in r["reasons"]]}
        for r in report.preview.get("rejects", [])
    ]  # fmt: skip
    return {"changes": changes, "rejects": rejects}


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
        spec = parse_spec(batch.spec, strict=False)
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
