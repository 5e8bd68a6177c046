"""Seal the narratives already in a store: text written before sealing existed holds ID
numbers and phones in clear, and text sealed under a retired key should move to the
current one after a rotation (``hub.security.keys``).

The columns are the feed datasets' narratives (``hub.ingest.datasets.NARRATIVES``); one
audit entry records how many rows of each table changed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, or_, select, update
from sqlalchemy.orm import Session

from hub import models as m
from hub.ingest.datasets import DATASETS
from hub.security import audit
from hub.security.crypto import FieldCipher
from hub.security.narrative import MAY_HOLD, reseal

BATCH = 5000


def sealed_columns() -> dict[type[m.Base], tuple[str, ...]]:
    """Model -> its narrative columns, as the feed pipeline seals them."""
    return {
        ds.model: tuple(n for n, f in ds.fields.items() if f.narrative)
        for ds in DATASETS.values()
        if any(f.narrative for f in ds.fields.values())
    }


def seal_stored(session: Session, cipher: FieldCipher, *, now: datetime) -> dict[str, int]:
    """Seal every narrative of the store in the caller's transaction; rows changed per table.

    Only rows whose text may hold an identifier (``MAY_HOLD``) or a token are read. Running it twice changes nothing the second time.
    """
    done: dict[str, int] = {}
    for model, names in sealed_columns().items():
        cols = [getattr(model, n) for n in names]
        maybe = or_(*[c.regexp_match(f"{MAY_HOLD.pattern}|⟦") for c in cols])
        changed, last = 0, 0
        while True:
            rows = session.execute(
                select(model.id, *cols).where(maybe, model.id > last).order_by(model.id)
                .limit(BATCH).execution_options(policy="validation")
            ).all()  # fmt: skip
            if not rows:
                break
            last = rows[-1].id
            for row in rows:
                values = {}
                for name, col in zip(names, cols, strict=True):
                    old = getattr(row, name)
                    limit = col.type.length if isinstance(col.type, String) else None
                    new = reseal(old, cipher, max_len=limit)
                    if new != old:
                        values[name] = new
                if values:
                    changed += 1
                    session.execute(
                        update(model).where(model.id == row.id).values(**values)
                        .execution_options(policy="validation")
                    )  # fmt: skip
        done[model.__tablename__] = changed
    audit.record(session, None, "seal_narratives", now=now, username="cli",
                 result_count=sum(done.values()), detail={"rows": done})  # fmt: skip
    return done
