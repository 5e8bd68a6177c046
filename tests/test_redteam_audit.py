"""Red team of the audit trail, the hub's boundary and the key ring (issue 15, items 6-9):
the attacks an outside tester makes on the class of each fix, as tests.

Each test that documents a problem fixed here failed before the fix; tests of attacks
that found nothing say so in their docstring, and keep the behaviour pinned.
"""

from __future__ import annotations

import dataclasses
import inspect
import shutil
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy import inspect as sa_inspect

from hub import demo
from hub.models import AuditEntry, Person
from hub.security import anchor, audit, keys
from hub.security.crypto import FieldCipher, parse_key_ring
from hub.security.errors import HubError
from hub.security.narrative import UNREADABLE, reseal, reveal, seal
from hub.security.policy import Principal
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS
from tests.security_support import at, empty_store, principal, seeded_copy

USER = Principal(1, "someone", "Someone", "investigator", "340100")
PURSUIT = Reason("pursuit", demo.PURSUIT_CASE_NO)
ID_NUMBER = "11010519491231002X"
PHONE = "13800138000"


def _settings(tmp_path: Path, **kw):
    return dataclasses.replace(load_settings(), audit_anchor_dir=str(tmp_path / "anchor"), **kw)


def _production(tmp_path: Path):
    """Production settings with a checkpoint key of their own."""
    key = tmp_path / "keys" / "audit.pem"
    anchor.generate_key(key)
    return _settings(tmp_path, env="production", audit_signing_key_file=str(key))


def _record(engine, n: int, start: int = 0) -> None:
    with transaction(engine) as s:
        for i in range(start, start + n):
            audit.record(s, USER, "sign_in", now=at(minutes=i), result_count=i, decision="ok")


def _verify(engine, settings, **kw) -> audit.Verification:
    with session_factory(engine)() as s:
        return anchor.verify(s, settings, **kw)


def _kinds(result: audit.Verification) -> set[str]:
    return {f.kind for f in result.findings}


def _anchored_log(engine, settings) -> anchor.Anchorer:
    """10 entries, checkpoints at seq 4 and 8 (signed at minute 30), 9 and 10 not yet."""
    anchorer = anchor.Anchorer.open(engine, settings)
    for start in (0, 4):
        _record(engine, 4, start=start)
        assert anchorer.step(at(minutes=30), force=True) is not None
    _record(engine, 2, start=8)
    return anchorer


@pytest.fixture
def sqlite_log(tmp_path):
    engine = empty_store("sqlite", tmp_path)
    yield engine
    engine.dispose()


# --- the checkpoint file --------------------------------------------------------------------


def test_a_torn_last_line_does_not_swallow_the_next_checkpoint(sqlite_log, tmp_path) -> None:
    """Found: a checkpoint appended after a line torn mid-write (full disk, power loss) was
    glued to it, and both were lost. Fixed in anchor.append: the torn line is ended first."""
    settings = _settings(tmp_path)
    anchorer = _anchored_log(sqlite_log, settings)
    path = anchorer.path
    path.write_bytes(path.read_bytes() + b'{"db":"sqlite:/x","seq":9,"ha')  # torn
    restarted = anchor.Anchorer.open(sqlite_log, settings)
    assert restarted.step(at(minutes=40), force=True).seq == 10
    result = _verify(sqlite_log, settings)
    assert result.anchored_seq == 10 and result.unanchored == 0, result.message()
    assert _kinds(result) == {"bad_checkpoint"}  # the torn line itself stays named
    assert anchor.Anchorer.open(sqlite_log, settings).last.seq == 10


@pytest.mark.parametrize(
    "damage",
    [
        b"\xff\xfe not text \x80\n",
        b"[" * 200_000 + b"\n",
        b'["a list"]\n',
        b'{"db":"d","seq":4,"hash":"h","ts":"2026-11-22T08:00:00+00:00","key_id":"k","sig":7}\n',
        b'{"db":"d","seq":true,"hash":"h","ts":"2026-11-22T08:00:00+00:00","key_id":"k","sig":""}\n',
        b'{"db":"d","seq":4.0,"hash":"h","ts":"2026-11-22T08:00:00+00:00","key_id":"k","sig":""}\n',
    ],
    ids=["not-utf8", "deep-nesting", "json-list", "sig-number", "seq-bool", "seq-float"],
)
def test_a_damaged_checkpoint_file_is_named_not_raised(sqlite_log, tmp_path, damage) -> None:
    """Found: a line that is not UTF-8, nests too deeply or holds a number for the
    signature made `audit verify` crash instead of naming the damage. Fixed in anchor.read."""
    settings = _settings(tmp_path)
    anchorer = _anchored_log(sqlite_log, settings)
    anchorer.path.write_bytes(anchorer.path.read_bytes() + damage)
    result = _verify(sqlite_log, settings)
    assert not result.ok and _kinds(result) >= {"bad_checkpoint"}, result.message()
    assert result.anchored_seq == 8  # the good checkpoints still count


def test_reordered_checkpoint_lines_change_nothing(sqlite_log, tmp_path) -> None:
    """Not found: the order of the lines is not evidence (the newest is the highest seq)."""
    settings = _settings(tmp_path)
    path = _anchored_log(sqlite_log, settings).path
    path.write_text("".join(reversed(path.read_text().splitlines(keepends=True))))
    result = _verify(sqlite_log, settings)
    assert (result.ok, result.anchored_seq, result.unanchored) == (True, 8, 2)


def test_a_swapped_public_key_disowns_every_checkpoint(sqlite_log, tmp_path) -> None:
    """Not found: replacing the public key file makes every checkpoint `bad_checkpoint`;
    only whoever also holds the private key (the anchor host) can re-sign."""
    settings = _settings(tmp_path)
    _anchored_log(sqlite_log, settings)
    other = anchor.generate_key(tmp_path / "other" / "k.pem")
    assert other.private is not None
    pub = anchor.key_path(settings)
    shutil.copyfile(tmp_path / "other" / "k.pem.pub", pub.with_name(pub.name + ".pub"))
    result = _verify(sqlite_log, settings)
    assert not result.ok and _kinds(result) >= {"bad_checkpoint", "unanchored"}
    assert result.anchored_seq is None


# --- the anchor itself deleted or rolled back ------------------------------------------------


def _rechain_from(conn, seq: int) -> None:
    """Edit entry `seq` and recompute every hash after it, moving the head."""
    from sqlalchemy.orm import Session

    conn.execute(text("UPDATE audit_log SET result_count = 77 WHERE seq = :s"), {"s": seq})
    prev, last = audit.GENESIS, 0
    with Session(bind=conn) as s:
        for entry in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all():
            new = audit.entry_hash(prev, entry)
            conn.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
                         {"p": prev, "h": new, "s": entry.seq})  # fmt: skip
            prev, last = new, entry.seq
    conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": last, "h": prev})


def _unguarded(engine):
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
    else:
        conn.execute(text("SET session_replication_role = replica"))
    return conn


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rolled_back_checkpoint_file_hiding_a_rewrite_fails_in_production(
    backend: str, tmp_path
) -> None:
    """Found: the checkpoint file put back to an older copy, and the entries after that
    copy's newest checkpoint rewritten, passed verify as merely "unanchored". Fixed in
    anchor.verify: entries long past the time they should have been signed are `stale`,
    a failure in production (a warning in the demo)."""
    engine = empty_store(backend, tmp_path)
    settings = _production(tmp_path)
    try:
        anchorer = anchor.Anchorer.open(engine, settings)
        _record(engine, 4)
        anchorer.step(at(minutes=30), force=True)
        older = anchorer.path.read_bytes()
        _record(engine, 4, start=4)
        anchorer.step(at(minutes=40), force=True)
        with _unguarded(engine) as conn:
            _rechain_from(conn, 6)
            conn.commit()
        anchorer.path.write_bytes(older)  # the anchor host's file rolled back
        later = at(minutes=40, day=1)
        result = _verify(engine, settings, now=later)
        assert not result.ok and result.first_broken_seq == 5, result.message()
        assert "stale" in _kinds(result) and "older copy" in result.reason
        # the demo names it as a warning; the same log checked soon after is not stale
        assert _verify(engine, dataclasses.replace(settings, env="demo"), now=later).ok
        assert _verify(engine, settings, now=at(minutes=38)).ok
    finally:
        engine.dispose()


def test_a_deleted_anchor_dir_fails_in_production(sqlite_log, tmp_path) -> None:
    """Found: deleting the checkpoint folder reset verify to "nothing anchored yet", ok."""
    settings = _production(tmp_path)
    _anchored_log(sqlite_log, settings)
    shutil.rmtree(settings.audit_anchor_dir)
    result = _verify(sqlite_log, settings, now=at(day=1))
    assert (result.ok, result.first_broken_seq, _kinds(result)) == (
        False, 1, {"stale", "unanchored"}
    ), result.message()  # fmt: skip
    # a new log not yet reached by the checkpointer is no false alarm
    assert _verify(sqlite_log, settings, now=at(minutes=9)).ok


# --- the chain itself -------------------------------------------------------------------------


def test_every_column_of_an_entry_is_hashed() -> None:
    """Not found: every column but the row id and the links is in the hashed form, so no
    column can be rewritten silently (the row id orders nothing: readers order by seq)."""
    columns = {c.key for c in sa_inspect(AuditEntry).columns}
    assert columns == set(audit.CHAINED_FIELDS) | {"id", "prev_hash", "hash"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_entry_inserted_in_the_middle_and_rechained_is_a_rewrite(backend, tmp_path) -> None:
    """Not found: an entry slipped in at seq 6 with everything after renumbered and
    re-chained is named `rewrite` between the checkpoints around it."""
    engine = empty_store(backend, tmp_path)
    settings = _settings(tmp_path)
    try:
        _anchored_log(engine, settings)
        with _unguarded(engine) as conn:
            conn.execute(text("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 6"))
            conn.execute(text("UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1006"))
            conn.execute(text(
                "INSERT INTO audit_log (seq, ts, action, prev_hash, hash) "
                "SELECT 6, ts, 'sign_in', '', '' FROM audit_log WHERE seq = 5"))  # fmt: skip
            _rechain_from(conn, 6)
            conn.commit()
        result = _verify(engine, settings)
        assert (result.ok, result.first_broken_seq) == (False, 5), result.message()
        assert "rewrite" in _kinds(result)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_entries_of_any_text_are_stored_alike_and_verify(backend, tmp_path) -> None:
    """Found: an entry holding a lone surrogate could not be hashed (UnicodeEncodeError),
    and text longer than its column was kept by SQLite but refused by PostgreSQL (so a
    refusal could not be audited there); a times zone other than UTC, microseconds and
    floats verify alike. Fixed in audit.record."""
    engine = empty_store(backend, tmp_path)
    try:
        with transaction(engine) as s:
            audit.record(
                s, None, "sign_in_refused", username="x\ud800" + "y" * 100,
                now=datetime(2026, 11, 22, 16, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
                purpose="\udfff" + "p" * 40, case_no=f"案{PHONE} " + "x" * 40, dataset="d" * 40,
                query={"kind": "plate", "value": "皖A\ud83d" + ID_NUMBER},
                detail={"f": 0.1, "n": [1.5e300, -0.0], "x\ud800": "\x00"}, decision="c" * 40,
            )  # fmt: skip
        with session_factory(engine)() as s:
            entry = s.scalars(select(AuditEntry)).one()
            assert audit.verify(s).ok
        assert len(entry.username) == 64 and len(entry.purpose) == 32 and "\ufffd" in entry.purpose
        for value in (entry.case_no, entry.query, entry.subject, entry.detail):
            assert ID_NUMBER not in value and PHONE not in value
        assert entry.ts.microsecond == 123456 and entry.ts.hour == 8
    finally:
        engine.dispose()


def test_a_forced_checkpoint_of_an_empty_log_is_no_false_fork(sqlite_log, tmp_path) -> None:
    """Found: `hub audit anchor --once` on an empty log (at install) signed seq 0, which
    verify then called a `fork` for ever. Fixed in Anchorer.step (nothing to sign) and
    anchor.verify (a seq-0 checkpoint signed by an older checkpointer holds)."""
    settings = _settings(tmp_path)
    anchorer = anchor.Anchorer.open(sqlite_log, settings)
    assert anchorer.step(at(), force=True) is None
    keys_ = anchor.load_keys(settings, private=True)
    label = anchor.database_label(sqlite_log.url)
    anchor.append(anchorer.path, anchor.sign(keys_, label, 0, audit.GENESIS, at()))
    _record(sqlite_log, 3)
    assert anchorer.step(at(minutes=5), force=True).seq == 3
    result = _verify(sqlite_log, settings)
    assert (result.ok, result.anchored_seq, _kinds(result)) == (True, 3, set()), result.message()


@pytest.mark.parametrize("backend", BACKENDS)
def test_appends_while_the_checkpointer_reads_raise_no_false_alarm(backend, tmp_path) -> None:
    """Entries committed while the checkpointer reads never make it refuse, and every
    checkpoint it signs verifies (this test found the empty-log checkpoint above)."""
    engine = empty_store(backend, tmp_path)
    settings = _settings(tmp_path)
    done = threading.Event()

    def write() -> None:
        for i in range(150):
            _record(engine, 1, start=i)
        done.set()

    try:
        writer = threading.Thread(target=write)
        anchorer = anchor.Anchorer.open(engine, settings)
        writer.start()
        signed = 0
        while not done.is_set():
            signed += anchorer.step(at(minutes=30), force=True) is not None
        writer.join()
        anchorer.step(at(minutes=30), force=True)
        result = _verify(engine, settings)
        assert (result.ok, result.anchored_seq, result.unanchored) == (True, 150, 0)
        assert signed >= 1
    finally:
        engine.dispose()


# --- the boundary ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    yield Hub(engine, load_settings()), engine
    engine.dispose()


def _last_seq(engine) -> int:
    with session_factory(engine)() as s:
        return s.scalar(select(func.max(AuditEntry.seq))) or 0


def _refusals(engine, since: int) -> list[AuditEntry]:
    with session_factory(engine)() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.seq > since,
                                                       AuditEntry.action.like("%_refused"))))  # fmt: skip


def _refused_once(env, call) -> tuple[HubError, AuditEntry]:
    hub, engine = env
    before = _last_seq(engine)
    with pytest.raises(HubError) as caught:
        call(hub)
    refusals = _refusals(engine, before)
    assert len(refusals) == 1 and refusals[0].decision == caught.value.code
    return caught.value, refusals[0]


def _reachable(hub: Hub) -> list[tuple[object, str]]:
    """Every public method of the hub and of every facade it composes (an object that
    holds the hub to act through it); values such as the settings are not entry points."""
    facades = [v for v in vars(hub).values() if any(x is hub for x in vars(v).values())
               if hasattr(v, "__dict__")]  # fmt: skip
    objects = [hub, *facades]
    return [
        (obj, name)
        for obj in objects
        for name, member in vars(type(obj)).items()
        if not name.startswith("_") and inspect.isfunction(member)
    ]


def test_every_method_reachable_from_a_hub_is_guarded(env) -> None:
    hub, _ = env
    reachable = _reachable(hub)
    assert {type(o).__name__ for o, _ in reachable} >= {"Hub", "WatchDesk", "NoticeBoard"}
    unguarded = [f"{type(o).__name__}.{n}" for o, n in reachable
                 if not hasattr(getattr(type(o), n), "__wrapped__")]  # fmt: skip
    assert not unguarded


# A value of each kind that no caller means and that used to crash a call somewhere:
# (annotation word, value)
NONSENSE = [
    ("int", 2**70),  # OverflowError in the driver (SQLite), DataError (PostgreSQL)
    ("float", float("nan")),  # stored as NaN, compared as nothing
    ("datetime", datetime(2026, 11, 22, 8)),  # naive: StatementError mid-transaction
    ("datetime", datetime(1, 1, 1, tzinfo=UTC)),  # OverflowError in date arithmetic
]


def _plausible(param: inspect.Parameter, who: Principal):
    ann = str(param.annotation)
    for word, value in (("Principal", who), ("Reason", PURSUIT), ("datetime", at()),
                        ("bool", False), ("int", 1), ("float", 1.0), ("bytes", b"x"),
                        ("dict", {}), ("str", "340100")):  # fmt: skip
        if word in ann:
            return value
    return None


def test_no_method_crashes_on_numbers_or_times_no_one_means(env) -> None:
    """Found: over 100 (method, argument) pairs crashed (OverflowError, DataError,
    StatementError) on an integer wider than 64 bits, NaN, a time without a zone or the
    year 1; now every one is refused, audited once. Fixed in boundary.check_input."""
    hub, engine = env
    who = principal(engine, "investigator.hf")
    crashed, tried = [], 0
    for obj, name in _reachable(hub):
        fn = inspect.unwrap(getattr(type(obj), name))
        params = [p for p in list(inspect.signature(fn).parameters.values())[1:]
                  if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]  # fmt: skip
        base = {p.name: _plausible(p, who) for p in params}
        for p in params:
            for word, value in NONSENSE:
                if word not in str(p.annotation):
                    continue
                tried += 1
                before = _last_seq(engine)
                try:
                    getattr(obj, name)(**{**base, p.name: value})
                    crashed.append(f"{name}({p.name}={value!r}): accepted")
                except HubError as exc:
                    if exc.code not in ("out_of_range", "bad_input"):
                        crashed.append(f"{name}({p.name}={value!r}): {exc.code}")
                    elif len(_refusals(engine, before)) != 1:
                        crashed.append(f"{name}({p.name}={value!r}): not audited once")
                except Exception as exc:  # noqa: BLE001 - what the test looks for
                    crashed.append(f"{name}({p.name}={value!r}): {type(exc).__name__}")
    assert tried > 100 and not crashed, crashed


def test_values_the_store_refuses_are_refused_alike(env) -> None:
    """Found: a negative limit was an error on PostgreSQL (and no limit at all on
    SQLite); an id wider than its int4 column crashed PostgreSQL only. Fixed in
    boundary._guarded (DataError and OverflowError become `out_of_range`)."""
    hub, engine = env
    commander = principal(engine, "commander.hf")
    exc, _ = _refused_once(env, lambda h: h.act_on_request(commander, 2**40, "dispatched"))
    assert exc.code in ("out_of_range", "unknown_resource_request")
    if engine.dialect.name == "postgresql":
        exc, _ = _refused_once(env, lambda h: h.audit_log(principal(engine, "auditor"), limit=-5))
        assert exc.code == "out_of_range"


def test_a_keyword_name_no_store_can_hold_is_refused(env) -> None:
    """Found: a keyword argument named with a lone surrogate reached the refusal's audit
    entry as its field name and crashed it (UnicodeEncodeError). Fixed in boundary and
    audit."""
    hub, engine = env
    commander = principal(engine, "commander.hf")
    exc, entry = _refused_once(env, lambda h: h.raise_alert(commander, **{"\ud800": "x"}))
    assert exc.code == "bad_characters" and "\ud800" not in entry.detail


@pytest.mark.parametrize(
    "call",
    [
        lambda h, e: h.search_plate(principal(e, "investigator.hf"), "皖A12345",
                                    Reason(ID_NUMBER, "X")),
        lambda h, e: h.search_plate(principal(e, "investigator.hf"), "皖A12345",
                                    Reason("pursuit", PHONE)),
        lambda h, e: h.search_plate(principal(e, "investigator.hf"), ID_NUMBER, PURSUIT),
        lambda h, e: h.raise_alert(principal(e, "commander.hf"), **{ID_NUMBER: "\x00"}),
        lambda h, e: h.sign_in(PHONE, "wrong"),
    ],
    ids=["purpose", "case-no", "plate", "keyword-name", "user-name"],
)  # fmt: skip
def test_an_identifier_typed_into_a_refused_call_is_not_kept_in_clear(env, call) -> None:
    """Found: an ID number or phone typed as a purpose, case number, plate or keyword name
    was written in clear into the append-only log by the refusal's entry (the free-text
    check covers only named free-text parameters). Fixed in audit.record (masked)."""
    hub, engine = env
    before = _last_seq(engine)
    with pytest.raises(HubError):
        call(hub, engine)
    with session_factory(engine)() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.seq > before)).all()
    assert entries
    for entry in entries:
        stored = " ".join(str(getattr(entry, f)) for f in audit.CHAINED_FIELDS)
        assert ID_NUMBER not in stored and PHONE not in stored, stored


def test_a_principal_forged_with_another_role_is_refused(env) -> None:
    """Not found: the hub re-reads the user; a principal claiming another role or city
    for a real user id ends the session, audited."""
    hub, engine = env
    officer = principal(engine, "officer.hf")
    forged = dataclasses.replace(officer, role="auditor")
    exc, entry = _refused_once(env, lambda h: h.audit_log(forged))
    assert exc.code == "session_ended"


def test_a_principal_forged_with_another_name_is_refused(env) -> None:
    """Found: the re-check compared id, role and home but not the name, so the audit
    entries named whoever the principal said."""
    hub, engine = env
    officer = principal(engine, "officer.hf")
    forged = dataclasses.replace(officer, username="commander.hf")
    with pytest.raises(HubError):
        hub.notices.check(forged)


# --- the key ring ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key_id", ["a b", "k:1", "x" * 17, "k⟦1", "k,1", "k\x1b[31m", ""],
    ids=["space", "colon", "too-long", "bracket", "comma", "control", "empty"],
)  # fmt: skip
def test_a_key_id_that_fits_no_column_or_token_is_refused_up_front(key_id: str) -> None:
    """Found: HUB_SM4_KEY_ID (and a cipher built by the CLI) took any id: one longer
    than the 16-wide key_id column was refused by PostgreSQL only at the first write,
    one with a space or ':' failed at the first narrative sealed. Fixed in FieldCipher."""
    with pytest.raises(ValueError):
        FieldCipher(b"\x01" * 16, key_id, b"i")
    with pytest.raises(ValueError):
        FieldCipher.from_settings(dataclasses.replace(load_settings(), sm4_key_id=key_id))
    with pytest.raises(ValueError):
        FieldCipher(b"\x01" * 16, "k1", b"i", ((key_id, b"\x02" * 16),))


def test_a_ring_naming_one_key_twice_is_refused() -> None:
    """Not found for HUB_SM4_OLD_KEYS; found for a ring built in code (now refused)."""
    with pytest.raises(ValueError, match="twice"):
        parse_key_ring(f"a:{'01' * 16},a:{'02' * 16}")
    with pytest.raises(ValueError, match="twice"):
        FieldCipher(b"\x01" * 16, "k1", b"i", (("a", b"\x02" * 16), ("a", b"\x03" * 16)))


def test_a_token_under_a_key_the_ring_lacks_shows_unreadable_and_is_kept() -> None:
    """Not found: such a token never raises; resealing keeps it rather than lose it."""
    gone = FieldCipher(b"\x05" * 16, "gone-1", b"i")
    current = FieldCipher(b"\x06" * 16, "k1", b"i")
    stored = seal(f"联系 {PHONE}", gone)
    assert reveal(stored, current, mask_ids=False, mask_phones=False) == f"联系 {UNREADABLE}"
    assert reseal(stored, current) == stored


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_row_stored_without_a_key_id_moves_with_a_rotation(backend, tmp_path_factory) -> None:
    """Found: a row without a key id (written before ids were stored) decrypts under the
    current key, but rotation skipped it: afterwards it was tried with the new key and
    read as nothing. Fixed in keys._reencrypt."""
    engine = seeded_copy(backend, tmp_path_factory)
    old = FieldCipher.from_settings(load_settings())
    new = FieldCipher(b"\x07" * 16, "k2", old.index_key)
    try:
        with transaction(engine) as s:
            row = s.scalars(select(Person).where(Person.id_enc.is_not(None))
                            .execution_options(policy="validation").limit(1)).one()  # fmt: skip
            clear, pid = old.decrypt("id_number", row.id_enc, row.key_id), row.id
            s.execute(text("UPDATE persons SET key_id = NULL WHERE id = :i"), {"i": pid})
        with transaction(engine) as s:
            keys.rotate(s, old, new, now=at())
        after = dataclasses.replace(new, old_keys=((old.key_id, old.key),))
        with session_factory(engine)() as s:
            row = s.get(Person, pid, execution_options={"policy": "validation"})
            assert after.decrypt("id_number", row.id_enc, row.key_id) == clear
            assert keys.remaining(s, new.key_id) == {}
    finally:
        engine.dispose()
