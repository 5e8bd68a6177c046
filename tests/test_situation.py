"""The situation map: the aggregation/point rule, hexagon resolution by selection, the
window checks, freshness, the audit of map views, and the layer builders."""

from __future__ import annotations

import json
from datetime import timedelta

import h3
import pandas as pd
import pytest
from sqlalchemy import func, select

from geo import layers as gl
from hub import situation as sit
from hub.models import AuditEntry, FeedBatch, HelpRequest, Incident
from hub.security.backstop import row_filter
from hub.security.errors import AccessDenied, InputError
from hub.security.policy import decide, relation
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from tests.conftest import ANCHOR, BACKENDS
from tests.security_support import principal, seeded_copy

WEEK = sit.SituationQuery(ANCHOR - timedelta(days=7), ANCHOR)
HEFEI = "340100"


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    hub = Hub(engine, load_settings())
    who = {u: principal(engine, u) for u in ("commander.hf", "analyst", "investigator.cz",
                                             "officer.hf", "leader")}  # fmt: skip
    yield hub, who, engine
    engine.dispose()


def _count(engine, *where) -> int:
    with session_factory(engine)() as s:
        return s.scalar(
            select(func.count()).select_from(Incident).where(*where)
            .execution_options(policy="validation")
        )  # fmt: skip


def _last_audit(engine) -> AuditEntry:
    with session_factory(engine)() as s:
        return s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()


def _in_week():
    return (Incident.ts >= WEEK.start, Incident.ts < WEEK.end)


# --- the aggregation / point rule --------------------------------------------------------


def test_hexagons_count_what_points_may_not_show(env) -> None:
    hub, who, engine = env
    s = hub.situation(who["investigator.cz"], WEEK, now=ANCHOR)
    total = _count(engine, *_in_week(), Incident.classification != "secret")
    assert s.total_incidents == total, "counts include records the viewer cannot open"
    assert s.points is not None and 0 < len(s.points) < total
    assert s.hidden["incidents"] == total - len(s.points)
    viewer = who["investigator.cz"]
    for row in s.points.itertuples():
        rel = relation(viewer, row.city_code, row.district_code)
        assert decide(viewer.role, row.classification, rel).opens
    assert set(s.points.columns) == set(sit._FEATURES["incidents"][1])
    assert "summary" not in s.points and "address" not in s.points


def test_secret_incidents_are_counted_only_for_province_roles(env) -> None:
    _, _, engine = env
    secret = _count(engine, *_in_week(), Incident.classification == "secret")
    assert secret > 0, "the demo has secret incidents in the week"
    with session_factory(engine)() as s:
        plain = sit.incident_hexes(s, WEEK, count_secret=False)["count"].sum()
        province = sit.incident_hexes(s, WEEK, count_secret=True)["count"].sum()
    assert province - plain == secret


def test_analyst_points_are_public_and_internal_only(env) -> None:
    hub, who, _ = env
    s = hub.situation(who["analyst"], WEEK, now=ANCHOR)
    assert s.points is not None and len(s.points)
    assert set(s.points.classification) <= {"public", "internal"}
    assert s.hidden["incidents"] > 0


def test_past_the_point_limit_nothing_is_opened(env, monkeypatch) -> None:
    hub, who, engine = env
    monkeypatch.setattr(sit, "POINT_LIMIT", 10)
    s = hub.situation(who["commander.hf"], WEEK, now=ANCHOR)
    assert s.points is None and s.openable_incidents > 10
    assert s.openable_incidents == s.total_incidents - s.hidden["incidents"], "counted, not read"
    assert s.total_incidents > 10, "the hexagons still count everything"
    entry = _last_audit(engine)
    assert entry.action == "map_view"
    assert not any(i.startswith("incidents:") for i in json.loads(entry.record_ids or "[]"))


def test_a_map_view_is_audited_with_what_it_showed(env) -> None:
    hub, who, engine = env
    q = sit.SituationQuery(ANCHOR - timedelta(hours=24), ANCHOR, cities=(HEFEI,))
    s = hub.situation(who["commander.hf"], q, now=ANCHOR)
    entry = _last_audit(engine)
    assert (entry.action, entry.username, entry.dataset) == (
        "map_view",
        "commander.hf",
        "situation",
    )
    shown = len(s.points) + len(s.risk_zones) + len(s.help_requests)
    assert entry.result_count == shown
    assert json.loads(entry.query)["cities"] == [HEFEI]
    assert entry.owner_cities == HEFEI


def test_hexagons_only_opens_no_record_and_writes_no_entry(env) -> None:
    hub, who, engine = env
    before = _last_audit(engine).seq
    q = sit.SituationQuery(WEEK.start, WEEK.end, layers=frozenset({"incidents"}), points=False)
    s = hub.situation(who["commander.hf"], q, now=ANCHOR)
    assert s.points is None and s.total_incidents > 0
    assert _last_audit(engine).seq == before


@pytest.mark.parametrize("username", ["officer.hf", "leader"])
def test_roles_without_the_map_are_refused_and_audited(env, username) -> None:
    hub, who, engine = env
    with pytest.raises(AccessDenied):
        hub.situation(who[username], WEEK, now=ANCHOR)
    entry = _last_audit(engine)
    assert (entry.action, entry.username, entry.decision) == (
        "map_view_refused", username, "role_not_allowed",
    )  # fmt: skip


def test_an_empty_window_is_an_empty_map(env) -> None:
    hub, who, _ = env
    far = ANCHOR - timedelta(days=400)
    s = hub.situation(
        who["commander.hf"], sit.SituationQuery(far, far + timedelta(hours=6)), now=ANCHOR
    )
    assert s.total_incidents == 0 and s.hexes.empty
    assert s.points is not None and s.points.empty and s.help_requests.empty


def test_filters_narrow_the_counts(env) -> None:
    hub, who, engine = env
    q = sit.SituationQuery(WEEK.start, WEEK.end, cities=(HEFEI,), types=("theft",),
                           severities=(1, 2))  # fmt: skip
    s = hub.situation(who["commander.hf"], q, now=ANCHOR)
    expected = _count(engine, *_in_week(), Incident.city_code == HEFEI,
                      Incident.type_code == "theft", Incident.severity.in_([1, 2]),
                      Incident.classification != "secret")  # fmt: skip
    assert s.total_incidents == expected > 0
    assert set(s.points.type_code) == {"theft"} and set(s.points.severity) <= {1, 2}


def test_openable_count_comes_from_the_same_pass_as_the_hexagons(env) -> None:
    _, who, engine = env
    viewer = who["investigator.cz"]
    with session_factory(engine)() as s:
        allowed = row_filter(s, viewer, Incident)
        cells = sit.incident_hexes(s, WEEK, count_secret=False, viewer=viewer)
        hidden = s.scalar(
            select(func.count()).select_from(Incident)
            .where(*_in_week(), Incident.classification != "secret", ~allowed)
            .execution_options(policy="aggregate")
        )  # fmt: skip
    assert cells["hidden"].sum() == hidden > 0
    assert (cells["hidden"] <= cells["count"]).all()


def test_a_rerun_reads_indexes_not_whole_tables(tmp_path_factory) -> None:
    """On SQLite the province counts of whole hours come from the hourly rollup's key,
    the part-hours at the window's ends from the covering time index alone (no table row
    read), and the unresolved help requests from their partial index: what keeps a
    7-day province rerun within its budget."""
    from sqlalchemy import event

    engine = seeded_copy("sqlite", tmp_path_factory)
    seen: list[tuple[str, tuple]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cur, stmt, params, ctx, many: seen.append((stmt, params)))  # fmt: skip
    try:
        Hub(engine, load_settings()).situation(
            principal(engine, "investigator.cz"), WEEK, now=ANCHOR
        )
        with engine.connect() as conn:
            plans = {
                stmt: " ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {stmt}", params))
                for stmt, params in seen if stmt.lstrip().startswith("SELECT")
            }  # fmt: skip
    finally:
        engine.dispose()
    hexes = [p for q, p in plans.items() if "GROUP BY" in q and "FROM incidents" in q]
    rolled = [p for q, p in plans.items() if "FROM incident_hourly" in q]
    helps = [p for q, p in plans.items() if "FROM help_requests" in q]
    assert all("COVERING INDEX ix_incidents_ts_covering" in p for p in hexes), hexes
    assert rolled and all("PRIMARY KEY (hour>? AND hour<?)" in p for p in rolled), rolled
    assert helps and all("ix_help_requests_unresolved_ts" in p for p in helps), helps


# --- resolution follows the selection ---------------------------------------------------


@pytest.mark.parametrize(
    ("cities", "districts", "res"),
    [((), (), 6), (("340100", "341100"), (), 6), (("340100",), (), 7), ((), ("340102",), 8)],
)
def test_hexagon_resolution_follows_the_selection(env, cities, districts, res) -> None:
    _, _, engine = env
    q = sit.SituationQuery(WEEK.start, WEEK.end, cities=cities, districts=districts)
    assert q.resolution == res
    with session_factory(engine)() as s:
        cells = sit.incident_hexes(s, q, count_secret=False)
    assert len(cells) and {h3.get_resolution(c) for c in cells.h3} == {res}
    assert cells.h3.is_unique


def test_playback_counts_by_hour_add_up_to_the_window(env) -> None:
    _, _, engine = env
    q = sit.SituationQuery(ANCHOR - timedelta(hours=24), ANCHOR, cities=(HEFEI,), by_hour=True)
    with session_factory(engine)() as s:
        by_hour = sit.incident_hexes(s, q, count_secret=False)
        whole = sit.incident_hexes(s, sit.SituationQuery(q.start, q.end, cities=(HEFEI,)),
                                   count_secret=False)  # fmt: skip
    assert by_hour["count"].sum() == whole["count"].sum() > 0
    assert by_hour.hour.dt.minute.eq(0).all() and str(by_hour.hour.dt.tz) == "UTC"
    assert by_hour.hour.min() >= q.start - timedelta(hours=1) and by_hour.hour.max() < q.end


# --- input --------------------------------------------------------------------------------


def test_preset_windows_end_now() -> None:
    assert sit.window("24h", ANCHOR) == (ANCHOR - timedelta(hours=24), ANCHOR)
    assert sit.window("7d", ANCHOR)[0] == ANCHOR - timedelta(days=7)


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        (ANCHOR, ANCHOR - timedelta(hours=1), "window_order"),
        (ANCHOR, ANCHOR, "window_order"),
        (ANCHOR - timedelta(hours=1), ANCHOR + timedelta(days=1), "window_future"),
        (ANCHOR - timedelta(days=40), ANCHOR, "window_too_long"),
        (None, ANCHOR, "window_missing"),
    ],
)
def test_bad_custom_windows_are_refused(start, end, code) -> None:
    with pytest.raises(InputError) as err:
        sit.window("custom", ANCHOR, start, end)
    assert err.value.code == code


def test_unknown_filters_are_refused(env) -> None:
    hub, who, _ = env
    for q in (
        sit.SituationQuery(WEEK.start, WEEK.end, types=("ufo",)),
        sit.SituationQuery(WEEK.start, WEEK.end, severities=(9,)),
        sit.SituationQuery(WEEK.start, WEEK.end, layers=frozenset({"tanks"})),
    ):
        with pytest.raises(InputError) as err:
            hub.situation(who["commander.hf"], q, now=ANCHOR)
        assert err.value.code == "bad_filter"


# --- freshness ----------------------------------------------------------------------------


def test_freshness_flags_stale_feeds_and_cities_without_one(env) -> None:
    _, _, engine = env
    with session_factory(engine)() as s:
        fresh = sit.freshness(s, ANCHOR)
        later = sit.freshness(s, ANCHOR + timedelta(hours=3))
    assert len(fresh) == 16 * len(sit.STALE_AFTER)
    inc = fresh[fresh.dataset == "incidents"]
    assert not inc.stale.any(), "the demo's feeds all arrived at the anchor"
    assert later[later.dataset == "incidents"].stale.all(), "3 h later they are stale (> 2 h)"
    assert not later[later.dataset == "cameras"].stale.any(), "cameras may be a week old"
    with transaction(engine) as s:  # a city whose incident feed never arrived
        for b in s.scalars(select(FeedBatch).where(FeedBatch.city_code == HEFEI,
                                                   FeedBatch.dataset == "incidents")):  # fmt: skip
            b.status = "failed"
    with session_factory(engine)() as s:
        row = sit.freshness(s, ANCHOR).query("city_code == @HEFEI and dataset == 'incidents'")
    assert row.stale.item() and pd.isna(row.last_arrival.item())


# --- layer builders (pure) ------------------------------------------------------------------


def test_hex_layer_sends_cell_ids_coloured_by_count() -> None:
    cells = pd.DataFrame({"h3": [h3.latlng_to_cell(31.8, 117.2, 6),
                                                    h3.latlng_to_cell(32.3, 118.3, 6)],
                          "count": [1, 50], "tip": ["a", "b"]})  # fmt: skip
    layer = gl.hex_layer(cells)
    assert layer.type == "H3HexagonLayer" and len(layer.data) == 2
    dark, light = layer.data[1]["color"], layer.data[0]["color"]
    assert sum(dark[:3]) < sum(light[:3]), "more incidents, darker cell"


def test_ramp_is_monotone_and_handles_empty() -> None:
    colors = gl.ramp_colors(pd.Series([0, 1, 5, 20, 100]))
    brightness = [sum(c[:3]) for c in colors]
    assert brightness == sorted(brightness, reverse=True)
    assert gl.ramp_colors(pd.Series([], dtype=float)) == []


def test_scatter_layer_sends_only_position_id_tip_and_colour() -> None:
    frame = pd.DataFrame({"id": [1], "lon": [117.123456789], "lat": [31.1], "tip": ["x"],
                          "summary": ["secret narrative"], "classification": ["internal"]})  # fmt: skip
    layer = gl.scatter_layer(frame, layer_id="incident-points")
    assert set(layer.data[0]) == {"id", "lon", "lat", "tip", "color"}
    assert layer.data[0]["lon"] == 117.12346


def test_heat_layer_uses_cell_centres_weighted_by_count() -> None:
    cells = pd.DataFrame({"h3": [h3.latlng_to_cell(31.8, 117.2, 7)], "count": [7]})
    centred = gl.cell_centres(cells)
    assert abs(centred.lat.item() - 31.8) < 0.05 and abs(centred.lon.item() - 117.2) < 0.05
    layer = gl.heat_layer(centred)
    assert layer.type == "HeatmapLayer" and list(layer.data[0]) == ["lon", "lat", "count"]


def test_view_zooms_in_from_province_to_city_to_district() -> None:
    province = gl.view_for()
    city = gl.view_for(["340100"])
    district = gl.view_for(["340100"], ["340102"])
    assert province.zoom < city.zoom < district.zoom
    assert 116.5 < city.longitude < 118.0 and 31.0 < city.latitude < 32.6


def test_stale_layer_outlines_only_the_stale_cities() -> None:
    layer = gl.stale_layer(["340100", "341100"])
    assert {f["properties"]["adcode"] for f in layer.data["features"]} == {"340100", "341100"}


def test_help_layer_shows_unresolved_requests_of_any_age(env) -> None:
    hub, who, engine = env
    q = sit.SituationQuery(ANCHOR - timedelta(hours=1), ANCHOR, cities=(HEFEI,))
    s = hub.situation(who["commander.hf"], q, now=ANCHOR)
    with session_factory(engine)() as db:
        expected = db.scalar(
            select(func.count()).select_from(HelpRequest)
            .where(HelpRequest.city_code == HEFEI, HelpRequest.status != "closed",
                   HelpRequest.ts < ANCHOR, HelpRequest.classification != "secret")
            .execution_options(policy="validation")
        )  # fmt: skip
    assert len(s.help_requests) == expected
    assert "closed" not in set(s.help_requests.status)


def test_the_start_up_heap_is_frozen_once_per_process(monkeypatch) -> None:
    import gc

    import ui.hub

    monkeypatch.setattr(ui.hub, "_settled", False)
    ui.hub.settle_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 0 and ui.hub._settled
    garbage = [[i] for i in range(1000)]  # noqa: F841 - alive, so a second freeze would take it
    ui.hub.settle_heap()
    # A second freeze would take the thousand lists above; the count may only shrink
    # (a frozen object freed elsewhere in the run, e.g. by another thread, leaves it).
    assert gc.get_freeze_count() <= frozen, "a second Hub does not freeze the heap again"
