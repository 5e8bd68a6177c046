"""Per-city feed quality from the batch records: completeness, validity, timeliness,
duplicates and freshness, with the trend over batches and the rejected rows."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import FeedBatch, FeedReject

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


def rejects(session: Session, batch_id: int, *, limit: int = 1000) -> pd.DataFrame:
    """Rejected rows of one batch: line number, the raw row and every reason."""
    rows = session.execute(
        select(FeedReject.row_number, FeedReject.raw, FeedReject.reasons)
        .where(FeedReject.batch_id == batch_id)
        .order_by(FeedReject.row_number)
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [(n, raw, json.loads(reasons)) for n, raw, reasons in rows],
        columns=["row_number", "raw", "reasons"],
    )


def reason_text(reason: dict) -> str:
    """A reason in plain English (the reject file; the UI translates the code)."""
    extra = {k: v for k, v in reason.items() if k not in ("code", "field")}
    where = f" {reason.get('field')}" if reason.get("field") else ""
    details = ", ".join(f"{k}={v}" for k, v in extra.items())
    return f"{reason['code']}{where}" + (f" ({details})" if details else "")
