"""Signed checkpoints of the audit chain, kept where the database's administrators cannot
write, so that the chain cannot be cut, wiped or rewritten unnoticed.

The hash chain alone proves only that the entries agree with each other: whoever can write
the database can delete the tail and fix `audit_head`, or edit an entry and recompute every
hash after it. A checkpoint (sequence number, head hash, time) signed with a key the
database never holds pins the chain as it was: the database must still reach that entry
with that hash.

* Signatures are Ed25519 (`cryptography`, OpenSSL underneath): the maintained packages
  offering SM2 are pure Python and leave the signing nonce to the caller (gmssl 3.2.2's
  helper draws it from `random`, which leaks the key), and a pure-Python verify of a
  year of checkpoints takes minutes where Ed25519 takes seconds. The chain itself stays
  SM3.
* Checkpoints are JSON lines appended (O_APPEND) to one file per database in
  HUB_AUDIT_ANCHOR_DIR, written by one process, `python -m hub audit anchor`, which alone
  reads the private key. It polls `audit_head` (committed entries only: a separate
  transaction) and signs when `audit_checkpoint_every` entries or `audit_checkpoint_minutes`
  have passed, after checking that the chain still extends its last checkpoint, so it
  never signs a rewritten history. Nothing is added to the audited hot path.
* `verify` needs only the public key (`<key file>.pub`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from hub.models import AuditEntry
from hub.security import audit
from hub.security.audit import Finding, Verification
from hub.security.crypto import sm3_hex
from hub.security.errors import HubError

FORMAT = "hub-audit-checkpoint/1"
DEMO_KEY_NAME = "demo-signing-key.pem"


class AnchorError(HubError):
    """Checkpoints cannot be written or checked (no key, unreadable key, broken chain)."""


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement: database `db` held `seq` entries ending in `hash` at `ts`."""

    db: str
    seq: int
    hash: str
    ts: str  # ISO 8601, UTC
    key_id: str
    sig: str = ""

    def message(self) -> bytes:
        return f"{FORMAT}\n{self.db}\n{self.seq}\n{self.hash}\n{self.ts}\n{self.key_id}".encode()

    def line(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":")) + "\n"

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.ts)


@dataclass(frozen=True)
class SigningKeys:
    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None

    @property
    def key_id(self) -> str:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return sm3_hex(raw)[:16]


# --- keys ---------------------------------------------------------------------------------


def key_path(settings) -> Path:
    """The private key file (its public key is beside it as `<file>.pub`).

    Raises
    ------
    AnchorError
        `anchor_no_key` in production when HUB_AUDIT_SIGNING_KEY is not set: the demo key
        lives in the anchor folder, which is no place for a production key.
    """
    if settings.audit_signing_key_file:
        return Path(settings.audit_signing_key_file)
    if settings.is_production:
        raise AnchorError(
            "anchor_no_key",
            "HUB_AUDIT_SIGNING_KEY is not set: production signs audit checkpoints with a key "
            "file of its own (python -m hub audit keygen --out FILE), kept off the database host",
        )
    return Path(settings.audit_anchor_dir) / DEMO_KEY_NAME


def generate_key(path: Path) -> SigningKeys:
    """Write a new Ed25519 key pair to `path` (mode 0600) and `path.pub`; an existing key
    is kept (a concurrent first use of the demo key links the same file, never two)."""
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    for suffix, data, mode in (("", pem, 0o600), (".pub", pub, 0o644)):
        staged = tmp.with_name(tmp.name + suffix)
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            os.link(staged, path.with_name(path.name + suffix))  # fails if it exists
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    return load_keys_at(path, private=True)


def load_keys_at(path: Path, *, private: bool) -> SigningKeys:
    """The key pair at `path`; only the public half (`path.pub`) unless `private`."""
    try:
        if private:
            key = serialization.load_pem_private_key(path.read_bytes(), None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            return SigningKeys(key.public_key(), key)
        pub = serialization.load_pem_public_key(path.with_name(path.name + ".pub").read_bytes())
        if not isinstance(pub, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        return SigningKeys(pub, None)
    except (OSError, ValueError) as exc:
        which = path if private else path.with_name(path.name + ".pub")
        raise AnchorError(
            "anchor_key_unreadable",
            f"cannot read the checkpoint key {which}: {exc}",
            path=str(which),
        ) from None


def load_keys(settings, *, private: bool) -> SigningKeys:
    """The configured key pair; in the demo, generated into the anchor folder on first use."""
    path = key_path(settings)
    if not settings.audit_signing_key_file and not path.exists():
        return generate_key(path)
    return load_keys_at(path, private=private)


# --- the checkpoint file ------------------------------------------------------------------


def database_label(url: URL) -> str:
    """Which database a checkpoint speaks of: the SQLite file, or host:port/name."""
    if url.get_backend_name() == "sqlite":
        return f"sqlite:{Path(url.database or '').resolve()}"
    return f"postgresql:{url.host or 'localhost'}:{url.port or 5432}/{url.database}"


def checkpoint_file(settings, url: URL) -> Path:
    """One file per database, so that checkpoints of one never judge another."""
    label = database_label(url)
    name = re.sub(r"[^A-Za-z0-9.-]+", "-", Path(label.split("/")[-1]).stem or "db")[:40]
    return Path(settings.audit_anchor_dir) / f"{name}-{sm3_hex(label.encode())[:12]}.jsonl"


def append(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line with a single write on an O_APPEND descriptor, then fsync.

    A last line left without its newline (the disk filled, the host lost power mid-write)
    is ended first: otherwise this checkpoint would be glued to the torn one and both
    lost. The checkpointer is the file's only writer, so the check cannot race.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        os.write(fd, (b"\n" if torn else b"") + checkpoint.line().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


_FIELD_TYPES = {"db": str, "seq": int, "hash": str, "ts": str, "key_id": str, "sig": str}


def _parse(raw: bytes) -> Checkpoint | None:
    """The checkpoint on one line, or None for anything else (torn, edited, binary)."""
    try:
        fields = json.loads(raw.decode("utf-8"))
        if not isinstance(fields, dict) or fields.keys() != _FIELD_TYPES.keys():
            return None
        for name, kind in _FIELD_TYPES.items():
            if not isinstance(fields[name], kind) or isinstance(fields[name], bool):
                return None
        cp = Checkpoint(**fields)
        return cp if cp.time.tzinfo else None
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def read(path: Path) -> Iterator[tuple[int, Checkpoint | None]]:
    """(line number, checkpoint or None when the line is not one) for every line; a file
    that is not text is read line by line all the same, so that its damage is named, not
    raised."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            yield number, _parse(raw)


def sign(keys: SigningKeys, db: str, seq: int, head: str, now: datetime) -> Checkpoint:
    assert keys.private is not None, "signing needs the private key"
    ts = now.astimezone(UTC).isoformat(timespec="microseconds")
    unsigned = Checkpoint(db, seq, head, ts, keys.key_id)
    return Checkpoint(**{**unsigned.__dict__, "sig": keys.private.sign(unsigned.message()).hex()})


def _valid(keys: SigningKeys, cp: Checkpoint) -> bool:
    try:
        keys.public.verify(bytes.fromhex(cp.sig), cp.message())
    except (InvalidSignature, ValueError):
        return False
    return cp.key_id == keys.key_id


# --- writing checkpoints ------------------------------------------------------------------


def _extends(session: Session, last: Checkpoint | None, seq: int, head: str) -> str | None:
    """Why the committed chain up to `seq` is not `last` extended (None when it is)."""
    start, prev = (0, audit.GENESIS) if last is None else (last.seq, last.hash)
    if last is not None and last.seq:
        stored = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == last.seq))
        if stored != last.hash:
            return f"entry seq {last.seq} no longer has the hash of the last checkpoint"
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.seq > start, AuditEntry.seq <= seq)
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=5000)
    )
    expected = start + 1
    for entry in session.scalars(stmt):
        if (
            entry.seq != expected
            or entry.prev_hash != prev
            or audit.entry_hash(prev, entry) != entry.hash
        ):
            return f"the chain breaks at entry seq {expected}"
        prev, expected = entry.hash, expected + 1
    if expected != seq + 1 or prev != head:
        return f"the chain does not reach the head (seq {seq})"
    return None


@dataclass
class Anchorer:
    """Writes the checkpoints of one database; keeps the last one to save re-reading."""

    engine: Engine
    settings: object
    keys: SigningKeys
    path: Path
    db: str
    last: Checkpoint | None = None

    @classmethod
    def open(cls, engine: Engine, settings) -> Anchorer:
        keys = load_keys(settings, private=True)
        path, db = checkpoint_file(settings, engine.url), database_label(engine.url)
        mine = [cp for _, cp in read(path) if cp and cp.db == db and _valid(keys, cp)]
        return cls(engine, settings, keys, path, db, max(mine, key=lambda c: c.seq, default=None))

    def due(self, seq: int, now: datetime) -> bool:
        if self.last is None:
            return seq > 0
        every = self.settings.audit_checkpoint_every
        late = now - self.last.time >= timedelta(minutes=self.settings.audit_checkpoint_minutes)
        return seq >= self.last.seq + every or (seq > self.last.seq and late)

    def step(self, now: datetime, *, force: bool = False) -> Checkpoint | None:
        """Sign the committed head if a checkpoint is due (or `force`).

        Raises
        ------
        AnchorError
            `anchor_refused` when the chain no longer extends the last checkpoint: the
            history was cut or rewritten, and signing it would hide that.
        """
        with self.engine.connect() as conn, Session(bind=conn) as session:
            seq, head = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
            # An empty log that was never anchored has nothing to vouch for, forced or not
            # (`--once` at install); one that was is a wipe, refused below.
            last_seq = self.last.seq if self.last else 0
            if not (self.due(seq, now) or (force and seq != last_seq)) or seq == last_seq == 0:
                return None
            problem = _extends(session, self.last, seq, head)
        if problem:
            raise AnchorError("anchor_refused", f"not signing: {problem}", seq=seq)
        cp = sign(self.keys, self.db, seq, head, now)
        append(self.path, cp)
        self.last = cp
        return cp


def run(
    engine: Engine,
    settings,
    *,
    poll_seconds: float,
    once: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> int:
    """Checkpoint the chain until interrupted (or once); 1 when a checkpoint was refused."""
    anchorer = Anchorer.open(engine, settings)
    while True:
        try:
            cp = anchorer.step(clock(), force=once)
            if cp:
                log(f"checkpoint seq {cp.seq} {cp.hash[:16]}… -> {anchorer.path}")
        except AnchorError as exc:
            log(f"ALERT: {exc}")
            if once:
                return 1
        if once:
            return 0
        time.sleep(poll_seconds)


# --- verification -------------------------------------------------------------------------


# Clock skew between the app hosts, which stamp the entries, and the verifying host.
STALE_GRACE = timedelta(minutes=5)


def _stale(
    session: Session, settings, newest: Checkpoint | None, last_seq: int, now: datetime
) -> Finding | None:
    """Entries the checkpointer should have signed long ago and has not.

    Nothing in the checkpoint file can show that the file itself was deleted or put back
    to an older copy (and a database rewritten after that copy's newest checkpoint then
    passes as merely unanchored); what shows it is time. The checkpointer signs at most
    `audit_checkpoint_minutes` after the newest checkpoint, so the first entry after it
    must be anchored one interval after that (or after the entry itself, if later).
    """
    anchored = newest.seq if newest else 0
    if last_seq <= anchored:
        return None
    first = session.scalar(select(AuditEntry.ts).where(AuditEntry.seq == anchored + 1))
    if first is None:
        return None
    interval = timedelta(minutes=settings.audit_checkpoint_minutes)
    due = first if newest is None else max(first, newest.time + interval)
    if now - due <= interval + STALE_GRACE:
        return None
    late = int((now - due).total_seconds() // 60)
    return Finding("stale", anchored + 1, f"entry seq {anchored + 1} is {late} minutes past "
                   "the time it should have been anchored: the checkpointer is not running, "
                   "or its checkpoint file was deleted or replaced by an older copy")  # fmt: skip


def verify(
    session: Session, settings, checkpoints: Path | None = None, *, now: datetime | None = None
) -> Verification:
    """Check the chain from genesis and against every checkpoint of this database (or
    every checkpoint in the file `checkpoints`, whichever database it names: a restored
    copy checked against the production checkpoints).

    Findings (see `audit.Finding.kind`): `broken`, `gap`, `head` from the chain itself;
    `cut` (the database no longer reaches a checkpoint), `wipe` (it holds no entry at
    all), `rewrite` (it disagrees with the newest checkpoint it reaches: re-chained after
    an edit or a deletion, or forged entries in place of real ones), `fork` (it agrees
    with the newest checkpoint but not an older one: two histories were signed),
    `bad_checkpoint` (a line that is not a checkpoint of this key); and, not a failure,
    `unanchored` (entries after the newest checkpoint, which nothing vouches for yet).
    `stale` (entries that should have been anchored long before `now`: the checkpointer
    is down, or its file was deleted or rolled back) fails in production, where the
    checkpointer must run, and is a warning in the demo.
    """
    url = session.get_bind().engine.url
    path, db = checkpoints or checkpoint_file(settings, url), database_label(url)
    lines = list(read(path))
    keys = load_keys(settings, private=False) if lines else None
    if settings.is_production and keys is None:
        key_path(settings)  # refuses when no key is configured
    findings: list[Finding] = []
    good: list[Checkpoint] = []
    for number, cp in lines:
        if cp is not None and cp.db != db and checkpoints is None:
            continue  # another database's checkpoint in a copied file: not evidence here
        if cp is None or keys is None or not _valid(keys, cp):
            findings.append(Finding("bad_checkpoint", None, f"{path.name} line {number} is not "
                                    "a checkpoint signed by this key"))  # fmt: skip
        else:
            good.append(cp)
    chain = audit.scan(session, {cp.seq for cp in good})
    findings += chain.findings
    findings += _against_checkpoints(chain, good)
    newest = max(good, key=lambda c: c.seq, default=None)
    anchored = newest.seq if newest else 0
    if chain.last_seq > anchored:
        since = (
            f"the newest checkpoint (seq {anchored}, {newest.ts})"
            if newest
            else "no checkpoint yet"
        )
        findings.append(Finding("unanchored", anchored + 1, f"{chain.last_seq - anchored} entries "
                                f"after {since} are not yet anchored"))  # fmt: skip
        stale = _stale(session, settings, newest, chain.last_seq, now or datetime.now(UTC))
        findings += [stale] if stale else []
    return audit.verdict(
        chain.checked,
        findings,
        anchored_seq=newest.seq if newest else None,
        unanchored=max(chain.last_seq - anchored, 0),
        warnings=audit.WARNINGS - {"stale"} if settings.is_production else audit.WARNINGS,
    )


def _against_checkpoints(chain: audit.Scan, good: list[Checkpoint]) -> list[Finding]:
    found: list[Finding] = []
    by_seq: dict[int, set[str]] = {}
    for cp in good:
        by_seq.setdefault(cp.seq, set()).add(cp.hash)
    for seq, hashes in sorted(by_seq.items()):
        if len(hashes) > 1:
            found.append(Finding("fork", seq, f"two checkpoints of entry seq {seq} differ"))
    if not by_seq:
        return found
    # A checkpoint of the empty log (older checkpointers signed one when forced) holds
    # whatever the log holds now.
    stored = {0: audit.GENESIS, **chain.stored}
    matched = {s for s, h in by_seq.items() if stored.get(s) in h}
    newest = max(by_seq)
    if chain.last_seq < newest:
        kind = "wipe" if chain.last_seq == 0 else "cut"
        found.append(Finding(kind, chain.last_seq + 1, f"the log ends at seq {chain.last_seq} "
                             f"but a checkpoint vouches for {newest} entries"))  # fmt: skip
    reached = [s for s in by_seq if s <= chain.last_seq]
    differ = [s for s in reached if s not in matched]
    if differ and max(reached) in differ:
        # The first change lies after the last checkpoint that still matches before the
        # first that does not: the checkpoints bound it, however it was re-chained.
        lo = min(differ)
        since = max((s for s in matched if s < lo), default=0)
        found.append(Finding("rewrite", since + 1, f"the log differs from the signed checkpoint "
                             f"of seq {max(reached)}; the first change lies in entries "
                             f"{since + 1}..{lo}"))  # fmt: skip
    elif differ:
        found.append(Finding("fork", min(differ), f"the log agrees with the checkpoint of seq "
                             f"{max(reached)} but not with that of seq {min(differ)}: two "
                             "histories were signed"))  # fmt: skip
    return found
