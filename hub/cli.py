"""`python -m hub …`: set up, seed and measure the store from the command line.

Every command takes `--db URL` (default: settings), `--lang zh|en` (default: HUB_LANG,
else Chinese) and `--help`. What a person reads is in the run's language with times in
Asia/Shanghai (hub.cli_text); JSON and CSV output stay as they are. Failures the user can
fix print one line saying what and how, and exit non-zero; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from hub.cli_text import (
    LanguageError,
    Parser,
    choose,
    error_text,
    has,
    label,
    lang,
    lang_from_argv,
    local_time,
    t,
    t_both,
)  # fmt: skip
from hub.settings import SettingsError, load_settings
from hub.store import StoreError

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Bad arguments or a refused action: message for the user, exit code 1."""


def _engine(args: argparse.Namespace):
    from hub.store import make_engine

    settings = load_settings()  # also with --db: a misspelt HUB_ENV is refused by name
    return make_engine(args.db or settings.database_url)


def cmd_init(args: argparse.Namespace) -> int:
    from hub.reference import load_reference
    from hub.store import current_revision, transaction, upgrade

    engine = _engine(args)
    before = current_revision(engine)
    upgrade(engine)
    with transaction(engine) as session:
        counts = load_reference(session=session)
    after = current_revision(engine)
    state = "created" if before is None else ("upgraded" if before != after else "current")
    print(t(f"init_{state}", revision=after, cities=counts["cities"],
            districts=counts["districts"], codes=counts["codes"]))  # fmt: skip
    return 0


def _parse_anchor(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(t("bad_anchor", value=raw)) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _refuse_in_production(what: str) -> None:
    """Refuse a command that would seed, reset or weaken the store under HUB_ENV=production."""
    if load_settings().is_production:
        raise UsageError(t("refused_in_production", what=t(what)))


def cmd_demo(args: argparse.Namespace) -> int:
    from hub import demo
    from hub.store import current_revision, head_revision

    if args.if_empty and load_settings().is_production:
        # The start script's "seed if empty": a production store is never seeded, and the
        # app must still start (it refuses to while demo keys or passwords are in use).
        print(t("demo_never_in_production"))
        return 0
    _refuse_in_production("what_demo")
    engine = _engine(args)
    if current_revision(engine) != head_revision():
        cmd_init(args)
    if args.if_empty and demo.record_count(engine):
        print(t("demo_not_empty"))
        return 0
    settings = load_settings()
    started = time.perf_counter()
    try:
        with _progress_bar(disable=args.quiet) as progress:
            written = demo.seed(
                engine,
                settings,
                size=args.size,
                seed=args.seed,
                anchor=_parse_anchor(args.anchor),
                reset=args.reset,
                progress=progress,
            )
    except demo.AlreadySeeded:
        raise UsageError(t("demo_already_seeded")) from None
    seconds = time.perf_counter() - started
    total = sum(written.values())
    print(t("demo_done", size=t(f"size_{args.size}"), seed=args.seed, rows=f"{total:,}",
            seconds=f"{seconds:.1f}"))  # fmt: skip
    for table, n in written.items():
        print(f"  {_pad(label('dataset', table), 20)} {n:>12,}")
    return 0


def _pad(text: str, width: int) -> str:
    """Left-aligned in `width` terminal columns (a Chinese character takes two)."""
    import unicodedata

    cols = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - cols, 0)


def _progress_bar(*, disable: bool = False):
    """The demo's progress bar (stderr), its table names and unit in the run's language."""
    from contextlib import contextmanager

    from tqdm import tqdm

    @contextmanager
    def bar_of():
        bar = tqdm(unit=t("progress_unit"), unit_scale=True, disable=disable, file=sys.stderr)

        def progress(table: str, rows: int, total: int) -> None:
            bar.set_description(label("dataset", table))
            bar.update(rows)

        try:
            yield progress
        finally:
            bar.close()

    return bar_of()


def _password(args: argparse.Namespace) -> str:
    """The new password: one line of standard input with --password-stdin, else asked
    for twice without echo; never an argument (ps and shell history would show it)."""
    if args.password is not None:
        raise UsageError(t("password_on_command_line"))
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass(t("password_prompt"))
    if first != getpass.getpass(t("password_again")):
        raise UsageError(t("passwords_differ"))
    return first


def cmd_users(args: argparse.Namespace) -> int:
    from hub.security import identity
    from hub.security.errors import HubError
    from hub.store import transaction

    engine = _engine(args)
    now = datetime.now(UTC)
    try:
        with transaction(engine) as session:
            if args.action == "list":
                for u in identity.list_users(session):
                    state = t("user_active") if u.active else t("user_locked")
                    home = "/".join(x for x in (u.city_code, u.district_code) if x) or "-"
                    print(f"{u.username:<22} {_pad(label('role', u.role), 18)} {home:<14} "
                          f"{_pad(state, 10)} {u.display_name}")  # fmt: skip
                return 0
            if args.action == "add":
                identity.add_user(
                    session, None, username=args.username, display_name=args.name or args.username,
                    role=args.role, password=_password(args), city_code=args.city,
                    district_code=args.district, now=now,
                )  # fmt: skip
            elif args.action in ("lock", "unlock"):
                identity.set_locked(session, None, args.username, args.action == "lock", now=now)
            elif args.action == "reset-password":
                identity.reset_password(session, None, args.username, _password(args), now=now)
            elif args.action == "set-role":
                identity.set_role(
                    session, None, args.username, args.role, args.city, args.district, now=now
                )
    except HubError as exc:
        raise UsageError(error_text(exc)) from None
    print(t(f"users_done_{args.action.replace('-', '_')}", username=args.username))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Verify the chain against the signed checkpoints, write checkpoints, or make a key."""
    from pathlib import Path

    from hub.security import anchor
    from hub.security.errors import HubError
    from hub.store import transaction

    settings = load_settings()
    try:
        if args.action == "keygen":
            out = Path(args.out or anchor.key_path(settings))
            if out.exists():
                raise UsageError(t("key_exists", path=out))
            keys = anchor.generate_key(out)
            print(t("keygen_done", key_id=keys.key_id, path=out))
            return 0
        engine = _engine(args)
        if args.action == "anchor":
            return anchor.run(engine, settings, poll_seconds=args.poll, once=args.once)
        with transaction(engine) as session:
            result = anchor.verify(
                session, settings, Path(args.checkpoints) if args.checkpoints else None
            )
    except HubError as exc:
        raise UsageError(error_text(exc)) from None
    print(_verification(result), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _verification(result) -> str:
    """hub.security.audit.Verification in the run's language (its findings by kind)."""
    if result.ok:
        head = t("chain_intact", checked=f"{result.checked:,}")
        if result.anchored_seq is not None:
            head += t("chain_anchored", seq=result.anchored_seq)
    else:
        head = t("chain_broken", seq=result.first_broken_seq)
    lines = [
        f"  {label('finding', f.kind)}" + (t("finding_at_seq", seq=f.seq) if f.seq else "")
        + (f": {f.text}" if lang() == "en" else "")  # the finding's detail is English
        for f in result.findings
    ]  # fmt: skip
    return "\n".join([head, *lines])


def _key_report(left: dict[str, dict[str, int]], ring) -> str:
    """Rows still under keys other than the current one, per table.column and key id."""
    if not left:
        return t("keys_none_left")
    parts = []
    for column, by_key in left.items():
        for key_id, n in sorted(by_key.items()):
            state = t("key_in_ring") if key_id in ring else t("key_not_in_ring")
            parts.append(t("keys_left_row", column=_column_name(column), rows=f"{n:,}",
                           key_id=key_id or t("key_none"), state=state))  # fmt: skip
    return t("keys_left") + "\n" + "\n".join(parts)


def _column_name(column: str) -> str:
    """``persons.id_enc`` as people read it: the dataset and the field it encrypts."""
    table, _, name = column.partition(".")
    field = name.removesuffix("_enc")
    field = {"id": "id_number"}.get(field, field)
    return t("column_name", dataset=label("dataset", table), field=label("field", field))


def cmd_keys(args: argparse.Namespace) -> int:
    """Rotate the SM4 field key, move rows left under retired keys, or count them."""
    import os
    from dataclasses import replace

    from hub.security import keys
    from hub.security.crypto import FieldCipher
    from hub.security.errors import HubError
    from hub.security.narrative_store import seal_stored
    from hub.store import transaction

    try:
        current = FieldCipher.from_settings(load_settings())
    except ValueError as exc:
        raise UsageError(t("key_settings_bad", detail=str(exc))) from None
    if args.action == "status":
        with transaction(_engine(args)) as session:
            left = keys.remaining(session, current.key_id)
        print(t("keys_status", key_id=current.key_id, report=_key_report(left, current.ring)))
        unreadable = any(k not in current.ring for by_key in left.values() for k in by_key)
        return 1 if unreadable else 0
    if args.action == "rotate":
        new_hex = os.environ.get("HUB_SM4_NEW_KEY", "")
        new_id = os.environ.get("HUB_SM4_NEW_KEY_ID", "")
        if not new_hex or not new_id:
            raise UsageError(t("new_key_missing"))
        try:
            new_key = bytes.fromhex(new_hex)
        except ValueError:
            raise UsageError(t("new_key_not_hex")) from None
        if len(new_key) != 16:
            raise UsageError(t("new_key_length"))
        try:
            target = FieldCipher(new_key, new_id, current.index_key)
        except ValueError as exc:  # an id the store cannot hold: refused before anything moves
            raise UsageError(t("new_key_id_bad", detail=str(exc))) from None
    else:
        target = current
    if args.action == "seal-narratives":
        with transaction(_engine(args)) as session:
            sealed = seal_stored(session, current, now=datetime.now(UTC))
        changed = t("list_sep").join(
            f"{label('dataset', table)} {n:,}" for table, n in sealed.items() if n
        )
        print(t("narratives_sealed", key_id=current.key_id, changed=changed or t("nothing_to_do")))
        return 0
    with transaction(_engine(args)) as session:
        try:
            if args.action == "rotate":
                done = keys.rotate(session, current, target, now=datetime.now(UTC))
            else:
                done = keys.reencrypt(session, current, now=datetime.now(UTC))
            # Tokens in narratives move with the fields, in the same transaction.
            sealer = replace(target, old_keys=tuple(current.ring.items()))
            seal_stored(session, sealer, now=datetime.now(UTC))
        except HubError as exc:
            raise UsageError(t("nothing_changed", reason=error_text(exc))) from None
    rows = t("list_sep").join(f"{label('dataset', table)} {n:,}" for table, n in done.rows.items())
    print(t("reencrypted", key_id=done.new_key_id, rows=rows,
            report=_key_report(done.left, current.ring)))  # fmt: skip
    if args.action == "rotate":
        print(t("rotate_next", old_key_id=current.key_id))
    return 0


def cmd_watermark(args: argparse.Namespace) -> int:
    """Name the export a leaked file came from, or the viewer of the page a copied table
    came from (its view mark); audited as the operator's CLI use."""
    import getpass
    from pathlib import Path

    from hub.exports import ViewMatch, identify_export, watermark_key
    from hub.security.errors import HubError
    from hub.store import transaction

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(t("no_such_file", path=path))
    key = watermark_key(load_settings().blind_index_key)
    with transaction(_engine(args)) as session:
        try:
            match = identify_export(
                session, None, path.read_bytes(), path.name, key=key,
                now=datetime.now(UTC), username=f"cli:{getpass.getuser()}",
            )  # fmt: skip
        except HubError as exc:
            raise UsageError(t("nothing_identified", reason=error_text(exc))) from None
        cities = _city_names(session)
    if match is None:
        print(t("wm_no_match"), file=sys.stderr)
        return 1
    if isinstance(match, ViewMatch):
        print(t("wm_view", username=match.username or "-", user_id=match.user_id,
                role=label("role", match.role) if match.role else "-",
                city=cities.get(match.city_code or "", match.city_code or "—"),
                at=local_time(match.minute)))  # fmt: skip
        for r in match.reads:
            print(t("wm_read", seq=r["seq"], at=local_time(r["ts"], seconds=True),
                    action=label("action", r["action"]), dataset=label("dataset", r["dataset"]),
                    query=_query_text(r["query"]), case_no=r["case_no"] or "-"))  # fmt: skip
        if match.other_marks:
            print(t("wm_other_marks", n=match.other_marks))
        return 0
    print(t("wm_export", export_id=match.export_id, username=match.username,
            role=label("role", match.role), city=cities.get(match.city_code, match.city_code),
            at=local_time(match.ts),
            dataset=label("dataset", match.dataset), rows=match.row_count,
            purpose=label("purpose", match.purpose) if match.purpose else "—",
            filename=match.filename,
            same=t("wm_same_file") if match.same_file else t("wm_edited")))  # fmt: skip
    for other in match.other_ids:
        print(t("wm_other_export", export_id=other))
    return 0


def _city_names(session) -> dict[str, str]:
    """adcode -> city name in the run's language (reference data)."""
    from sqlalchemy import select

    from hub.models import City

    rows = session.execute(select(City.adcode, City.name, City.name_en))
    return {code: zh if lang() == "zh" else en for code, zh, en in rows}


def _query_text(query) -> str:
    """An audited query's terms, each key as a person reads it (JSON for anything else)."""
    import json

    if not isinstance(query, dict):
        return json.dumps(query, ensure_ascii=False)
    parts = []
    for key, value in query.items():
        shown = label("kind", value) if key == "kind" else value
        shown = json.dumps(shown, ensure_ascii=False) if not isinstance(shown, str) else shown
        parts.append(f"{label('qkey', key)}={shown}")
    return t("list_sep").join(parts)


def cmd_bench(args: argparse.Namespace) -> int:
    from hub.bench import run_bench

    # The jobs seed an empty store and add users and audit entries of their own.
    _refuse_in_production("what_bench")

    return run_bench(db=args.db, only=args.only, size=args.size)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Exit codes: 0 stored, 3 stored with rejected rows, 4 failed (hub.feeds_cli)."""
    from hub.feeds_cli import EXIT_FAILED, ingest_exit, print_report
    from hub.ingest.pipeline import ingest_file
    from hub.ingest.readers import Limits
    from hub.ingest.spec import FeedError, load_spec
    from hub.security.crypto import FieldCipher

    engine = _engine(args)
    try:
        spec = load_spec(args.spec)
    except FeedError as exc:
        raise UsageError(error_text(exc)) from None
    if spec.dataset != args.dataset:
        raise UsageError(t("spec_other_dataset", spec=spec.name,
                           fills=label("dataset", spec.dataset),
                           asked=label("dataset", args.dataset)))  # fmt: skip
    settings = load_settings()
    try:
        report = ingest_file(
            engine, args.file, city_code=args.city, spec=spec,
            cipher=FieldCipher.from_settings(settings), limits=Limits.from_settings(settings),
            dry_run=args.dry_run, accept=tuple(args.accept),
        )  # fmt: skip
    except FeedError as exc:
        print(t("error_prefix") + error_text(exc), file=sys.stderr)
        return EXIT_FAILED
    print_report(report)
    return ingest_exit(report)


def cmd_feeds(args: argparse.Namespace) -> int:
    from hub.feeds_cli import run
    from hub.security.crypto import FieldCipher

    return run(_engine(args), args, FieldCipher.from_settings(load_settings()))


def cmd_standard(args: argparse.Namespace) -> int:
    from hub.standard import standard_json

    text = standard_json()
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(t("standard_written", path=args.out))
    else:
        sys.stdout.write(text)
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from hub.retention import apply_retention
    from hub.store import transaction

    days = load_settings().retention_days
    with transaction(_engine(args)) as session:
        purges = apply_retention(session, days, dry_run=args.dry_run)
    for p in purges:
        name = _pad(label("dataset", p.dataset), 14)
        if not p.days:
            print(f"{name} {t('kept_for_ever')}")
            continue
        key = "would_purge" if args.dry_run else "purged"
        print(f"{name} " + t(key, n=f"{p.purged:,}", days=p.days,
                            kept=f"{p.kept_for_open_cases:,}"))  # fmt: skip
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    from hub.maintain import maintain
    from hub.store import transaction

    with transaction(_engine(args)) as session:
        done = maintain(session, load_settings().retention_days, ahead=args.ahead)
    if done.skipped:
        print(t("no_partitions", backend=done.backend))
        return 0
    for table, days in done.created.items():
        made = t("list_sep").join(f"{d:%Y-%m-%d}" for d in days) or t("partitions_all_there")
        print(f"{_pad(label('dataset', table), 14)} {t('partitions_created', days=made)}")
    for p in done.purges:
        if p.days:
            print(f"{_pad(label('dataset', p.dataset), 14)} " + t("purged", n=f"{p.purged:,}",
                  days=p.days, kept=f"{p.kept_for_open_cases:,}"))  # fmt: skip
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from hub import alerts
    from hub.store import transaction

    now = _parse_anchor(args.now) or datetime.now(UTC)
    minutes = args.escalate_after
    if minutes is None:
        from hub.settings import load_settings

        minutes = load_settings().alert_escalate_minutes
    after = timedelta(minutes=minutes)
    with transaction(_engine(args)) as session:
        if args.action == "scan":
            r = alerts.scan(session, now=now, within_km=args.within_km, escalate_after=after)
            print(t("alerts_scanned", areas=f"{r.areas_tested:,}", flagged=r.flagged,
                    created=len(r.created), recent=r.skipped_recent, escalated=r.escalated))  # fmt: skip
        else:
            print(t("alerts_escalated", n=alerts.escalate_overdue(session, now=now, after=after)))
    return 0


def cmd_exercise(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from hub import exercise
    from hub.models import User
    from hub.security.errors import HubError
    from hub.security.identity import principal_of
    from hub.store import transaction

    if args.action == "list":
        for name in exercise.scenario_names():
            s = exercise.load_scenario(name)
            print(f"{name:<20} " + t("exercise_line", injects=len(s.injects),
                                         seconds=f"{s.duration_s:.0f}", title=s.title))  # fmt: skip
        return 0
    if not args.name:
        raise UsageError(t("exercise_needs_name"))
    engine = _engine(args)
    try:
        scenario = exercise.load_scenario(args.name)
        with transaction(engine) as session:
            q = select(User).where(User.role == "commander", User.active.is_(True))
            q = q.where(User.username == args.as_user) if args.as_user else q.where(
                User.city_code == scenario.lead_city).order_by(User.id)  # fmt: skip
            user = session.scalars(q).first()
            if user is None:
                raise UsageError(t("exercise_no_commander"))
            run_id = exercise.start(session, principal_of(user), args.name, speed=args.speed,
                                    now=datetime.now(UTC))  # fmt: skip
        print(t("exercise_started", name=args.name, run_id=run_id, username=user.username,
                speed=f"{args.speed:g}", title=scenario.title))  # fmt: skip
        while True:
            with transaction(engine) as session:
                for line in exercise.advance(session, run_id, now=datetime.now(UTC)):
                    print(line, flush=True)
                due = exercise.next_due(session, run_id)
            if due is None:
                break
            time.sleep(min(max((due - datetime.now(UTC)).total_seconds(), 0.05), 5.0))
    except HubError as exc:
        raise UsageError(error_text(exc)) from None
    print(t("exercise_finished", name=args.name))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m hub", description=t("help_hub"))
    p.add_argument("--lang", choices=["zh", "en"], help=t("help_lang"))
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           title=t("ap_commands"))  # fmt: skip

    def add(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        # A command's help from the catalogue (`help_<name>`); a command registered from
        # elsewhere (hub.live.commands) that the catalogue does not know keeps its own.
        key = f"help_{name.replace('-', '_')}"
        help = t(key) if has(key) else help
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--db", metavar="URL", help=t("help_db"))
        # Also after the command (`hub users list --lang en`); read before parsing.
        sp.add_argument("--lang", choices=["zh", "en"], default=argparse.SUPPRESS,
                        help=t("help_lang"))  # fmt: skip
        sp.set_defaults(handler=handler)
        return sp

    add("init", cmd_init, "")

    d = add("demo", cmd_demo, "")
    d.add_argument("--size", choices=["small", "demo", "province"], default="demo",
                   help=t("help_demo_size"))  # fmt: skip
    d.add_argument("--seed", type=int, default=7, help=t("help_demo_seed"))
    d.add_argument("--anchor", help=t("help_demo_anchor"))
    d.add_argument("--reset", action="store_true", help=t("help_demo_reset"))
    d.add_argument("--if-empty", action="store_true", help=t("help_demo_if_empty"))
    d.add_argument("--quiet", action="store_true", help=t("help_demo_quiet"))

    u = add("users", cmd_users, "")
    u.add_argument(
        "action", choices=["add", "list", "lock", "unlock", "reset-password", "set-role"]
    )
    u.add_argument("username", nargs="?", default="", help=t("help_users_username"))
    u.add_argument("--role", help=t("help_users_role"))
    u.add_argument("--city", help=t("help_users_city"))
    u.add_argument("--district", help=t("help_users_district"))
    u.add_argument("--name", help=t("help_users_name"))
    u.add_argument("--password", help=argparse.SUPPRESS)  # refused: see _password
    u.add_argument("--password-stdin", action="store_true", help=t("help_users_password_stdin"))

    a = add("audit", cmd_audit, "")
    a.add_argument("action", choices=["verify", "anchor", "keygen"])
    a.add_argument("--once", action="store_true", help=t("help_audit_once"))
    a.add_argument("--poll", type=float, default=5.0, metavar="SECONDS",
                   help=t("help_audit_poll"))  # fmt: skip
    a.add_argument("--out", metavar="FILE", help=t("help_audit_out"))
    a.add_argument("--checkpoints", metavar="FILE", help=t("help_audit_checkpoints"))

    k = add("keys", cmd_keys, "")
    k.add_argument("action", choices=["rotate", "reencrypt", "status", "seal-narratives"])

    w = add("watermark", cmd_watermark, "")
    w.add_argument("action", choices=["identify"])
    w.add_argument("file", metavar="FILE", help=t("help_watermark_file"))

    b = add("bench", cmd_bench, "")
    next(a for a in b._actions if a.dest == "db").help = t("help_bench_db")
    b.add_argument("--only", metavar="NAME", help=t("help_bench_only"))
    b.add_argument("--size", choices=["small", "demo", "province"], default="province",
                   help=t("help_demo_size"))  # fmt: skip
    i = add("ingest", cmd_ingest, "")
    i.add_argument("--city", required=True, metavar="ADCODE", help=t("help_ingest_city"))
    i.add_argument("--dataset", required=True, help=t("help_ingest_dataset"))
    i.add_argument("--spec", required=True, help=t("help_ingest_spec"))
    i.add_argument("file", help=t("help_ingest_file"))
    i.add_argument("--dry-run", action="store_true", help=t("help_ingest_dry_run"))
    i.add_argument("--accept", action="append", default=[], metavar="FINDING",
                   help=t("help_ingest_accept"))  # fmt: skip
    fd = add("feeds", cmd_feeds, "")
    fd.add_argument("action", choices=["list", "show", "rejects", "scorecard", "rollback"])
    fd.add_argument("batch", nargs="?", type=int, metavar="BATCH", help=t("help_feeds_batch"))
    fd.add_argument("--csv", action="store_true", help=t("help_feeds_csv"))
    fd.add_argument("--city", metavar="ADCODE", help=t("help_feeds_city"))
    fd.add_argument("--dataset", help=t("help_feeds_dataset"))
    fd.add_argument("--limit", type=int, default=50, help=t("help_feeds_limit"))

    s = add("standard", cmd_standard, "")
    s.add_argument("action", choices=["export"])
    s.add_argument("--out", metavar="FILE", help=t("help_standard_out"))

    r = add("retention", cmd_retention, "")
    r.add_argument("action", choices=["apply"])
    r.add_argument("--dry-run", action="store_true", help=t("help_retention_dry_run"))

    mt = add("maintain", cmd_maintain, "")
    mt.add_argument("--ahead", type=int, default=7, help=t("help_maintain_ahead"))

    al = add("alerts", cmd_alerts, "")
    al.add_argument("action", choices=["scan", "escalate"])
    al.add_argument("--now", help=t("help_alerts_now"))
    al.add_argument("--within-km", type=float, default=10.0, help=t("help_alerts_within_km"))
    al.add_argument("--escalate-after", type=float, default=None, metavar="MINUTES",
                    help=t("help_alerts_escalate_after"))  # fmt: skip

    ex = add("exercise", cmd_exercise, "")
    ex.add_argument("action", choices=["run", "list"])
    ex.add_argument("name", nargs="?", default="", metavar="NAME", help=t("help_exercise_name"))
    ex.add_argument("--speed", type=float, default=1.0, help=t("help_exercise_speed"))
    ex.add_argument("--as", dest="as_user", metavar="USERNAME", help=t("help_exercise_as"))

    from hub.live.commands import register as register_live  # stream, bus, live

    register_live(add)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        choose(lang_from_argv(argv))
    except LanguageError as exc:
        print(t_both("bad_lang", value=str(exc)), file=sys.stderr)
        return 2
    try:
        args = _parser().parse_args(argv)
        return args.handler(args)
    except LanguageError as exc:  # HUB_LANG misspelt: said in both languages
        print(t_both("bad_lang", value=str(exc)), file=sys.stderr)
        return 2
    except (StoreError, SettingsError) as exc:
        print(t("error_prefix") + t("store_or_settings", reason=error_text(exc)), file=sys.stderr)
        return 2
    except UsageError as exc:
        print(t("error_prefix") + str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(t("interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head and the like
        return 0
    finally:
        choose(None)
