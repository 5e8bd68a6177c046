"""The hourly incident rollup and the record counts, on both backends: equal to a GROUP
BY over the records after a demo seed, a file ingest, an update and a retention purge;
the situation map's hexagons and hidden counts from them equal the raw computation for
every map role."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import h3
import pandas as pd
import pytest
from sqlalchemy import func, select, update

from hub import demo
from hub import models as m
from hub import situation as sit
from hub.ingest.pipeline import ingest_file
from hub.ingest.spec import load_spec
from hub.retention import apply_retention
from hub.security.crypto import FieldCipher
from hub.selection import utc_hour
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import ANCHOR, BACKENDS, ROOT
from tests.security_support import principal, seeded_copy

SAMPLE = ROOT / "data" / "samples" / "standard_incidents.csv"
CIPHER = FieldCipher.from_settings(load_settings())
MAP_USERS = [u for u, _, role, _, _ in demo.DEMO_USERS if role in sit.SITUATION_ROLES]


def _hourly(engine) -> pd.DataFrame:
    h = m.IncidentHourly
    with transaction(engine) as s:
        rows = s.execute(
            select(h.hour, h.h3_r7, h.city_code, h.district_code, h.classification,
                   h.type_code, h.severity, h.n).where(h.n != 0)
        ).all()  # fmt: skip
    frame = pd.DataFrame(rows, columns=[*m.IncidentHourly.__table__.c.keys()])
    frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _grouped(engine) -> pd.DataFrame:
    i = m.Incident
    with transaction(engine) as s:
        hour = utc_hour(s, i.ts)
        district = func.coalesce(i.district_code, "")
        keys = [hour, i.h3_r7, i.city_code, district, i.classification, i.type_code, i.severity]
        rows = s.execute(select(*keys, func.count()).group_by(*keys)).all()
    frame = pd.DataFrame(rows, columns=[*m.IncidentHourly.__table__.c.keys()])
    from hub.selection import parse_utc_hours

    frame["hour"] = parse_utc_hours(frame["hour"])
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _series_agree(engine) -> None:
    """`incident_series` holds, per series, exactly a GROUP BY of the incidents."""
    from hub.rollup import SERIES, incident_series

    s_ = incident_series.c
    i = m.Incident
    with transaction(engine) as s:
        kept = s.execute(
            select(s_.series, s_.hour, s_.key, s_.classification, s_.n).where(s_.n != 0)
        ).all()
        raw = []
        for name, column in SERIES.items():
            hour, key = utc_hour(s, i.ts), func.coalesce(getattr(i, column), "")
            raw += [(name, *row) for row in s.execute(
                select(hour, key, i.classification, func.count())
                .group_by(hour, key, i.classification)
                .execution_options(policy="validation")).all()]  # fmt: skip
    from hub.selection import parse_utc_hours

    columns = ["series", "hour", "key", "classification", "n"]
    kept, raw = pd.DataFrame(kept, columns=columns), pd.DataFrame(raw, columns=columns)
    kept["hour"] = pd.to_datetime(kept["hour"], utc=True)
    raw["hour"] = parse_utc_hours(raw["hour"])
    assert set(kept.series) == set(SERIES)
    pd.testing.assert_frame_equal(
        kept.sort_values(columns).reset_index(drop=True),
        raw.sort_values(columns).reset_index(drop=True), check_dtype=False,
    )  # fmt: skip


def _cells_agree(engine) -> None:
    """`incident_cells` holds a GROUP BY of the incidents by UTC day and r6 parent (h3's
    own parent, against the SQL of the triggers), city, district, class and severity."""
    from hub.rollup import CELLS_KEY, incident_cells

    c = incident_cells.c
    i = m.Incident
    with transaction(engine) as s:
        kept = s.execute(select(*(c[k] for k in CELLS_KEY), c.n).where(c.n != 0)).all()
        raw = s.execute(
            select(i.ts, i.h3_r7, i.city_code, func.coalesce(i.district_code, ""),
                   i.classification, i.severity).execution_options(policy="validation")
        ).all()  # fmt: skip
    columns = [*CELLS_KEY, "n"]
    kept = pd.DataFrame(kept, columns=columns)
    kept["day"] = pd.to_datetime(kept["day"], utc=True)
    raw = pd.DataFrame(raw, columns=["ts", *CELLS_KEY[1:]])
    raw["day"] = pd.to_datetime(raw.pop("ts"), utc=True).dt.floor("D")
    raw["h3_r6"] = raw["h3_r6"].map(lambda cell: h3.cell_to_parent(cell, 6))
    raw = raw.groupby(list(CELLS_KEY), as_index=False).size().rename(columns={"size": "n"})
    pd.testing.assert_frame_equal(
        kept.sort_values(columns).reset_index(drop=True),
        raw[columns].sort_values(columns).reset_index(drop=True), check_dtype=False,
    )  # fmt: skip


def _counts_agree(engine) -> None:
    pd.testing.assert_frame_equal(_hourly(engine), _grouped(engine), check_dtype=False)
    _series_agree(engine)
    _cells_agree(engine)
    with transaction(engine) as s:
        for model in (m.Incident, m.Sighting):
            kept = dict(
                ((c, k), n) for c, k, n in s.execute(
                    select(m.RecordCount.city_code, m.RecordCount.classification,
                           m.RecordCount.n)
                    .where(m.RecordCount.dataset == model.__tablename__, m.RecordCount.n != 0)
                ).all()
            )  # fmt: skip
            raw = dict(
                ((c, k), n) for c, k, n in s.execute(
                    select(model.city_code, model.classification, func.count())
                    .group_by(model.city_code, model.classification)
                ).all()
            )  # fmt: skip
            assert kept == raw, model.__tablename__


@pytest.mark.parametrize("backend", BACKENDS)
def test_rollup_follows_seed_ingest_update_and_retention(backend, tmp_path_factory) -> None:
    engine = seeded_copy(backend, tmp_path_factory)
    assert len(_hourly(engine)) > 100
    _counts_agree(engine)  # after the demo seed (bulk load + the services' writes)
    spec = load_spec("standard_incidents")
    r = ingest_file(engine, SAMPLE, city_code="340100", spec=spec, cipher=CIPHER, now=ANCHOR)
    assert r.rows_inserted > 0
    _counts_agree(engine)  # after a file ingest
    with transaction(engine) as s:
        s.execute(
            update(m.Incident)
            .where(m.Incident.city_code == "340100", m.Incident.severity == 1)
            .values(severity=3, classification="sensitive", ts=ANCHOR - timedelta(hours=29))
        )
        s.execute(
            update(m.Incident).where(m.Incident.city_code == "341100").values(status="closed")
        )
    _counts_agree(engine)  # after updates (a moved time, a changed class; a status)
    with transaction(engine) as s:
        purged = apply_retention(s, {"incidents": 3, "sightings": 2}, now=ANCHOR)
    assert all(p.purged > 0 for p in purged if p.days)
    _counts_agree(engine)  # after retention (deletes; on PostgreSQL whole days dropped)
    engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("username", MAP_USERS)
@pytest.mark.parametrize("by_hour", [False, True])
def test_hexagons_and_hidden_counts_equal_the_raw_computation(env, username, by_hour) -> None:
    """A window that does not start or end on the hour: its whole hours come from the
    rollup, its ends from the incidents; together they equal counting every incident."""
    viewer = principal(env, username)
    start = ANCHOR - timedelta(days=6, minutes=37)
    q = sit.SituationQuery(start, ANCHOR - timedelta(minutes=11), by_hour=by_hour)
    with session_factory(env)() as s:
        s.info.update(principal=viewer, grants=())
        for count_secret in (False, True):
            mixed = sit.incident_hexes(s, q, count_secret=count_secret, viewer=viewer)
            raw = sit._raw_hexes(s, q, q.start, q.end, count_secret, viewer)
            raw["h3"] = sit._to_resolution(raw, "h3", q.resolution)
            names = ["h3", "hour"] if by_hour else ["h3"]
            raw = (raw.groupby(names, as_index=False, sort=True)
                   .agg(count=("count", "sum"), max_severity=("max_severity", "max"),
                        hidden=("hidden", "sum")).astype(dict.fromkeys(
                            ["count", "max_severity", "hidden"], "int64")))  # fmt: skip
            pd.testing.assert_frame_equal(mixed.reset_index(drop=True), raw)
            assert mixed["hidden"].sum() > 0 or username.startswith("commander")


def test_a_case_grant_is_taken_off_the_rollups_hidden_count(env) -> None:
    """A case grant opens incidents the role does not: the rollup cannot see cases, so
    those are counted from the incidents and taken off its hidden count."""
    from hub.security.policy import GrantScope

    viewer = principal(env, "investigator.hf")
    other = "341100"  # 滁州: its sensitive incidents are hidden from a 合肥 investigator
    with transaction(env) as s:
        case_id = s.scalar(select(m.Case.id).where(m.Case.city_code == other).limit(1))
        linked = select(m.Incident.id).where(
            m.Incident.city_code == other, m.Incident.classification == "sensitive",
            m.Incident.ts >= ANCHOR - timedelta(days=3)).limit(5)  # fmt: skip
        s.execute(update(m.Incident).where(m.Incident.id.in_(linked)).values(case_id=case_id))
    city = other
    grant = GrantScope(1, city, "sensitive", "case", str(case_id), ANCHOR + timedelta(days=1))
    q = sit.SituationQuery(ANCHOR - timedelta(days=29), ANCHOR)
    with session_factory(env)() as s:
        s.info.update(principal=viewer, grants=(grant,))
        mixed = sit.incident_hexes(s, q, count_secret=False, viewer=viewer)
        raw = sit._raw_hexes(s, q, q.start, q.end, False, viewer)
        s.info.update(grants=())
        s.info.pop("row_filters", None)
        without = sit.incident_hexes(s, q, count_secret=False, viewer=viewer)
    assert mixed["hidden"].sum() == raw["hidden"].sum() < without["hidden"].sum()


@pytest.mark.parametrize("count_secret", [False, True])
def test_overview_charts_equal_counting_the_incidents(env, count_secret) -> None:
    """The overview's charts and KPI come from `incident_series` and the part-hours at the
    window's ends: at a time off the hour they equal counting every incident."""
    from hub import analytics

    now = ANCHOR - timedelta(hours=5, minutes=23)
    tz = "Asia/Shanghai"
    i = m.Incident
    with session_factory(env)() as s:
        ov = analytics.overview(s, now=now, count_secret=count_secret)
        rows = s.execute(
            select(i.ts, i.city_code, i.type_code, i.district_code)
            .where(i.ts < now, True if count_secret else i.classification != "secret")
            .execution_options(policy="validation")
        ).all()  # fmt: skip
    raw = pd.DataFrame(rows, columns=["ts", "city_code", "type", "district_code"])
    raw["local"] = pd.to_datetime(raw.ts, utc=True).dt.tz_convert(tz)
    today = now.astimezone(ZoneInfo(tz)).date()
    month = raw[raw.local >= pd.Timestamp(today - timedelta(days=29), tz=tz)]
    trend = month.assign(day=month.local.dt.strftime("%Y-%m-%d")).groupby(
        ["city_code", "day"], as_index=False).size().rename(columns={"size": "count"})  # fmt: skip
    pd.testing.assert_frame_equal(ov.trend, trend, check_dtype=False)
    mix = month.groupby("type", as_index=False).size().rename(columns={"size": "count"})
    pd.testing.assert_frame_equal(ov.type_mix, mix, check_dtype=False)
    how = (month.assign(weekday=month.local.dt.day_of_week, hour=month.local.dt.hour)
           .groupby(["weekday", "hour"], as_index=False).size().rename(columns={"size": "count"}))  # fmt: skip
    pd.testing.assert_frame_equal(ov.hour_of_week, how, check_dtype=False)
    week = raw[raw.local >= pd.Timestamp(today - timedelta(days=6), tz=tz)]
    per_district = week.district_code.value_counts(dropna=False)
    got = dict(zip(ov.districts.district_code, ov.districts["count"], strict=True))
    assert got == {(None if pd.isna(k) else k): v for k, v in per_district.items()}
    assert ov.province["today"] == int((raw.local.dt.date == today).sum())
