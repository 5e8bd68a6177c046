"""`python -m hub …`: set up, seed and measure the store from the command line.

Every command takes `--db URL` (default: settings) and `--help`. Failures the user can
fix print one line saying what and how, and exit non-zero; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

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
    state = "created" if before is None else ("upgraded" if before != after else "up to date")
    print(
        f"store {state} at revision {after}: {counts['cities']} cities, "
        f"{counts['districts']} districts, {counts['codes']} codes"
    )
    return 0


def _parse_anchor(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(
            f"--anchor {raw!r} is not an ISO date-time like 2026-11-22T08:00Z"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _refuse_in_production(what: str) -> None:
    """Refuse a command that would seed, reset or weaken the store under HUB_ENV=production."""
    if load_settings().is_production:
        raise UsageError(f"HUB_ENV=production: {what} is refused (it is for demo stores only)")


def cmd_demo(args: argparse.Namespace) -> int:
    from hub import demo
    from hub.store import current_revision, head_revision

    if args.if_empty and load_settings().is_production:
        # The start script's "seed if empty": a production store is never seeded, and the
        # app must still start (it refuses to while demo keys or passwords are in use).
        print("HUB_ENV=production: the demo is never seeded")
        return 0
    _refuse_in_production("seeding the demo (it brings back the published demo passwords)")
    engine = _engine(args)
    if current_revision(engine) != head_revision():
        cmd_init(args)
    if args.if_empty and demo.record_count(engine):
        print("the store already holds records: not seeding the demo")
        return 0
    settings = load_settings()
    started = time.perf_counter()
    try:
        with demo.progress_bar(disable=args.quiet) as progress:
            written = demo.seed(
                engine,
                settings,
                size=args.size,
                seed=args.seed,
                anchor=_parse_anchor(args.anchor),
                reset=args.reset,
                progress=progress,
            )
    except demo.AlreadySeeded as exc:
        raise UsageError(str(exc)) from None
    seconds = time.perf_counter() - started
    total = sum(written.values())
    print(
        f"demo province '{args.size}' (seed {args.seed}, synthetic): {total:,} rows in {seconds:.1f} s"
    )
    for table, n in written.items():
        print(f"  {table:<20} {n:>12,}")
    return 0


def _password(args: argparse.Namespace) -> str:
    """The new password: one line of standard input with --password-stdin, else asked
    for twice without echo; never an argument (ps and shell history would show it)."""
    if args.password is not None:
        raise UsageError(
            "a password on the command line is visible in ps and shell history: "
            "leave --password out to be asked, or pipe it in with --password-stdin"
        )
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise UsageError("the two passwords differ")
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
                    state = "active" if u.active else "locked"
                    home = "/".join(x for x in (u.city_code, u.district_code) if x) or "-"
                    print(f"{u.username:<22} {u.role:<18} {home:<14} {state:<10} {u.display_name}")
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
        raise UsageError(str(exc)) from None
    print(f"{args.action}: {args.username} done")
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
                raise UsageError(f"{out} exists: a checkpoint key is never overwritten")
            keys = anchor.generate_key(out)
            print(f"checkpoint key {keys.key_id}: private {out} (only the checkpointer may read "
                  f"it), public {out}.pub (for audit verify)")  # fmt: skip
            return 0
        engine = _engine(args)
        if args.action == "anchor":
            return anchor.run(engine, settings, poll_seconds=args.poll, once=args.once)
        with transaction(engine) as session:
            result = anchor.verify(
                session, settings, Path(args.checkpoints) if args.checkpoints else None
            )
    except HubError as exc:
        raise UsageError(str(exc)) from None
    print(result.message(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _key_report(left: dict[str, dict[str, int]], ring) -> str:
    """Rows still under keys other than the current one, per table.column and key id."""
    if not left:
        return "no rows under other keys"
    parts = []
    for column, by_key in left.items():
        for key_id, n in sorted(by_key.items()):
            state = "in the key ring" if key_id in ring else "NOT in the key ring: unreadable"
            parts.append(f"  {column}: {n:,} rows under {key_id or '(none)'} ({state})")
    return "rows still under other keys:\n" + "\n".join(parts)


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
        raise UsageError(str(exc)) from None
    if args.action == "status":
        with transaction(_engine(args)) as session:
            left = keys.remaining(session, current.key_id)
        print(f"current key {current.key_id}; {_key_report(left, current.ring)}")
        unreadable = any(k not in current.ring for by_key in left.values() for k in by_key)
        return 1 if unreadable else 0
    if args.action == "rotate":
        new_hex = os.environ.get("HUB_SM4_NEW_KEY", "")
        new_id = os.environ.get("HUB_SM4_NEW_KEY_ID", "")
        if not new_hex or not new_id:
            raise UsageError("set HUB_SM4_NEW_KEY (32 hex characters) and HUB_SM4_NEW_KEY_ID")
        try:
            new_key = bytes.fromhex(new_hex)
        except ValueError:
            raise UsageError("HUB_SM4_NEW_KEY must be 32 hex characters") from None
        if len(new_key) != 16:
            raise UsageError("HUB_SM4_NEW_KEY must be 32 hex characters (a 128-bit SM4 key)")
        try:
            target = FieldCipher(new_key, new_id, current.index_key)
        except ValueError as exc:  # an id the store cannot hold: refused before anything moves
            raise UsageError(f"HUB_SM4_NEW_KEY_ID: {exc}") from None
    else:
        target = current
    if args.action == "seal-narratives":
        with transaction(_engine(args)) as session:
            sealed = seal_stored(session, current, now=datetime.now(UTC))
        changed = ", ".join(f"{table} {n:,}" for table, n in sealed.items() if n)
        print(f"narratives sealed under {current.key_id}: {changed or 'nothing to do'}")
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
            raise UsageError(f"{exc} {exc.params}; nothing was changed") from None
    rows = ", ".join(f"{table} {n:,}" for table, n in done.rows.items())
    print(f"re-encrypted under {done.new_key_id}: {rows}; {_key_report(done.left, current.ring)}")
    if args.action == "rotate":
        print(f"Now set HUB_SM4_KEY and HUB_SM4_KEY_ID to the new key, add "
              f"{current.key_id}:<old key> to HUB_SM4_OLD_KEYS and start the app; then run "
              f"`python -m hub keys reencrypt` for rows written under the old key meanwhile.")  # fmt: skip
    return 0


def _local(ts: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time as the province reads it, named as such."""
    from zoneinfo import ZoneInfo

    return ts.astimezone(ZoneInfo("Asia/Shanghai")).strftime(fmt) + " (Asia/Shanghai)"


def cmd_watermark(args: argparse.Namespace) -> int:
    """Name the export a leaked file came from, or the viewer of the page a copied table
    came from (its view mark); audited as the operator's CLI use."""
    import getpass
    import json
    from pathlib import Path

    from hub.exports import ViewMatch, identify_export, watermark_key
    from hub.security.errors import HubError
    from hub.store import transaction

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    key = watermark_key(load_settings().blind_index_key)
    with transaction(_engine(args)) as session:
        try:
            match = identify_export(
                session, None, path.read_bytes(), path.name, key=key,
                now=datetime.now(UTC), username=f"cli:{getpass.getuser()}",
            )  # fmt: skip
        except HubError as exc:
            raise UsageError(f"{exc}; nothing identified") from None
    if match is None:
        print("no export matches: the file carries no verifiable mark of this hub", file=sys.stderr)
        return 1
    if isinstance(match, ViewMatch):
        print(
            f"view mark: records shown on a page to {match.username or '-'} (user {match.user_id}, "
            f"{match.role or '-'}, city {match.city_code or '-'}) at {_local(match.minute)}"
        )
        for r in match.reads:
            print(f"  read #{r['seq']} {_local(r['ts'], '%Y-%m-%d %H:%M:%S')} {r['action']} {r['dataset']} "
                  f"{json.dumps(r['query'], ensure_ascii=False)} case {r['case_no'] or '-'}")  # fmt: skip
        if match.other_marks:
            print(f"  also carries {match.other_marks} further view marks")
        return 0
    same = "byte-identical to the file exported" if match.same_file else "edited since export"
    print(
        f"export {match.export_id}: {match.username} ({match.role}, city {match.city_code}) "
        f"at {_local(match.ts)}, {match.dataset}, {match.row_count} rows, "
        f"purpose {match.purpose or '-'}, file {match.filename} ({same})"
    )
    for other in match.other_ids:
        print(f"  also carries marks of export {other}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from hub.bench import run_bench

    # The jobs seed an empty store and add users and audit entries of their own.
    _refuse_in_production("the benchmark")

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
        raise UsageError(f"{exc} [{exc.code}]; nothing stored") from None
    if spec.dataset != args.dataset:
        raise UsageError(f"spec {spec.name} fills {spec.dataset}, not {args.dataset}")
    settings = load_settings()
    try:
        report = ingest_file(
            engine, args.file, city_code=args.city, spec=spec,
            cipher=FieldCipher.from_settings(settings), limits=Limits.from_settings(settings),
            dry_run=args.dry_run, accept=tuple(args.accept),
        )  # fmt: skip
    except FeedError as exc:
        print(f"error: {exc} [{exc.code}]; nothing stored", file=sys.stderr)
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
        print(f"standard written to {args.out}")
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
        if not p.days:
            print(f"{p.dataset:<14} kept for ever")
            continue
        verb = "would purge" if args.dry_run else "purged"
        print(f"{p.dataset:<14} {verb} {p.purged:,} older than {p.days} days "
              f"(kept {p.kept_for_open_cases:,} linked to open cases)")  # fmt: skip
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    from hub.maintain import maintain
    from hub.store import transaction

    with transaction(_engine(args)) as session:
        done = maintain(session, load_settings().retention_days, ahead=args.ahead)
    if done.skipped:
        print(f"{done.backend}: no partitions to keep; nothing done "
              "(`python -m hub retention apply` purges row by row)")  # fmt: skip
        return 0
    for table, days in done.created.items():
        made = ", ".join(f"{d:%Y-%m-%d}" for d in days) or "none (all there)"
        print(f"{table:<14} partitions created: {made}")
    for p in done.purges:
        if p.days:
            print(f"{p.dataset:<14} purged {p.purged:,} older than {p.days} days "
                  f"(kept {p.kept_for_open_cases:,} linked to open cases)")  # fmt: skip
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
            print(f"scanned {r.areas_tested:,} areas (H3 r7 cells and risk zones): "
                  f"{r.flagged} significant, {len(r.created)} alerts created and pushed, "
                  f"{r.skipped_recent} already alerted in the last 24 h, {r.escalated} escalated")  # fmt: skip
        else:
            print(f"{alerts.escalate_overdue(session, now=now, after=after)} pushes escalated")
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
            print(f"{name:<20} {len(s.injects)} injects over {s.duration_s:.0f} s  {s.title}")
        return 0
    if not args.name:
        raise UsageError("exercise run needs a NAME (see: python -m hub exercise list)")
    engine = _engine(args)
    try:
        scenario = exercise.load_scenario(args.name)
        with transaction(engine) as session:
            q = select(User).where(User.role == "commander", User.active.is_(True))
            q = q.where(User.username == args.as_user) if args.as_user else q.where(
                User.city_code == scenario.lead_city).order_by(User.id)  # fmt: skip
            user = session.scalars(q).first()
            if user is None:
                raise UsageError("no active commander to run it as: pass --as USERNAME")
            run_id = exercise.start(session, principal_of(user), args.name, speed=args.speed,
                                    now=datetime.now(UTC))  # fmt: skip
        print(f"EXERCISE {args.name} (run {run_id}) as {user.username}, speed ×{args.speed}: "
              f"{scenario.title}")  # fmt: skip
        while True:
            with transaction(engine) as session:
                for line in exercise.advance(session, run_id, now=datetime.now(UTC)):
                    print(line, flush=True)
                due = exercise.next_due(session, run_id)
            if due is None:
                break
            time.sleep(min(max((due - datetime.now(UTC)).total_seconds(), 0.05), 5.0))
    except HubError as exc:
        raise UsageError(f"{exc} [{exc.code}]") from None
    print(f"EXERCISE {args.name} finished")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hub", description="Provincial public-safety data hub"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument(
            "--db", metavar="URL", help="database URL (default: HUB_DATABASE_URL or data/hub.db)"
        )
        sp.set_defaults(handler=handler)
        return sp

    add(
        "init",
        cmd_init,
        "create or upgrade the store to the current schema and load reference data",
    )

    d = add("demo", cmd_demo, "seed the synthetic demo province")
    d.add_argument("--size", choices=["small", "demo", "province"], default="demo")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--anchor", help="the demo's 'now' (ISO, UTC); default: the current hour")
    d.add_argument("--reset", action="store_true", help="replace the records already in the store")
    d.add_argument("--if-empty", action="store_true", help="seed only a store with no records")
    d.add_argument("--quiet", action="store_true", help="no progress bar")

    u = add("users", cmd_users, "manage user accounts (every change is audited)")
    u.add_argument(
        "action", choices=["add", "list", "lock", "unlock", "reset-password", "set-role"]
    )
    u.add_argument("username", nargs="?", default="")
    u.add_argument("--role", help="role for add and set-role")
    u.add_argument("--city", help="home city adcode")
    u.add_argument("--district", help="home district adcode (officers)")
    u.add_argument("--name", help="display name")
    u.add_argument("--password", help=argparse.SUPPRESS)  # refused: see _password
    u.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (default: ask for it twice)",
    )

    a = add(
        "audit", cmd_audit,
        "verify: check the audit chain and its signed checkpoints, exit 1 naming what was "
        "found; anchor: write signed checkpoints (a service of its own); keygen: make its key",
    )  # fmt: skip
    a.add_argument("action", choices=["verify", "anchor", "keygen"])
    a.add_argument("--once", action="store_true", help="anchor: one checkpoint now, then exit")
    a.add_argument("--poll", type=float, default=5.0, metavar="SECONDS",
                   help="anchor: how often to look at the chain's head (default 5)")  # fmt: skip
    a.add_argument("--out", metavar="FILE", help="keygen: where (default HUB_AUDIT_SIGNING_KEY)")
    a.add_argument("--checkpoints", metavar="FILE",
                   help="verify: against this checkpoint file (e.g. a restore against "
                        "production's), whichever database it names")  # fmt: skip

    k = add(
        "keys", cmd_keys,
        "rotate the SM4 field key (HUB_SM4_NEW_KEY, HUB_SM4_NEW_KEY_ID); reencrypt rows left "
        "under retired keys (HUB_SM4_OLD_KEYS); status: count rows per key; seal-narratives: "
        "encrypt ID numbers and phones still in clear in stored narratives (stores from before "
        "sealing), and move sealed ones to the current key",
    )  # fmt: skip
    k.add_argument("action", choices=["rotate", "reencrypt", "status", "seal-narratives"])

    w = add(
        "watermark", cmd_watermark, "name the export (user, time, query) a leaked file came from"
    )
    w.add_argument("action", choices=["identify"])
    w.add_argument("file", metavar="FILE", help="a CSV or XLSX file")

    b = add("bench", cmd_bench, "run the benchmarks and print figures beside the naive approach")
    b.add_argument("--only", metavar="NAME", help="run only the jobs whose name contains NAME")
    b.add_argument("--size", choices=["small", "demo", "province"], default="province")
    i = add("ingest", cmd_ingest, "ingest one city's feed file under a mapping spec (audited)")
    i.add_argument("--city", required=True, metavar="ADCODE", help="the city whose feed it is")
    i.add_argument("--dataset", required=True, help="target dataset, e.g. incidents")
    i.add_argument("--spec", required=True, help="spec file, or the name of one in data/specs/")
    i.add_argument("file", help="the feed file (CSV, JSON Lines, GeoJSON or XLSX)")
    i.add_argument("--dry-run", action="store_true",
                   help="say what would be inserted, updated, rejected and found; store nothing")  # fmt: skip
    i.add_argument("--accept", action="append", default=[], metavar="FINDING",
                   help="a guardrail finding meant (e.g. time_offset): reported, not failing")  # fmt: skip
    fd = add("feeds", cmd_feeds, "feed batches: list, show, rejects, scorecard, rollback")
    fd.add_argument("action", choices=["list", "show", "rejects", "scorecard", "rollback"])
    fd.add_argument("batch", nargs="?", type=int, metavar="BATCH", help="a batch id")
    fd.add_argument("--csv", action="store_true", help="rejects: as CSV on standard output")
    fd.add_argument("--city", metavar="ADCODE", help="list: one city's batches")
    fd.add_argument("--dataset", help="list: one dataset's batches")
    fd.add_argument("--limit", type=int, default=50, help="list: newest N batches (default 50)")

    s = add("standard", cmd_standard, "export the published standard (JSON Schema + code tables)")
    s.add_argument("action", choices=["export"])
    s.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")

    r = add("retention", cmd_retention, "purge records past their retention (settings), audited")
    r.add_argument("action", choices=["apply"])
    r.add_argument("--dry-run", action="store_true", help="count only, delete nothing")

    mt = add("maintain", cmd_maintain,
             "PostgreSQL: create the coming days' partitions, drop expired days (cron-safe)")  # fmt: skip
    mt.add_argument("--ahead", type=int, default=7, help="days of partitions ahead (default 7)")

    al = add("alerts", cmd_alerts, "scan for hotspots and push alerts; escalate overdue pushes")
    al.add_argument("action", choices=["scan", "escalate"])
    al.add_argument("--now", help="end of the 24 h window (ISO, UTC); default: now")
    al.add_argument("--within-km", type=float, default=10.0, help="push distance (default 10)")
    al.add_argument("--escalate-after", type=float, default=None, metavar="MINUTES",
                    help="escalate pushes unacknowledged this long "
                         "(default HUB_ALERT_ESCALATE_MINUTES, else 30)")  # fmt: skip

    ex = add("exercise", cmd_exercise, "play a scripted exercise (data/exercises/NAME.toml)")
    ex.add_argument("action", choices=["run", "list"])
    ex.add_argument("name", nargs="?", default="", metavar="NAME")
    ex.add_argument("--speed", type=float, default=1.0, help="time compression (default 1)")
    ex.add_argument("--as", dest="as_user", metavar="USERNAME",
                    help="the commander who runs it (default: one of the lead city's)")  # fmt: skip

    from hub.live.commands import register as register_live  # stream, bus, live

    register_live(add)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (StoreError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head and the like
        return 0
