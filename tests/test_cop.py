"""The common operating picture's further questions (hub/cop.py): a hexagon's incidents
under the map's access rules, the command-room overlays by role, and the live tail that
audits only what it shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub import situation as sit
from hub.models import AuditEntry, Incident
from hub.security.errors import AccessDenied, InputError
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory
from tests.conftest import ANCHOR, BACKENDS
from tests.security_support import principal, seeded_copy

WEEK = sit.SituationQuery(ANCHOR - timedelta(days=7), ANCHOR)
HEFEI = "340100"


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    hub = Hub(engine, load_settings())
    who = {u: principal(engine, u) for u in ("commander.hf", "analyst", "investigator.cz",
                                             "officer.hf")}  # fmt: skip
    yield hub, who, engine
    engine.dispose()


def _busiest_cell(hub: Hub, viewer, query) -> tuple[str, int]:
    s = hub.situation(viewer, query, now=ANCHOR)
    top = s.hexes.sort_values("count").iloc[-1]
    return str(top.h3), int(top["count"])


def _audits(engine, dataset: str) -> int:
    with session_factory(engine)() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.dataset == dataset))  # fmt: skip


def test_a_province_hexagon_opens_its_incidents_rows_and_pointers_add_up(env):
    hub, who, engine = env
    query = sit.SituationQuery(ANCHOR - timedelta(days=1), ANCHOR, points=False)
    cell, count = _busiest_cell(hub, who["investigator.cz"], query)
    before = _audits(engine, "incidents")
    got = hub.cop.cell_incidents(who["investigator.cz"], query, cell, now=ANCHOR)
    # The hexagon's count is every incident; the viewer opens some, is pointed at others
    # (secret ones are counted only for roles that count secrets).
    assert got.total + sum(p.count for p in got.pointers) <= count
    assert got.total == len(got.rows) or len(got.rows) == 200
    assert got.total > 0 or got.pointers
    assert _audits(engine, "incidents") == before + 1


def test_a_city_hexagon_for_the_commander_shows_only_openable_rows(env):
    hub, who, engine = env
    query = sit.SituationQuery(ANCHOR - timedelta(days=7), ANCHOR, cities=(HEFEI,), points=False)
    cell, count = _busiest_cell(hub, who["commander.hf"], query)
    got = hub.cop.cell_incidents(who["commander.hf"], query, cell, now=ANCHOR)
    assert len(got.rows) > 0 and set(got.rows.city_code) == {HEFEI}
    with session_factory(engine)() as s:
        stored = s.scalar(
            select(func.count()).select_from(Incident)
            .where(Incident.h3_r7 == cell, Incident.ts >= query.start, Incident.ts < query.end)
            .execution_options(policy="validation")
        )  # fmt: skip
    assert stored == count
    assert got.total + sum(p.count for p in got.pointers) <= stored


def test_a_cell_that_is_not_a_map_cell_and_a_role_without_the_map_are_refused(env):
    hub, who, _ = env
    with pytest.raises(InputError):
        hub.cop.cell_incidents(who["analyst"], WEEK, "not-a-cell'; --")
    with pytest.raises(InputError):
        hub.cop.cell_incidents(who["analyst"], WEEK, "8f2830828052d25")  # resolution 15
    with pytest.raises(AccessDenied):
        hub.cop.cell_incidents(who["officer.hf"], WEEK, "872830828ffffff")


def test_overlays_follow_the_role(env):
    hub, who, _ = env
    since = ANCHOR - timedelta(days=1)
    wanted = ["operations", "alert_areas", "watch_hits", "tracked"]
    analyst = hub.cop.overlays(who["analyst"], wanted, since=since, now=ANCHOR)
    assert analyst.operations.empty and analyst.alert_areas.empty and analyst.hits.empty
    cmd = hub.cop.overlays(who["commander.hf"], wanted, since=since, now=ANCHOR)
    for frame in (cmd.operations, cmd.alert_areas):
        assert {"lon", "lat", "radius_m"} <= set(frame.columns)
    with pytest.raises(InputError):
        hub.cop.overlays(who["analyst"], ["everything"], since=since, now=ANCHOR)


def test_the_live_tail_shows_only_what_is_new_and_audits_only_then(env):
    hub, who, engine = env
    viewer = who["commander.hf"]
    first = hub.cop.live_tail(viewer, minutes=60, since=None, cities=(HEFEI,), now=ANCHOR)
    before = _audits(engine, "incidents")
    again = hub.cop.live_tail(viewer, minutes=60, since=ANCHOR + timedelta(hours=1),
                              cities=(HEFEI,), now=ANCHOR)  # fmt: skip
    assert again.incidents.empty and _audits(engine, "incidents") == before
    assert set(first.incidents.city_code) <= {HEFEI}
    with pytest.raises(InputError):
        hub.cop.live_tail(viewer, minutes=7, since=None)
