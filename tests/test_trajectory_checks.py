"""A trajectory does not show an impossible drive as fact: a section whose implied speed
no car reaches (or two far-apart reads at one moment) is flagged as a possible cloned
plate (套牌), breaks the path and is no border crossing; the demo's pursuit is a drive a
car can make; the trajectory page shows the flag and a legend."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from geo.distance import haversine_m
from hub import demo
from hub.models import Camera, FeedBatch, Sighting
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory, transaction
from hub.trajectory import MAX_PLAUSIBLE_KMH
from tests.conftest import ANCHOR, BACKENDS, ROOT
from tests.security_support import at, principal, seeded_copy

PLATE, HEFEI = demo.PURSUIT_PLATE, demo.PURSUIT_FROM
PURSUIT = Reason("pursuit", demo.PURSUIT_CASE_NO)
START, END = ANCHOR - timedelta(hours=4), ANCHOR + timedelta(hours=1)


def test_the_demo_pursuit_is_a_drive_a_car_can_make(seeded) -> None:
    with session_factory(seeded)() as s:
        reads = s.execute(
            select(Sighting.ts, Sighting.lon, Sighting.lat)
            .where(Sighting.plate == PLATE)
            .order_by(Sighting.ts)
        ).all()
    assert len(reads) >= 6
    speeds = [
        float(haversine_m(a.lon, a.lat, b.lon, b.lat)) / 1000
        / ((b.ts - a.ts).total_seconds() / 3600)
        for a, b in zip(reads, reads[1:], strict=False)
    ]  # fmt: skip
    assert max(speeds) < 130 < MAX_PLAUSIBLE_KMH, speeds


@pytest.fixture(scope="module", params=BACKENDS)
def cloned(request, tmp_path_factory):
    """A copy of the demo with two clone reads of the pursuit plate in 合肥: one a minute
    after the car's last 合肥 read at the 合肥 camera furthest from it, one at the same
    moment as its first read at another far camera."""
    engine = seeded_copy(request.param, tmp_path_factory)
    hub = Hub(engine, load_settings())
    inv = principal(engine, "investigator.hf")
    real = hub.plate_trajectory(inv, PLATE, START, END, PURSUIT, now=at(day=0)).points
    with transaction(engine) as s:
        cams = s.execute(
            select(Camera.id, Camera.district_code, Camera.lon, Camera.lat).where(
                Camera.city_code == HEFEI
            )
        ).all()
        batch = FeedBatch(city_code=HEFEI, dataset="sightings", source_name="clone")
        s.add(batch)
        s.flush()
        for anchor_read, ts in ((real[-1], real[-1]["ts"] + timedelta(minutes=1)),
                                (real[0], real[0]["ts"])):  # fmt: skip
            far = max(
                cams, key=lambda c, r=anchor_read: haversine_m(r["lon"], r["lat"], c.lon, c.lat)
            )
            s.add(Sighting(
                source_id=f"clone-{uuid.uuid4().hex[:12]}", city_code=HEFEI,
                district_code=far.district_code, classification="sensitive", camera_id=far.id,
                plate=PLATE, ts=ts, lon=far.lon, lat=far.lat, source_batch_id=batch.id,
            ))  # fmt: skip
    yield engine, hub, inv, real
    engine.dispose()


def test_impossible_sections_are_flagged_not_drawn(cloned) -> None:
    _, hub, inv, real = cloned
    tr = hub.plate_trajectory(inv, PLATE, START, END, PURSUIT, now=at(day=0))
    assert len(tr.points) == len(real) + 2
    assert not any(p["implausible"] for p in real)  # the real drive alone is plausible
    flagged = [p for p in tr.points if p["implausible"]]
    assert len(tr.suspect) == len(flagged) >= 2
    fast = [x for x in tr.suspect if x["speed_kmh"] is not None]
    assert fast and all(x["speed_kmh"] > MAX_PLAUSIBLE_KMH for x in fast)
    same_time = [x for x in tr.suspect if x["speed_kmh"] is None]
    assert same_time and all(x["from_ts"] == x["to_ts"] and x["km"] > 0.5 for x in same_time)
    # Every section kept as plausible is one a car can drive.
    assert all(
        (p["speed_kmh"] or 0) <= MAX_PLAUSIBLE_KMH for p in tr.points if not p["implausible"]
    )


def test_the_trajectory_page_warns_and_has_a_legend(cloned, monkeypatch) -> None:
    engine, hub, inv, _ = cloned
    if engine.dialect.name != "sqlite":
        pytest.skip("the page is the same on both stores")
    monkeypatch.setenv("HUB_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    page = AppTest.from_file(str(ROOT / "pages/trajectory.py"), default_timeout=60)
    page.session_state["principal"] = inv
    page.session_state["traj_query"] = {"plate": PLATE, "start": START, "end": END,
                                        "reason": PURSUIT}  # fmt: skip
    page.run()
    st.cache_resource.clear()
    assert not page.exception
    warnings = [w.value for w in page.warning if w.value.startswith("疑似套牌")]
    assert len(warnings) == len(hub.plate_trajectory(inv, PLATE, START, END, PURSUIT).suspect)
    assert any("公里需时速至少" in w for w in warnings)
    assert any("同一时刻" in w for w in warnings)
    assert any(c.value.startswith("**图例**") and "疑似套牌" in c.value for c in page.caption)
