"""The tamper-evident audit trail: one entry per audited action, chained with SM3.

Each entry's hash is SM3(previous hash + canonical JSON of the entry). Appenders are
serialised by the `audit_head` row (an UPDATE takes its lock first on both SQLite and
PostgreSQL), so the chain never forks; the table itself refuses UPDATE and DELETE
(triggers from migration 0002). Entries are written in the caller's transaction: if
the action fails, its audit entry is rolled back with it, and vice versa.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from hub.models import AuditEntry, AuditHead
from hub.security.crypto import sm3_hex
from hub.security.masking import mask_text
from hub.security.narrative import MAY_HOLD
from hub.security.policy import Principal

GENESIS = "0" * 64
MAX_RECORD_IDS = 2000

# The fields that are hashed, in this order; anything else on the row is not evidence.
CHAINED_FIELDS = (
    "seq", "ts", "user_id", "username", "role", "city_code", "action", "dataset", "query",
    "subject", "purpose", "case_no", "result_count", "record_ids", "owner_cities", "decision",
    "grant_id", "detail",
)  # fmt: skip


def _canonical_value(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def canonical(entry: AuditEntry) -> str:
    """The exact text that is hashed for an entry."""
    payload = {f: _canonical_value(getattr(entry, f)) for f in CHAINED_FIELDS}
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    return sm3_hex((prev_hash + canonical(entry)).encode())


def _json(value) -> str | None:
    if value is None:
        return None
    return _text(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


def _subject(query: dict | None) -> str | None:
    """`kind:value` of a lookup's subject, the key alarm rules group by."""
    if not query or "kind" not in query or "value" not in query:
        return None
    return _text(f"{query['kind']}:{query['value']}", 120)


# NUL (PostgreSQL cannot store it) and UTF-16 surrogate halves (no encoder can write one:
# neither the hash nor the driver could take the entry).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _text(value: str | None, width: int | None = None) -> str | None:
    """Text as typed, made storable: a refused input's audit entry must be writable
    whatever the input was, alike on both backends.

    Unstorable characters are shown as U+FFFD; ID numbers and phones are masked (a
    refusal records what was typed, and an identifier typed into a case number, a
    purpose or a plate field must not stay in clear in a log nobody may edit); text
    longer than its column (`width`) is cut, as SQLite would keep it and PostgreSQL
    refuse the whole entry.
    """
    if not value:
        return value
    value = _UNSTORABLE.sub("\ufffd", value)
    if MAY_HOLD.search(value):
        value = mask_text(value)
    return value[:width] if width else value


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    *,
    now: datetime,
    username: str | None = None,
    dataset: str | None = None,
    query: dict | None = None,
    purpose: str | None = None,
    case_no: str | None = None,
    result_count: int | None = None,
    record_ids: Iterable[str] = (),
    owner_cities: Iterable[str] = (),
    decision: str | None = None,
    grant_id: int | None = None,
    detail: dict | None = None,
) -> AuditEntry:
    """Append one entry to the chain inside the caller's transaction.

    Parameters
    ----------
    principal
        The acting user; None for anonymous events (a failed sign-in names `username`).
    now
        When it happened (UTC, aware).
    query
        The normalised query (what was asked), stored as JSON.
    record_ids
        "table:id" of every record the action showed; the first `MAX_RECORD_IDS` are
        kept and the total is in `detail["record_ids_total"]`.
    owner_cities
        Cities whose records were touched, for the owners' view.
    """
    ids = list(record_ids)
    detail = dict(detail or {})
    if len(ids) > MAX_RECORD_IDS:
        detail["record_ids_total"] = len(ids)
        ids = ids[:MAX_RECORD_IDS]
    # Taking the head row's lock first serialises appenders: no two entries share a seq.
    conn = session.connection()
    seq, prev = conn.execute(
        text("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
    ).one()
    entry = AuditEntry(
        seq=seq,
        ts=now.astimezone(UTC),
        user_id=principal.user_id if principal else None,
        username=principal.username if principal else _text(username, 64),
        role=principal.role if principal else None,
        city_code=principal.city_code if principal else None,
        action=_text(action, 32),
        dataset=_text(dataset, 32),
        query=_json(query),
        subject=_subject(query),
        purpose=_text(purpose, 32),
        case_no=_text(case_no, 32),
        result_count=result_count,
        # "table:id" only, as the code wrote them: exact evidence, nothing to mask
        record_ids=json.dumps(ids, ensure_ascii=False) if ids else None,
        owner_cities=",".join(sorted(set(owner_cities))) or None,
        decision=_text(decision, 32),
        grant_id=grant_id,
        detail=_json(detail) if detail else None,
        prev_hash=prev,
    )
    entry.hash = entry_hash(prev, entry)
    # A plain INSERT: the entry is never changed again, so the ORM's unit of work (and
    # its flush) would only add cost to every audited call.
    conn.execute(
        insert(AuditEntry).values(
            {f: getattr(entry, f) for f in (*CHAINED_FIELDS, "prev_hash", "hash")}
        )
    )
    conn.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": entry.hash})
    from hub.security import alarms  # alarms read the log; imported late to avoid a cycle

    alarms.evaluate(session, entry)
    return entry


@dataclass(frozen=True)
class Finding:
    """One thing verification found.

    `kind` is one of: `broken` (an entry does not match its hash or link), `gap` (an
    entry is missing), `head` (`audit_head` disagrees with the entries), and, against the
    signed checkpoints (`hub.security.anchor`), `cut`, `wipe`, `rewrite`, `fork`,
    `bad_checkpoint`, `stale`; `unanchored` (entries newer than the newest checkpoint) is a
    warning, and so is `stale` outside production.
    """

    kind: str
    seq: int | None
    text: str


# Not failures by default: `stale` fails in production (`hub.security.anchor.verify`).
WARNINGS = frozenset({"unanchored", "stale"})


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None
    findings: tuple[Finding, ...] = ()
    anchored_seq: int | None = None  # seq of the newest valid checkpoint, if any
    unanchored: int = 0  # entries after it, which nothing vouches for yet

    def message(self) -> str:
        if self.ok:
            head = f"audit chain intact: {self.checked} entries verified"
            if self.anchored_seq is not None:
                head += f", anchored up to seq {self.anchored_seq}"
        else:
            head = f"audit chain broken at entry seq {self.first_broken_seq}: {self.reason}"
        lines = [f"  {f.kind}" + (f" at seq {f.seq}" if f.seq else "") + f": {f.text}"
                 for f in self.findings]  # fmt: skip
        return "\n".join([head, *lines])


@dataclass(frozen=True)
class Scan:
    """The chain recomputed from genesis: `checked` entries verified before any break."""

    checked: int
    last_seq: int  # highest seq present (0: none)
    stored: dict[int, str]  # seq -> stored hash, for the seqs asked for
    findings: tuple[Finding, ...]


def scan(session: Session, wanted: Iterable[int] = (), *, batch: int = 5000) -> Scan:
    """Recompute the chain from the first entry; name the first entry that breaks it and
    keep the stored hash of each `wanted` seq (the checkpoints' seqs)."""
    wanted = set(wanted)
    prev_hash, expected_seq, checked, last = GENESIS, 1, 0, 0
    stored: dict[int, str] = {}
    broken: Finding | None = None
    stmt = select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch)
    for entry in session.scalars(stmt):
        last = entry.seq
        if entry.seq in wanted:
            stored[entry.seq] = entry.hash
        if broken is not None:
            continue
        if entry.seq != expected_seq:
            broken = Finding("gap", expected_seq, f"entry seq {expected_seq} is missing")
        elif entry.prev_hash != prev_hash:
            broken = Finding("broken", entry.seq, "previous-hash link does not match")
        elif entry_hash(prev_hash, entry) != entry.hash:
            broken = Finding("broken", entry.seq, "content does not match its hash")
        else:
            prev_hash, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
    if broken is not None:
        return Scan(checked, last, stored, (broken,))
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != checked or head.hash != prev_hash):
        seq = checked + 1 if head.seq > checked else head.seq
        text_ = f"the chain head says {head.seq} entries but {checked} are present"
        return Scan(checked, last, stored, (Finding("head", seq, text_),))
    return Scan(checked, last, stored, ())


def verdict(
    checked: int,
    findings: Iterable[Finding],
    *,
    anchored_seq: int | None = None,
    unanchored: int = 0,
    warnings: frozenset[str] = WARNINGS,
) -> Verification:
    """The verification of these findings: broken unless all are `warnings`; the
    earliest failing seq is `first_broken_seq`."""
    findings = tuple(findings)
    failures = sorted(
        (f for f in findings if f.kind not in warnings),
        key=lambda f: f.seq if f.seq is not None else 0,
    )
    if not failures:
        return Verification(True, checked, None, None, findings, anchored_seq, unanchored)
    first = failures[0]
    return Verification(False, checked, first.seq, first.text, findings, anchored_seq, unanchored)


def verify(session: Session, *, batch: int = 5000) -> Verification:
    """Recompute the chain from the first entry; name the first entry that breaks it.

    This is the chain alone: `hub.security.anchor.verify` adds the signed checkpoints."""
    result = scan(session, batch=batch)
    return verdict(result.checked, result.findings)
