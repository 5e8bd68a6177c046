"""Province aggregates agree with direct counts; secret records are left out by default."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from hub.codes import code_values
from hub.models import DATA_CLASSES
from hub.overview import province_overview
from hub.store import transaction


def _direct(engine, table: str, secret: bool) -> dict[str, int]:
    where = "" if secret else "WHERE classification <> 'secret'"
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT city_code, COUNT(*) FROM {table} {where} GROUP BY city_code")
        )
        return dict(rows.all())


def test_data_classes_match_the_code_table():
    assert tuple(DATA_CLASSES) == code_values("data_class")


def test_counts_per_city_and_class(seeded):
    with transaction(seeded) as session:
        ov = province_overview(session=session)
        with_secret = province_overview(session=session, count_secret=True)
    assert len(ov.counts) == 16 and ov.synthetic
    by_city = ov.counts.set_index("city_code")
    incidents = _direct(seeded, "incidents", secret=False)
    for city, n in incidents.items():
        assert by_city.loc[city, "incidents"] == n
    cams, sights = _direct(seeded, "cameras", False), _direct(seeded, "sightings", False)
    for city in by_city.index:
        assert by_city.loc[city, "surveillance"] == cams.get(city, 0) + sights.get(city, 0)
    all_incidents = sum(_direct(seeded, "incidents", secret=True).values())
    assert with_secret.totals["incidents"] == all_incidents > ov.totals["incidents"]


def test_empty_store_gives_zero_counts_not_an_error(store):
    with transaction(store) as session:
        ov = province_overview(session=session)
    assert len(ov.counts) == 16
    assert sum(ov.totals.values()) == 0 and not ov.synthetic and ov.last_arrival is None


def test_overview_feed_validity_is_the_scorecards(seeded):
    """The overview counts each city's feed validity in one grouped query; it is the
    quality scorecard's figure (mean over the city's feeds of the valid share)."""
    from hub.analytics import feed_validity
    from hub.quality import scorecard
    from tests.conftest import ANCHOR

    with transaction(seeded) as session:
        card = scorecard(session, now=ANCHOR)
        got = feed_validity(session)
    want = card.groupby("city_code")["validity"].mean()
    assert len(want) == 16 and want.notna().all()
    pd.testing.assert_series_equal(got, want, check_names=False)
