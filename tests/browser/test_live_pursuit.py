"""The pursuit over the live bus, in two browsers: investigator.hf watches the pursuit
plate, `hub live` drives the car from 合肥 into 滁州 through a nats-server of the test's
own and the stream consumer, and the 滁州 hit appears on the investigator's watch page and
on commander.cz's without either page being reloaded (the watch page's hit list is a
fragment refreshed every `pages/watch.py` REFRESH_SECONDS = 5 s)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from hub.demo import PURSUIT_CASE_NO, PURSUIT_PLATE, PURSUIT_TO
from hub.live import bus
from hub.live.consumer import Options, StreamConsumer
from hub.live.publisher import LiveOptions, run_live
from hub.security.crypto import FieldCipher
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import make_engine
from tests.browser.conftest import Visit, running_app, sign_in
from tests.bus_support import ensure, hub_endpoint, running_server

pytestmark = pytest.mark.browser
HIT_SECONDS = 90


@pytest.fixture
def live_app(seeded_sqlite_url, tmp_path):
    """A private copy of the browser store, a bus, and a Streamlit app wired to both."""
    db = tmp_path / "live.db"
    shutil.copy(seeded_sqlite_url.removeprefix("sqlite:///"), db)
    url = f"sqlite:///{db}"
    servers = running_server(tmp_path)
    server = next(servers)
    # Playwright's sync API keeps an event loop in this thread: the bus calls run in another.
    setup = threading.Thread(target=ensure, args=(server,))
    setup.start()
    setup.join()
    env = {"HUB_DATABASE_URL": url, "HUB_BUS_URL": server.url,
           "HUB_BUS_USER": bus.HUB_USER, "HUB_BUS_PASSWORD": server.creds[bus.HUB_USER]}  # fmt: skip
    try:
        with running_app("app.py", env) as app:
            yield app, url, server
    finally:
        next(servers, None)


def _drive(url: str, server, stop: threading.Event) -> None:
    """The consumer and `hub live` (the pursuit already under way) until `stop`."""
    engine = make_engine(url)
    endpoint = hub_endpoint(server)

    def city(adcode: str) -> bus.Endpoint:
        user = bus.city_user(adcode)
        return bus.Endpoint((server.url,), user, server.creds[user])

    async def go() -> None:
        halt = asyncio.Event()
        consumer = StreamConsumer(engine, endpoint, FieldCipher.from_settings(load_settings()),
                                  options=Options(max_wait_s=0.2))  # fmt: skip
        options = LiveOptions(rate=0.5, backfill_hours=0.05, seed=7, pursuit_after_s=-1800.0,
                              tick_s=0.5)  # fmt: skip
        tasks = [asyncio.create_task(consumer.run(stop=halt)),
                 asyncio.create_task(run_live(engine, endpoint, options, stop=halt, creds_for=city))]  # fmt: skip
        while not stop.is_set():
            await asyncio.sleep(0.3)
        halt.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(go())
    engine.dispose()


def _open_watch(v: Visit, user: str) -> None:
    sign_in(v, user)
    v.shot(f"live-pursuit-signed-in-{user}")
    v.page.get_by_test_id("stSidebarNav").get_by_text("布控").first.click()
    v.settle()
    v.page.evaluate("window.__notReloaded = true")


def _hit_in_chuzhou(v: Visit):
    return (
        v.page.get_by_test_id("stMarkdownContainer")
        .filter(has_text=PURSUIT_PLATE)
        .filter(has_text="出现在滁州市")
    )


def test_the_pursuit_hit_arrives_live_on_both_pages(browser, live_app):
    app, url, server = live_app
    engine = make_engine(url)
    hub = Hub(engine, load_settings())
    inv = hub.sign_in("investigator.hf", "demo-2026")
    # Put on watch an hour ago: `hub live` below starts the pursuit half an hour ago, so
    # its reads are due at once (a read raises a hit when it is newer than the watch).
    began = datetime.now(UTC) - timedelta(hours=1)
    hub.watch.create_watch(inv, PURSUIT_PLATE, Reason("pursuit", PURSUIT_CASE_NO), "province",
                           began + timedelta(days=3), "追逃：嫌疑车辆", now=began)  # fmt: skip
    engine.dispose()
    investigator, commander = Visit(browser, app), Visit(browser, app)
    stop = threading.Event()
    driver = threading.Thread(target=_drive, args=(url, server, stop), daemon=True)
    try:
        _open_watch(investigator, "investigator.hf")
        _open_watch(commander, "commander.cz")
        assert _hit_in_chuzhou(investigator).count() == 0
        investigator.shot("live-pursuit-0-watching")
        driver.start()
        started = time.monotonic()
        for v in (investigator, commander):
            _hit_in_chuzhou(v).first.wait_for(timeout=HIT_SECONDS * 1000)
        arrived = time.monotonic() - started
        for v in (investigator, commander):
            assert v.page.evaluate("window.__notReloaded === true"), "the page was reloaded"
        investigator.shot("live-pursuit-1-investigator")
        commander.shot("live-pursuit-2-commander")
        print(f"hit on both pages {arrived:.1f} s after hub live started")
        assert PURSUIT_TO == "341100"
        assert investigator.external == [] and commander.external == []
    finally:
        stop.set()
        if driver.is_alive():
            driver.join(timeout=30)
        investigator.context.close()
        commander.context.close()
