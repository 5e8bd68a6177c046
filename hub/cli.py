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

    return make_engine(args.db or load_settings().database_url)


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


def cmd_demo(args: argparse.Namespace) -> int:
    from hub import demo
    from hub.store import current_revision, head_revision

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
    if args.password:
        return args.password
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
                    if u.locked_until and u.locked_until > now:
                        state = f"locked until {u.locked_until:%Y-%m-%d %H:%M} UTC"
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
    from hub.security import audit
    from hub.store import transaction

    with transaction(_engine(args)) as session:
        result = audit.verify(session)
    print(result.message(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def cmd_keys(args: argparse.Namespace) -> int:
    """Re-encrypt every encrypted field under a new SM4 key (stop the app first)."""
    import os

    from hub.security.crypto import FieldCipher
    from hub.security.errors import HubError
    from hub.security.keys import rotate
    from hub.store import transaction

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
    old = FieldCipher.from_settings(load_settings())
    new = FieldCipher(new_key, new_id[:16], old.index_key)
    with transaction(_engine(args)) as session:
        try:
            done = rotate(session, old, new, now=datetime.now(UTC))
        except HubError as exc:
            raise UsageError(f"{exc} {exc.params}; nothing was changed") from None
    rows = ", ".join(f"{table} {n:,}" for table, n in done.rows.items())
    print(f"re-encrypted under {done.new_key_id}: {rows}. Now set HUB_SM4_KEY and "
          f"HUB_SM4_KEY_ID to the new key and start the app.")  # fmt: skip
    return 0


def cmd_watermark(args: argparse.Namespace) -> int:
    """Name the export a leaked file came from (audited as the operator's CLI use)."""
    import getpass
    from pathlib import Path

    from hub.exports import identify_export, watermark_key
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
    same = "byte-identical to the file exported" if match.same_file else "edited since export"
    print(
        f"export {match.export_id}: {match.username} ({match.role}, city {match.city_code}) "
        f"at {match.ts:%Y-%m-%d %H:%M} UTC, {match.dataset}, {match.row_count} rows, "
        f"purpose {match.purpose or '-'}, file {match.filename} ({same})"
    )
    for other in match.other_ids:
        print(f"  also carries marks of export {other}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from hub.bench import run_bench

    return run_bench(db=args.db, only=args.only, size=args.size)


def cmd_ingest(args: argparse.Namespace) -> int:
    from hub.ingest.pipeline import ingest_file
    from hub.ingest.spec import load_spec
    from hub.security.crypto import FieldCipher
    from hub.security.errors import HubError

    engine = _engine(args)
    try:
        spec = load_spec(args.spec)
        if spec.dataset != args.dataset:
            raise UsageError(f"spec {spec.name} fills {spec.dataset}, not {args.dataset}")
        report = ingest_file(
            engine, args.file, city_code=args.city, spec=spec,
            cipher=FieldCipher.from_settings(load_settings()),
        )  # fmt: skip
    except HubError as exc:
        raise UsageError(f"{exc} [{exc.code}]; nothing stored") from None
    print(report.summary())
    return 0


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
    u.add_argument("--password", help="password (asked for when omitted)")

    a = add("audit", cmd_audit, "verify the audit hash chain; exit 1 naming the first broken entry")
    a.add_argument("action", choices=["verify"])

    k = add("keys", cmd_keys, "rotate the SM4 field key (HUB_SM4_NEW_KEY, HUB_SM4_NEW_KEY_ID)")
    k.add_argument("action", choices=["rotate"])

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

    s = add("standard", cmd_standard, "export the published standard (JSON Schema + code tables)")
    s.add_argument("action", choices=["export"])
    s.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")

    r = add("retention", cmd_retention, "purge records past their retention (settings), audited")
    r.add_argument("action", choices=["apply"])
    r.add_argument("--dry-run", action="store_true", help="count only, delete nothing")

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
