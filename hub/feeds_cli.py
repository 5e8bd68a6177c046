"""`python -m hub ingest` and `python -m hub feeds …`: the operator's command line.

The operator works on the store directly (as `hub ingest` always has): actions are
audited under the name ``cli``. Exit codes of `ingest` (also with ``--dry-run``):

- 0: stored (or would store) every row, or nothing changed;
- 3: stored, but some rows were rejected (`hub feeds rejects BATCH`);
- 4: the batch failed (a refused file, spec or guardrail finding): nothing stored;
- 1: a usage error (unknown spec, wrong dataset); 2: the store or settings.

`feeds rollback` exits 0 when done and 4 when refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

import pandas as pd

from hub import quality
from hub.ingest import history
from hub.ingest.spec import FeedError

EXIT_OK, EXIT_REJECTED, EXIT_FAILED = 0, 3, 4


def ingest_exit(report) -> int:
    """The exit code of one ingest's report."""
    if report.status == "failed":
        return EXIT_FAILED
    return EXIT_REJECTED if report.rows_rejected else EXIT_OK


def print_report(report) -> None:
    print(report.summary())
    if not report.dry_run:
        return
    # Values as the province approver sees records: identifiers and names masked.
    preview = quality.masked_preview(report, "province_approver")
    for name, samples in preview.get("changes", {}).items():
        for x in samples:
            print(f"  {name} of {x['source_id']}: {x['before']!r} -> {x['after']!r}")
    for r in preview.get("rejects", [])[:20]:
        print(
            f"  line {r['row_number']}: " + "; ".join(quality.reason_text(x) for x in r["reasons"])
        )


def _table(frame: pd.DataFrame) -> None:
    if frame.empty:
        print("(none)")
        return
    with pd.option_context("display.max_rows", 500, "display.width", 200,
                           "display.max_columns", 40):  # fmt: skip
        print(frame.to_string(index=False))


def run(engine, args: argparse.Namespace, cipher) -> int:
    """One `hub feeds` action."""
    from hub.store import transaction

    now = datetime.now(UTC)
    try:
        with transaction(engine) as session:
            if args.action == "list":
                frame = quality.batches(
                    session, city=args.city, dataset=args.dataset, limit=args.limit
                )
                _table(frame[["id", "started_at", "city_code", "dataset", "spec_name", "status",
                              "rows_read", "rows_inserted", "rows_updated", "rows_rejected",
                              "error_code"]])  # fmt: skip
            elif args.action == "scorecard":
                _table(quality.scorecard(session, now=now))
            elif args.action == "show":
                shown = quality.batch_detail(session, _batch(args))
                if shown is None:
                    raise FeedError("unknown_batch", f"no batch {args.batch}")
                shown["versions"] = history.batch_versions(session, _batch(args))
                spec = shown.pop("spec") or ""
                for k, v in shown.items():
                    print(f"{k:>18}: {json.dumps(v, ensure_ascii=False, default=str)}")
                print("              spec:\n" + "\n".join("    " + s for s in spec.splitlines()))
            elif args.action == "rejects":
                # The admin's view: line numbers and reasons, never a value of the row.
                frame = quality.rejects(session, _batch(args), role="admin", cipher=cipher,
                                        limit=1_000_000)  # fmt: skip
                frame["reasons"] = frame["reasons"].map(
                    lambda rs: "; ".join(quality.reason_text(r) for r in rs))  # fmt: skip
                if args.csv:
                    sys.stdout.write(frame.to_csv(index=False))
                else:
                    _table(frame)
            elif args.action == "rollback":
                print(history.rollback(session, _batch(args), principal=None, now=now).summary())
    except FeedError as exc:
        if args.action == "rollback":  # the refusal is audited, in a transaction of its own
            from hub.security import audit

            with transaction(engine) as session:
                audit.record(session, None, "feed_rollback_refused", now=now, username="cli",
                             query={"batch_id": args.batch}, decision=exc.code,
                             detail={"code": exc.code, "message": str(exc)[:500]})  # fmt: skip
        print(f"error: {exc} [{exc.code}]", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _batch(args: argparse.Namespace) -> int:
    if args.batch is None:
        raise FeedError("unknown_batch", f"feeds {args.action} needs a BATCH id")
    return int(args.batch)
