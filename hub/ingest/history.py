"""Record history: what each feed batch changed, kept so that a batch can be undone.

The pipeline writes one `RecordVersion` per record a batch adds (``insert``: its source
line) or changes (``update``: the columns it overwrote, as they were stored, and the
source line). A row the batch leaves unchanged writes nothing, so re-ingesting the same
file costs no history.

`rollback` replays a batch backwards in one transaction: rows it inserted are deleted,
rows it updated get their previous columns back (also `updated_at` and
`source_batch_id`), so the store equals the store before the batch, row for row. It is
refused when a later batch has since changed one of those records (the refusal names
the batches and a few records), and audited either way.

Lineage: record → its versions → batch → file name, content hash, spec text, line.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Date,
    DateTime,
    LargeBinary,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import models as m
from hub.ingest.datasets import dataset
from hub.ingest.spec import FeedError
from hub.security import audit
from hub.security.policy import Principal

VERSIONS = m.RecordVersion.__table__
CHUNK = 500
SAMPLE = 5  # records named in a refusal


def _encode(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def previous_json(rows: list[dict]) -> list[str]:
    """Stored rows (column -> value as the driver returned it) as JSON text."""
    return [json.dumps({k: _encode(v) for k, v in r.items()}, ensure_ascii=False) for r in rows]


def _decode(table, previous: str) -> dict:
    out = {}
    for name, value in json.loads(previous).items():
        col = table.c[name]
        if value is not None and isinstance(col.type, LargeBinary):
            value = base64.b64decode(value)
        elif value is not None and isinstance(col.type, m.UTCDateTime | DateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(col.type, Date):
            value = date.fromisoformat(value)
        out[name] = value
    return out


def version_frame(batch_id: int, ds_name: str, city: str, source_ids, rows, op: str,
                  record_ids=None, previous=None) -> pd.DataFrame:  # fmt: skip
    """Version rows for one chunk, ready for `hub.bulk.write_frame`."""
    n = len(source_ids)
    return pd.DataFrame({
        "batch_id": np.full(n, batch_id, dtype=np.int64), "dataset": ds_name, "city_code": city,
        "source_id": list(source_ids), "op": op,
        "record_id": pd.array(record_ids if record_ids is not None else [None] * n, dtype="Int64"),
        "row_number": pd.array(np.asarray(rows, dtype=np.int64), dtype="Int64"),
        "previous": previous if previous is not None else [None] * n,
    })  # fmt: skip


@dataclass(frozen=True)
class RollbackReport:
    """What a rollback did."""

    batch_id: int
    dataset: str
    city_code: str
    deleted: int  # rows the batch had inserted
    restored: int  # rows the batch had updated, back to their previous columns

    def summary(self) -> str:
        return (f"batch {self.batch_id} ({self.dataset}, city {self.city_code}) rolled back: "
                f"deleted {self.deleted:,} inserted rows, restored {self.restored:,} updated "
                "rows")  # fmt: skip


def _later_changes(conn: Connection, table, batch: m.FeedBatch, keys: list[str]) -> dict:
    """Records of the batch that some other batch has since changed (or that are gone):
    later batch id (or "deleted") -> source ids."""
    found: dict[str, int | None] = {}
    for start in range(0, len(keys), CHUNK):
        part = keys[start : start + CHUNK]
        q = select(table.c.source_id, table.c.source_batch_id).where(
            table.c.city_code == batch.city_code, table.c.source_id.in_(part)
        )
        found.update(dict(conn.execute(q).all()))
    out: dict = {}
    for k in keys:
        if k not in found:
            out.setdefault("deleted", []).append(k)
        elif found[k] != batch.id:
            out.setdefault(found[k], []).append(k)
    return out


def _stored_times(conn: Connection, table, ids: list[int]) -> dict[int, datetime]:
    """Record id -> its time as stored now."""
    out: dict[int, datetime] = {}
    for start in range(0, len(ids), CHUNK):
        q = select(table.c.id, table.c.ts).where(table.c.id.in_(ids[start : start + CHUNK]))
        out.update(dict(conn.execute(q).all()))
    return out


def rollback(session: Session, batch_id: int, *, principal: Principal | None,
             now: datetime) -> RollbackReport:  # fmt: skip
    """Undo one batch exactly (see the module's docstring), audited as ``feed_rollback``.

    Raises
    ------
    FeedError
        ``unknown_batch``; ``nothing_to_roll_back`` (a failed, unchanged or already rolled
        back batch); ``rollback_conflict`` naming the later batches and records;
        ``rollback_referenced`` when other records refer to rows the batch inserted.
    """
    batch = session.get(m.FeedBatch, int(batch_id))
    if batch is None:
        raise FeedError("unknown_batch", f"no batch {batch_id}", batch=str(batch_id))
    if batch.status != "done":
        raise FeedError("nothing_to_roll_back",
                        f"batch {batch.id} is {batch.status}: it changed no record",
                        batch=str(batch.id), status=batch.status)  # fmt: skip
    table = dataset(batch.dataset).table
    conn = session.connection()
    versions = conn.execute(
        select(VERSIONS.c.source_id, VERSIONS.c.op, VERSIONS.c.record_id, VERSIONS.c.previous)
        .where(VERSIONS.c.batch_id == batch.id).order_by(VERSIONS.c.id)
    ).all()  # fmt: skip
    keys = [v.source_id for v in versions]
    later = _later_changes(conn, table, batch, keys)
    if later:
        names = "; ".join(
            f"{'deleted since' if b == 'deleted' else f'changed by batch {b}'}: "
            f"{len(ks)} (e.g. {', '.join(ks[:SAMPLE])})"
            for b, ks in sorted(later.items(), key=lambda kv: str(kv[0]))
        )
        raise FeedError(
            "rollback_conflict",
            f"batch {batch.id} cannot be rolled back: later changes to its records ({names}); "
            "roll back the later batches first",
            batch=str(batch.id), later=", ".join(str(b) for b in later if b != "deleted"),
            records=sum(len(ks) for ks in later.values()),
        )  # fmt: skip
    inserted = [v.source_id for v in versions if v.op == "insert"]
    updated = [v for v in versions if v.op == "update"]
    try:
        for start in range(0, len(inserted), CHUNK):
            these = (table.c.city_code == batch.city_code) & table.c.source_id.in_(
                inserted[start : start + CHUNK]
            )
            if table.name == "sightings":  # hits raised on reads that were never true go too
                hits = m.WatchHit.__table__
                conn.execute(
                    delete(hits).where(hits.c.sighting_id.in_(select(table.c.id).where(these)))
                )
            conn.execute(delete(table).where(these))
        if updated:
            rows = [{**_decode(table, v.previous), "_id": v.record_id} for v in updated]
            where = table.c.id == bindparam("_id")
            if "ts" in table.c:
                # The record's time as it is now: the partition key on PostgreSQL, so that
                # each update reads one day's partition instead of probing all of them.
                now_ts = _stored_times(conn, table, [r["_id"] for r in rows])
                for r in rows:
                    r["_ts"] = now_ts[r["_id"]]
                where &= table.c.ts == bindparam("_ts", type_=table.c.ts.type)
            by_cols: dict[tuple, list[dict]] = {}
            for r in rows:
                by_cols.setdefault(tuple(sorted(k for k in r if k not in ("_id", "_ts"))),
                                   []).append(r)  # fmt: skip
            for cols, group in by_cols.items():
                stmt = update(table).where(where).values({c: bindparam(c) for c in cols})
                conn.execute(stmt, group)
        session.flush()
    except IntegrityError as exc:
        raise FeedError(
            "rollback_referenced",
            f"batch {batch.id} cannot be rolled back: other records refer to rows it inserted "
            f"({str(exc.orig).splitlines()[0][:160]})", batch=str(batch.id),
        ) from None  # fmt: skip
    batch.status = "rolled_back"
    who = principal.username if principal else "cli"
    batch.note = ((batch.note + "; ") if batch.note else "") + (
        f"rolled back {now:%Y-%m-%d %H:%M} UTC by {who}"
    )[:2000]
    report = RollbackReport(batch.id, batch.dataset, batch.city_code, len(inserted), len(updated))
    audit.record(
        session, principal, "feed_rollback", now=now, username=None if principal else "cli",
        dataset=batch.dataset[:32], query={"batch_id": batch.id},
        result_count=report.deleted + report.restored, owner_cities=[batch.city_code],
        decision="done", detail={"deleted": report.deleted, "restored": report.restored},
    )  # fmt: skip
    return report


def batch_versions(session: Session, batch_id: int) -> dict[str, int]:
    """How many records a batch inserted and updated, by its history."""
    rows = session.execute(
        select(VERSIONS.c.op, func.count())
        .where(VERSIONS.c.batch_id == int(batch_id))
        .group_by(VERSIONS.c.op)
    ).all()
    return {"insert": 0, "update": 0, **dict(rows)}


def lineage(session: Session, ds_name: str, city: str, source_id: str) -> list[dict]:
    """A record's history, oldest first: each change with its batch's file, line and spec
    (values are not returned: they are records, opened only through the policy)."""
    q = (
        select(VERSIONS.c.batch_id, VERSIONS.c.op, VERSIONS.c.row_number, m.FeedBatch.source_name,
               m.FeedBatch.content_sha256, m.FeedBatch.spec_name, m.FeedBatch.spec,
               m.FeedBatch.status, m.FeedBatch.started_at)
        .join(m.FeedBatch, m.FeedBatch.id == VERSIONS.c.batch_id)
        .where(VERSIONS.c.dataset == ds_name, VERSIONS.c.city_code == city,
               VERSIONS.c.source_id == source_id)
        .order_by(VERSIONS.c.id)
    )  # fmt: skip
    return [dict(r._mapping) for r in session.execute(q)]
