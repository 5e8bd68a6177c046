"""Signed checkpoints of the audit chain (`hub.security.anchor`): every way a custodian of
the database can rewrite the log is named by `audit verify`, on both backends.

Each tamper case starts from the same log: 10 entries, checkpoints signed at seq 4 and 8
by the real checkpointer, entries 9 and 10 not yet anchored.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, select, text

from hub.models import AuditEntry
from hub.security import anchor, audit
from hub.security.policy import Principal
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import BACKENDS
from tests.security_support import at, empty_store, principal, seeded_copy

ROOT = Path(__file__).resolve().parents[1]
USER = Principal(1, "someone", "Someone", "investigator", "340100")


def _settings(tmp_path: Path, **kw):
    return dataclasses.replace(load_settings(), audit_anchor_dir=str(tmp_path / "anchor"), **kw)


def _record(engine: Engine, n: int, start: int = 0) -> None:
    with transaction(engine) as s:
        for i in range(start, start + n):
            audit.record(s, USER if i % 2 else None, "sign_in", username="x",
                         now=at(minutes=i), result_count=i, decision="ok")  # fmt: skip


def _verify(engine: Engine, settings) -> audit.Verification:
    with session_factory(engine)() as s:
        return anchor.verify(s, settings)


def _failing(result: audit.Verification) -> set[str]:
    return {f.kind for f in result.findings if f.kind not in audit.WARNINGS}


# --- tampering, as a custodian of the database would do it ----------------------------------


def _unguarded(engine: Engine, replica: bool) -> Connection:
    """A connection that may UPDATE and DELETE the log: the append-only triggers dropped,
    or (PostgreSQL) left in place and skipped with session_replication_role=replica."""
    conn = engine.connect()
    if replica:
        conn.execute(text("SET session_replication_role = replica"))
    elif engine.dialect.name == "sqlite":
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))
    else:
        conn.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
    return conn


def _rechain(conn: Connection) -> None:
    """Recompute every hash from genesis and point the head at the new tail, as a forger
    who knows the (public) hashing rule does."""
    from sqlalchemy.orm import Session

    prev, seq = audit.GENESIS, 0
    with Session(bind=conn) as s:
        for entry in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all():
            new = audit.entry_hash(prev, entry)
            conn.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
                         {"p": prev, "h": new, "s": entry.seq})  # fmt: skip
            prev, seq = new, entry.seq
    _set_head(conn, seq, prev)


def _set_head(conn: Connection, seq: int, head: str) -> None:
    conn.execute(
        text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": seq, "h": head}
    )


def _delete_and_renumber(conn: Connection, seq: int) -> None:
    conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": seq})
    last = conn.execute(text("SELECT max(seq) FROM audit_log")).scalar()
    for s in range(seq + 1, last + 1):
        conn.execute(text("UPDATE audit_log SET seq = :n WHERE seq = :s"), {"n": s - 1, "s": s})


def _forge_append(conn: Connection, engine: Engine) -> None:
    """A well-formed entry appended after the tail, chained and with the head moved."""
    conn.commit()
    _record(engine, 1, start=100)


def plain_edit(conn, engine, settings):
    conn.execute(text("UPDATE audit_log SET result_count = 77 WHERE seq = 3"))


def plain_cut(conn, engine, settings):
    conn.execute(text("DELETE FROM audit_log WHERE seq > 8"))


def cut_with_head_fixed(conn, engine, settings):
    conn.execute(text("DELETE FROM audit_log WHERE seq > 6"))
    _set_head(conn, 6, conn.execute(text("SELECT hash FROM audit_log WHERE seq = 6")).scalar())


def wipe_with_head_reset(conn, engine, settings):
    conn.execute(text("DELETE FROM audit_log"))
    _set_head(conn, 0, audit.GENESIS)


def rechain_after_edit(conn, engine, settings):
    conn.execute(text("UPDATE audit_log SET result_count = 77 WHERE seq = 3"))
    _rechain(conn)


def rechain_after_delete(conn, engine, settings):
    _delete_and_renumber(conn, 3)
    _rechain(conn)


def forged_tail(conn, engine, settings):
    conn.execute(text("DELETE FROM audit_log WHERE seq > 7"))
    _set_head(conn, 7, conn.execute(text("SELECT hash FROM audit_log WHERE seq = 7")).scalar())
    conn.commit()
    _record(engine, 3, start=200)


def forged_append(conn, engine, settings):
    _forge_append(conn, engine)


def fork_signed(conn, engine, settings):
    """The log re-chained, then a checkpoint of the new history signed by someone who
    holds the key and bypasses the checkpointer's own check."""
    rechain_after_edit(conn, engine, settings)
    conn.commit()
    seq, head = conn.execute(text("SELECT seq, hash FROM audit_head")).one()
    keys = anchor.load_keys(settings, private=True)
    anchor.append(
        anchor.checkpoint_file(settings, engine.url),
        anchor.sign(keys, anchor.database_label(engine.url), seq, head, at(minutes=60)),
    )


def checkpoint_line_edited(conn, engine, settings):
    path = anchor.checkpoint_file(settings, engine.url)
    lines = path.read_text().splitlines(keepends=True)
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "seq": 2}) + "\n"
    path.write_text("".join(lines))


def checkpoint_of_another_key(conn, engine, settings):
    other = anchor.generate_key(Path(settings.audit_anchor_dir) / "other.pem")
    seq, head = conn.execute(text("SELECT seq, hash FROM audit_head")).one()
    anchor.append(
        anchor.checkpoint_file(settings, engine.url),
        anchor.sign(other, anchor.database_label(engine.url), seq, head, at(minutes=60)),
    )


def cut_with_head_fixed_at_4(conn, engine, settings):
    conn.execute(text("DELETE FROM audit_log WHERE seq > 4"))
    _set_head(conn, 4, conn.execute(text("SELECT hash FROM audit_log WHERE seq = 4")).scalar())


@dataclass(frozen=True)
class Case:
    name: str
    tamper: Callable
    failing: set[str]  # finding kinds that fail verification
    first_seq: int | None  # Verification.first_broken_seq
    unanchored: int = 2
    replica: bool = False  # PostgreSQL only: triggers skipped, not dropped
    chain_alone_sees_it: bool = False  # did the plain chain check (old code) catch it?


CASES = [
    Case("plain edit", plain_edit, {"broken"}, 3, chain_alone_sees_it=True),
    Case("plain cut", plain_cut, {"head"}, 9, unanchored=0, chain_alone_sees_it=True),
    Case("cut with head fixed", cut_with_head_fixed, {"cut"}, 7, unanchored=0),
    Case("wipe with head reset", wipe_with_head_reset, {"wipe"}, 1, unanchored=0),
    Case("re-chain after edit", rechain_after_edit, {"rewrite"}, 1),
    Case("re-chain after delete", rechain_after_delete, {"rewrite"}, 1, unanchored=1),
    Case("forged entries in place of the anchored tail", forged_tail, {"rewrite"}, 5),
    Case(
        "re-chain under session_replication_role=replica",
        rechain_after_edit,
        {"rewrite"},
        1,
        replica=True,
    ),  # fmt: skip
    Case("fork: a rewritten history signed too", fork_signed, {"fork"}, 4, unanchored=0),
    Case("checkpoint line edited", checkpoint_line_edited, {"bad_checkpoint"}, None),
    Case("checkpoint signed by another key", checkpoint_of_another_key, {"bad_checkpoint"}, None),
    # What no checkpoint can see yet: named as not anchored, and signed at the next
    # checkpoint like any entry (see docs/deploy.md).
    Case("forged appended entry", forged_append, set(), None, unanchored=3),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_tampering_is_named_by_verify(backend: str, case: Case, tmp_path) -> None:
    if case.replica and backend != "postgresql":
        pytest.skip("session_replication_role is PostgreSQL's")
    engine = empty_store(backend, tmp_path)
    settings = _settings(tmp_path)
    try:
        anchorer = anchor.Anchorer.open(engine, settings)
        for n in (4, 4):
            _record(engine, n, start=anchorer.last.seq if anchorer.last else 0)
            assert anchorer.step(at(minutes=30), force=True) is not None
        _record(engine, 2, start=8)
        before = _verify(engine, settings)
        assert (before.ok, before.anchored_seq, before.unanchored) == (True, 8, 2)

        with _unguarded(engine, case.replica) as conn:
            case.tamper(conn, engine, settings)
            conn.commit()

        result = _verify(engine, settings)
        assert (_failing(result), result.first_broken_seq) == (case.failing, case.first_seq), (
            result.message()
        )
        assert result.ok == (not case.failing)
        assert result.unanchored == case.unanchored, result.message()
        assert all(f.kind in result.message() for f in result.findings)
        with session_factory(engine)() as s:  # what the chain alone (the old verify) says
            assert audit.verify(s).ok == (not case.chain_alone_sees_it)
        if case.failing & {"head", "cut", "wipe", "rewrite"}:
            # the checkpointer never signs a history that does not extend its last checkpoint
            with pytest.raises(anchor.AnchorError) as refused:
                anchor.Anchorer.open(engine, settings).step(at(minutes=90), force=True)
            assert refused.value.code == "anchor_refused"
    finally:
        engine.dispose()


# --- the checkpointer, the CLI, the keys --------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoints_every_n_entries_and_every_few_minutes(backend: str, tmp_path) -> None:
    engine = empty_store(backend, tmp_path)
    settings = _settings(tmp_path, audit_checkpoint_every=3, audit_checkpoint_minutes=5.0)
    try:
        anchorer, t0 = anchor.Anchorer.open(engine, settings), at()
        assert anchorer.step(t0) is None  # an empty log: nothing to vouch for
        _record(engine, 2)
        assert anchorer.step(t0) is not None  # the first entries are anchored at once
        _record(engine, 2, start=2)
        assert anchorer.step(t0 + timedelta(minutes=1)) is None  # 2 new entries, 1 minute
        _record(engine, 1, start=4)
        assert anchorer.step(t0 + timedelta(minutes=1)).seq == 5  # 3 new entries
        _record(engine, 1, start=5)
        assert anchorer.step(t0 + timedelta(minutes=4)) is None
        assert anchorer.step(t0 + timedelta(minutes=6)).seq == 6  # 5 minutes since seq 5
        assert anchorer.step(t0 + timedelta(minutes=60)) is None  # nothing new: no line
        lines = anchor.checkpoint_file(settings, engine.url).read_text().splitlines()
        assert [json.loads(x)["seq"] for x in lines] == [2, 5, 6]
        assert set(json.loads(lines[0])) == {"db", "seq", "hash", "ts", "key_id", "sig"}
        # a checkpointer restarted later carries on from the file
        assert anchor.Anchorer.open(engine, settings).last.seq == 6
        assert _verify(engine, settings).anchored_seq == 6
    finally:
        engine.dispose()


def _cli(engine: Engine, *args: str, **env: str) -> subprocess.CompletedProcess:
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "hub", "audit", *args, "--db", url],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "HUB_LANG"}, **env},
    )  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_anchors_and_verify_names_the_cut(backend: str, tmp_path) -> None:
    engine = empty_store(backend, tmp_path)
    env = {"HUB_AUDIT_ANCHOR_DIR": str(tmp_path / "anchor")}
    try:
        _record(engine, 6)
        done = _cli(engine, "verify", **env)
        assert done.returncode == 0, done.stderr
        assert "审计链完整：已校验 6 条记录" in done.stdout and "尚未锚定" in done.stdout, (
            done.stdout
        )
        done = _cli(engine, "verify", **env, HUB_LANG="en")
        assert "intact: 6 entries" in done.stdout and "not anchored yet" in done.stdout
        done = _cli(engine, "anchor", "--once", **env)
        assert done.returncode == 0 and "checkpoint seq 6" in done.stderr, done.stderr
        assert (tmp_path / "anchor" / anchor.DEMO_KEY_NAME).exists()  # demo key, first use
        done = _cli(engine, "verify", **env)
        assert done.returncode == 0 and "已签名检查点覆盖到第 6 条" in done.stdout, done.stdout
        # a restore that lost the log, checked against this database's checkpoints
        (tmp_path / "restore").mkdir()
        restore = empty_store(backend, tmp_path / "restore")
        cps = anchor.checkpoint_file(_settings(tmp_path), engine.url)
        done = _cli(restore, "verify", "--checkpoints", str(cps), **env)
        restore.dispose()
        assert (
            done.returncode == 1 and "清空：已签名的日志全部消失（第 1 条记录）" in done.stderr
        ), done.stderr

        with _unguarded(engine, replica=False) as conn:
            cut_with_head_fixed_at_4(conn, engine, None)
            conn.commit()
        done = _cli(engine, "verify", **env)
        assert done.returncode == 1
        assert "审计链在第 5 条记录处断裂" in done.stderr, done.stderr
        assert "截断：日志短于已签名检查点（第 5 条记录）" in done.stderr, done.stderr
        done = _cli(engine, "anchor", "--once", **env)
        assert done.returncode == 1 and "ALERT: not signing" in done.stderr
    finally:
        engine.dispose()


def test_production_needs_a_key_of_its_own_and_verify_only_its_public_half(tmp_path) -> None:
    engine = empty_store("sqlite", tmp_path)
    prod = {"HUB_ENV": "production", "HUB_AUDIT_ANCHOR_DIR": str(tmp_path / "anchor")}
    try:
        _record(engine, 3)
        for action in ("anchor", "verify"):
            done = _cli(engine, action, "--once", **prod)
            assert (
                done.returncode == 1
                and "未配置审计检查点签名密钥（HUB_AUDIT_SIGNING_KEY）" in done.stderr
            )
        key = tmp_path / "checkpointer" / "audit-key.pem"
        done = _cli(engine, "keygen", "--out", str(key), **prod)
        assert done.returncode == 0, done.stderr
        assert oct(key.stat().st_mode & 0o777) == "0o600"
        assert _cli(engine, "keygen", "--out", str(key), **prod).returncode == 1  # kept
        done = _cli(engine, "anchor", "--once", **prod, HUB_AUDIT_SIGNING_KEY=str(key))
        assert done.returncode == 0, done.stderr
        # the verifying host has the public key only
        key.rename(tmp_path / "elsewhere.pem")
        done = _cli(engine, "verify", **prod, HUB_AUDIT_SIGNING_KEY=str(key))
        assert done.returncode == 0 and "已签名检查点覆盖到第 3 条" in done.stdout, done.stderr
        done = _cli(engine, "anchor", "--once", **prod, HUB_AUDIT_SIGNING_KEY=str(key))
        assert done.returncode == 1 and "无法读取审计检查点密钥" in done.stderr, done.stderr
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_audit_page_gets_the_findings(backend: str, tmp_path, tmp_path_factory) -> None:
    engine = seeded_copy(backend, tmp_path_factory)
    settings = _settings(tmp_path)
    try:
        hub, auditor = Hub(engine, settings), principal(engine, "auditor")
        assert anchor.Anchorer.open(engine, settings).step(at(), force=True) is not None
        result = hub.verify_audit_chain(auditor)
        assert (result.ok, result.unanchored) == (True, 0) and result.anchored_seq > 4
        with _unguarded(engine, replica=False) as conn:
            cut_with_head_fixed_at_4(conn, engine, settings)
            conn.commit()
        result = hub.verify_audit_chain(auditor)
        assert (result.ok, result.first_broken_seq) == (False, 5)
        assert [f.kind for f in result.findings] == ["cut"] and "vouches" in result.reason
    finally:
        engine.dispose()
