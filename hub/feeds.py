"""The feed desk: every question the Feeds and Quality pages (and `hub feeds`) ask of
feed batches, composed in `Hub` as ``hub.feeds``.

Feeds are run by the roles in `quality.FEED_ROLES`. What a role sees of record content
(rejected rows, a dry run's before/after samples) follows `quality.REJECT_VIEWS`: the
province approver sees it masked, the admin (who opens no records) only codes, field
names and counts. Each method is one transaction with the caller's principal; refusals
are audited through `Hub._run` and `hub.boundary`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy.orm import Session

from hub import quality
from hub.boundary import guard_methods
from hub.ingest import history
from hub.ingest.pipeline import BatchReport, ingest
from hub.ingest.readers import Limits
from hub.ingest.spec import FeedError, load_spec, shipped_specs
from hub.security import audit
from hub.security.errors import AccessDenied
from hub.security.policy import Principal
from hub.security.watermark import safe_csv

if TYPE_CHECKING:
    from hub.service import Hub


def _now() -> datetime:
    return datetime.now(UTC)


@guard_methods
class FeedDesk:
    """Feeds as pages and the operator's command line call them."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def _session(self, principal: Principal | None = None, **kw):
        # The boundary audits a refusal through the object's own `_session`.
        return self._hub._session(principal, **kw)

    def _run(self, principal: Principal, action: str, fn: Callable[[Session], object], **fields):
        def checked(session: Session):
            if principal.role not in quality.FEED_ROLES:
                raise AccessDenied("role_not_allowed", "this role cannot do that")
            return fn(session)

        return self._hub._run(principal, action, checked, now=None,
                              audit_fields={"dataset": "feeds", **fields})  # fmt: skip

    def specs(self, principal: Principal) -> dict[str, tuple[str, str, str]]:
        """Shipped specs: name -> (dataset, format, description)."""
        return self._run(principal, "view", lambda s: {
            n: (sp.dataset, sp.format, sp.description) for n, sp in shipped_specs().items()
        })  # fmt: skip

    def ingest(
        self, principal: Principal, *, city: str, spec_name: str, filename: str, data: bytes,
        progress: Callable[[float, int], None] | None = None, dry_run: bool = False,
        accept: tuple[str, ...] = (),
    ) -> BatchReport:  # fmt: skip
        """Ingest an uploaded feed file (a refusal raises FeedError), or with `dry_run`
        say what it would do: its preview is shown as the role may see records."""
        self._run(principal, "ingest", lambda s: None)
        spec = load_spec(spec_name.replace("/", "").replace("\\", ""))
        report = ingest(
            self._hub.engine, city_code=city, spec=spec, source=io.BytesIO(data),
            source_name=filename[:200], cipher=self._hub.cipher, principal=principal,
            progress=progress, limits=Limits.from_settings(self._hub.settings),
            dry_run=dry_run, accept=accept,
        )  # fmt: skip
        if dry_run:
            report = replace(report, preview=quality.masked_preview(report, principal.role))
        return report

    def batches(self, principal: Principal, *, city: str = "", dataset: str = "") -> pd.DataFrame:
        return self._run(principal, "view", lambda s: quality.batches(
            s, city=city or None, dataset=dataset or None))  # fmt: skip

    def scorecard(self, principal: Principal) -> pd.DataFrame:
        """One row per feed (city × dataset × spec)."""
        return self._run(principal, "view", lambda s: quality.scorecard(s, now=_now()))

    def batch(self, principal: Principal, batch_id: int) -> dict:
        """One batch for `hub feeds show`: counts, file, spec, findings, history."""

        def fn(session: Session) -> dict:
            shown = quality.batch_detail(session, int(batch_id))
            if shown is None:
                raise FeedError("unknown_batch", f"no batch {batch_id}", batch=str(batch_id))
            return {**shown, "versions": history.batch_versions(session, int(batch_id))}

        return self._run(principal, "view", fn, query={"batch_id": int(batch_id)})

    def rejects(self, principal: Principal, batch_id: int, *, limit: int = 1000) -> pd.DataFrame:
        """Rejected rows of a batch with every reason (audited as a view)."""

        def fn(session: Session) -> pd.DataFrame:
            frame = quality.rejects(session, int(batch_id), role=principal.role,
                                    cipher=self._hub.cipher, limit=limit)  # fmt: skip
            audit.record(session, principal, "view", now=_now(), dataset="feed_rejects",
                         query={"batch_id": int(batch_id)}, result_count=len(frame))  # fmt: skip
            return frame

        return self._run(principal, "view", fn)

    def reject_rows(self, principal: Principal, batch_id: int) -> pd.DataFrame:
        """Every rejected row of a batch, for a reject file (audited as an export); the
        caller writes the reasons in the reader's language."""

        def fn(session: Session) -> pd.DataFrame:
            frame = quality.rejects(session, int(batch_id), role=principal.role,
                                    cipher=self._hub.cipher, limit=1_000_000)  # fmt: skip
            audit.record(session, principal, "export", now=_now(), dataset="feed_rejects",
                         query={"batch_id": int(batch_id)}, result_count=len(frame))  # fmt: skip
            return frame

        return self._run(principal, "export", fn)

    def reject_file(self, principal: Principal, batch_id: int) -> bytes:
        """Every rejected row of a batch as CSV, reasons in English (audited as an export)."""
        frame = self.reject_rows(principal, batch_id)
        frame["reasons"] = frame["reasons"].map(
            lambda rs: "; ".join(quality.reason_text(r) for r in rs)
        )
        return safe_csv(frame)

    def rollback(self, principal: Principal, batch_id: int) -> history.RollbackReport:
        """Undo a batch exactly (`hub.ingest.history.rollback`), audited."""
        return self._run(
            principal, "feed_rollback",
            lambda s: history.rollback(s, int(batch_id), principal=principal, now=_now()),
            query={"batch_id": int(batch_id)},
        )  # fmt: skip
