"""`python -m hub ingest` and `python -m hub feeds …`: the operator's command line.

The operator works on the store directly (as `hub ingest` always has): actions are
audited under the name ``cli``. Exit codes of `ingest` (also with ``--dry-run``):

- 0: stored (or would store) every row, or nothing changed;
- 3: stored, but some rows were rejected (`hub feeds rejects BATCH`);
- 4: the batch failed (a refused file, spec or guardrail finding): nothing stored;
- 1: a usage error (unknown spec, wrong dataset); 2: the store or settings.

`feeds rollback` exits 0 when done and 4 when refused.

What a person reads (reports, tables, refusals) is in the run's language with times in
Asia/Shanghai (hub.cli_text); ``feeds rejects --csv`` stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

import pandas as pd

from hub import quality
from hub.cli_text import error_text, label, lang, local_time, t
from hub.ingest import history
from hub.ingest.spec import FeedError

EXIT_OK, EXIT_REJECTED, EXIT_FAILED = 0, 3, 4


def ingest_exit(report) -> int:
    """The exit code of one ingest's report."""
    if report.status == "failed":
        return EXIT_FAILED
    return EXIT_REJECTED if report.rows_rejected else EXIT_OK


def reason_text(reason: dict) -> str:
    """One reason a row was rejected, in the run's language (its field named as people
    read it); the code and its parameters if the catalogue does not know it."""
    values = {**reason, "field": label("field", reason.get("field"))}
    if reason.get("table"):
        values["table"] = label("codetable", reason["table"])
    try:
        return t(f"rej_{reason['code']}", **values)
    except (KeyError, IndexError):
        return quality.reason_text(reason)


def finding_text(finding: dict) -> str:
    """A guardrail finding (hub.ingest.guardrails) in the run's language."""
    values = {**finding, "field": label("field", finding.get("field"))}
    try:
        text = t(f"finding_{finding['code']}", **values)
    except (KeyError, IndexError):
        text = f"{finding['code']}: {finding.get('message', '')}"
    return (t("finding_accepted") if finding.get("accepted") else "") + text


def _counts(counts: dict[str, int], family: str) -> str:
    return t("list_sep").join(f"{label(family, k)} {v:,}" for k, v in counts.items())


def summary(report) -> str:
    """hub.ingest.pipeline.BatchReport as one paragraph in the run's language."""
    if report.status == "failed":
        head = t("ingest_dry_fail") if report.dry_run else t("ingest_failed", batch=report.batch_id)
        reason = error_text(FeedError(report.error_code or "ingest_failed", report.error or ""))
        return t("ingest_failed_line", head=head, reason=reason)
    text = (t("ingest_dry_head") if report.dry_run else "") + t(
        "ingest_done", batch=report.batch_id if report.batch_id is not None else "-",
        dataset=label("dataset", report.dataset), city=report.city_code, spec=report.spec_name,
        read=f"{report.rows_read:,}", inserted=f"{report.rows_inserted:,}",
        updated=f"{report.rows_updated:,}", unchanged=f"{report.rows_unchanged:,}",
        duplicate=f"{report.rows_duplicate:,}", rejected=f"{report.rows_rejected:,}",
        seconds=f"{report.seconds:.2f}", rate=f"{report.rows_per_second:,.0f}",
    )  # fmt: skip
    if report.status == "unchanged":
        text += t("ingest_unchanged")
        if report.same_file_as:
            text += t("ingest_same_file", batch=report.same_file_as)
    if report.reasons:
        text += t("ingest_reasons", reasons=_counts(report.reasons, "rejcode"))
    if report.changed_fields:
        text += t("ingest_changed", fields=_counts(report.changed_fields, "field"))
    for f in report.findings:
        text += t("ingest_finding", finding=finding_text(f))
    return text


def rollback_summary(done) -> str:
    return t("rolled_back", batch=done.batch_id, dataset=label("dataset", done.dataset),
             city=done.city_code, deleted=f"{done.deleted:,}", restored=f"{done.restored:,}")  # fmt: skip


def _value(dataset: str, field: str, value: object) -> str:
    """A previewed value: a code by its label (the field's code table), quoted."""
    from hub.ingest.datasets import DATASETS

    spec = DATASETS.get(dataset)
    table = getattr(spec.fields.get(field) if spec else None, "code_table", None)
    return repr(label(table, value) if table and isinstance(value, str) else value)


def print_report(report) -> None:
    print(summary(report))
    if not report.dry_run:
        return
    # Values as the province approver sees records: identifiers and names masked.
    preview = quality.masked_preview(report, "province_approver")
    for name, samples in preview.get("changes", {}).items():
        for x in samples:
            print(t("preview_change", field=label("field", name), source_id=x["source_id"],
                    before=_value(report.dataset, name, x["before"]),
                    after=_value(report.dataset, name, x["after"])))  # fmt: skip
    for r in preview.get("rejects", [])[:20]:
        print(t("preview_reject", line=r["row_number"],
                reasons=t("reason_sep").join(reason_text(x) for x in r["reasons"])))  # fmt: skip


_TIMES = ("started_at", "finished_at", "last_arrival")


def _cell(column: str, value: object) -> object:
    """A table cell as a person reads it: codes by name, times in Asia/Shanghai."""
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return "—"
    if column in ("dataset", "status"):
        return label("fstatus" if column == "status" else "dataset", value)
    if column == "error_code":
        return error_text(FeedError(str(value), ""))
    if column in _TIMES:
        return local_time(pd.Timestamp(value).to_pydatetime(), zone=False)
    if isinstance(value, float):
        return f"{value:.2f}"
    return value


def _table(frame: pd.DataFrame) -> None:
    """A table with its headers and cells in the run's language (times without the
    zone in each cell: the header names it)."""
    if frame.empty:
        print(t("none_rows"))
        return
    shown = pd.DataFrame({
        label("field", c) + (t("zone_suffix") if c in _TIMES else ""): [
            _cell(c, v) for v in frame[c]
        ]
        for c in frame.columns
    })  # fmt: skip
    with pd.option_context("display.max_rows", 500, "display.width", 240,
                           "display.max_columns", 40, "display.unicode.east_asian_width",
                           lang() == "zh"):  # fmt: skip
        print(shown.to_string(index=False))


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
                    raise FeedError("unknown_batch", f"no batch {args.batch}", batch=args.batch)
                shown["versions"] = history.batch_versions(session, _batch(args))
                spec = shown.pop("spec") or ""
                for k, v in shown.items():
                    print(f"{_key(k)}: {_detail(k, v)}")
                print(f"{_key('spec')}:\n" + "\n".join("    " + s for s in spec.splitlines()))
            elif args.action == "rejects":
                # The admin's view: line numbers and reasons, never a value of the row.
                frame = quality.rejects(session, _batch(args), role="admin", cipher=cipher,
                                        limit=1_000_000)  # fmt: skip
                if args.csv:  # machine-readable: codes as stored
                    frame["reasons"] = frame["reasons"].map(
                        lambda rs: "; ".join(quality.reason_text(r) for r in rs))  # fmt: skip
                    sys.stdout.write(frame.to_csv(index=False))
                else:
                    frame["reasons"] = frame["reasons"].map(
                        lambda rs: t("reason_sep").join(reason_text(r) for r in rs))  # fmt: skip
                    _table(frame)
            elif args.action == "rollback":
                done = history.rollback(session, _batch(args), principal=None, now=now)
                print(rollback_summary(done))
    except FeedError as exc:
        if args.action == "rollback":  # the refusal is audited, in a transaction of its own
            from hub.security import audit

            with transaction(engine) as session:
                audit.record(session, None, "feed_rollback_refused", now=now, username="cli",
                             query={"batch_id": args.batch}, decision=exc.code,
                             detail={"code": exc.code, "message": str(exc)[:500]})  # fmt: skip
        print(t("error_prefix") + error_text(exc), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _key(name: str) -> str:
    """A field of `feeds show`, right-aligned in 18 terminal columns."""
    from hub.cli import _pad

    text = label("field", name)
    width = len(text) + sum(1 for c in text if ord(c) > 0x2E80)
    return " " * max(18 - width, 0) + text if width < 18 else _pad(text, 18)


# `feeds show`'s figures held as {name: number}: each name's catalogue family.
_PAIRS = {"timings": "step", "would": "would", "versions": "version", "completeness_feed": "field"}


def _detail(name: str, value: object) -> str:
    if name in _TIMES and value is not None:
        return local_time(pd.Timestamp(value).to_pydatetime())
    if name in ("dataset", "status", "error_code"):
        return str(_cell(name, value))
    if name in _PAIRS and isinstance(value, dict):
        return t("list_sep").join(
            f"{label(_PAIRS[name], k)} {v:.2f}" if isinstance(v, float) else f"{label(_PAIRS[name], k)} {v}"
            for k, v in value.items()
        ) or "—"  # fmt: skip
    if name == "findings" and isinstance(value, list):
        return t("reason_sep").join(finding_text(f) for f in value) or "—"
    if name == "reasons" and isinstance(value, dict):
        return _counts(value, "rejcode") or "—"
    if name == "changed_fields" and isinstance(value, dict):
        return _counts(value, "field") or "—"
    if value is None:
        return "—"
    return json.dumps(value, ensure_ascii=False, default=str)


def _batch(args: argparse.Namespace) -> int:
    if args.batch is None:
        raise FeedError("batch_needed", f"feeds {args.action} needs a BATCH id")
    return int(args.batch)
