"""Province-wide aggregates: record counts per city and data class, feed freshness.

Aggregates open no record, so they need no reason; secret records are left out of
them unless the caller is allowed to count secrets (DESIGN §4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.demo import DEMO_SOURCE
from hub.models import DATA_CLASSES, City, FeedBatch, RecordCount
from hub.rollup import COUNTED


@dataclass(frozen=True)
class ProvinceOverview:
    """Counts per city (rows) and data class (columns), plus lineage facts."""

    counts: pd.DataFrame
    synthetic: bool
    last_arrival: datetime | None

    @property
    def totals(self) -> dict[str, int]:
        return {c: int(self.counts[c].sum()) for c in DATA_CLASSES}


def province_overview(*, session: Session, count_secret: bool = False) -> ProvinceOverview:
    """Record counts per city and data class, in one pass per table.

    Parameters
    ----------
    session
        Open session; nothing is written.
    count_secret
        Include secret records in the counts (province roles only).
    """
    cities = session.execute(select(City.adcode, City.name, City.name_en).order_by(City.adcode))
    frame = pd.DataFrame(cities.all(), columns=["city_code", "name", "name_en"]).set_index(
        "city_code"
    )
    for data_class, models in DATA_CLASSES.items():
        total = pd.Series(0, index=frame.index, dtype="int64")
        for model in models:
            # Aggregates count records the viewer may not open (DESIGN §4): the row
            # filter is bypassed on purpose, and only counts leave this function.
            if model.__tablename__ in COUNTED:
                # Millions of rows: the counts the triggers keep (hub/rollup.py), not a
                # scan on every first visit.
                rc = RecordCount
                q = (
                    select(rc.city_code, func.sum(rc.n))
                    .where(rc.dataset == model.__tablename__)
                    .group_by(rc.city_code)
                )
                secret = rc.classification == "secret"
            else:
                q = (
                    select(model.city_code, func.count())
                    .group_by(model.city_code)
                    .execution_options(policy="aggregate")
                )
                secret = model.classification == "secret"
            if not count_secret:
                q = q.where(~secret)
            per_city = pd.Series(dict(session.execute(q).all()), dtype="int64")
            total = total.add(per_city, fill_value=0).astype("int64")
        frame[data_class] = total.reindex(frame.index, fill_value=0)
    synthetic = session.scalar(
        select(func.count()).select_from(FeedBatch).where(FeedBatch.source_name == DEMO_SOURCE)
    )
    last = session.scalar(select(func.max(FeedBatch.finished_at)))
    return ProvinceOverview(frame.reset_index(), bool(synthetic), last)
