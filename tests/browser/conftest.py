"""Real-browser fixtures: `streamlit run` on a free port, Debian's Chromium via Playwright.

Every request that would leave the machine is aborted and recorded, so a test can
assert the app works on a network without internet. A failed test keeps a screenshot
under test-artifacts/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
START_MS = 400  # how long a run an action asked for may take to start
DRAW_MS = 300  # after a run: the browser draws what it sent
ARTIFACTS = ROOT / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(script: str, env: dict[str, str]) -> Iterator[str]:
    """`streamlit run <script>` on a free loopback port with `env` added, until healthy
    (60 s at most); its URL, and the server stopped afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / script),
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError(f"{script} did not become healthy within 60 s")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="session")
def app_url(seeded_sqlite_url) -> Iterator[str]:
    with running_app("app.py", {"HUB_DATABASE_URL": seeded_sqlite_url}) as url:
        yield url


@pytest.fixture(scope="session")
def seeded_sqlite_url(tmp_path_factory) -> str:
    """A small demo store of the browser tests' own: they file requests and decide them."""
    from hub import demo
    from hub.reference import load_reference
    from hub.settings import load_settings
    from hub.store import make_engine, transaction, upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'hub.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with transaction(engine) as session:
        load_reference(session=session)
    demo.seed(engine, load_settings(), size="small")
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} missing: ./test installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


class Visit:
    """One browser context: pages, the external requests it tried, console errors."""

    def __init__(self, browser, base_url: str) -> None:
        self.base_url = base_url
        self.external: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _route(self, route) -> None:
        host = route.request.url.split("/")[2].rsplit(":", 1)[0]
        if host in LOCAL_HOSTS:
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def settle(self) -> None:
        """Wait until the run an action asked for has ended and the browser has drawn it:
        the run may start a moment after the action (`START_MS`), and a script may ask
        for another run itself (`st.rerun`), so the app must still be idle `DRAW_MS`
        after it first looks idle."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        app = "[data-testid='stApp']"
        busy = self.page.locator(f"{app}:not([data-test-script-state='notRunning'])")
        idle = self.page.locator(f"{app}[data-test-script-state='notRunning']")
        with suppress(PlaywrightTimeout):  # an action that asks for no run
            busy.wait_for(state="attached", timeout=START_MS)
        idle.wait_for(state="attached", timeout=60_000)
        self.page.wait_for_timeout(DRAW_MS)
        idle.wait_for(state="attached", timeout=60_000)

    def goto(self, path: str = "") -> None:
        self.page.goto(f"{self.base_url}/{path}")
        self.settle()

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def visit(browser, app_url, request) -> Iterator[Visit]:
    v = Visit(browser, app_url)
    yield v
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        v.shot(f"FAILED-{request.node.name}")
    v.context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def sign_in(visit: Visit, username: str, password: str = "demo-2026") -> None:
    visit.goto()
    visit.page.get_by_label("用户名").fill(username)
    visit.page.get_by_label("密码").fill(password)
    visit.page.get_by_role("button", name="登录").click()
    visit.settle()


def open_case(url: str, city: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        case_no = conn.execute(
            text(
                "SELECT case_no FROM cases WHERE city_code = :c AND status = 'open' ORDER BY id LIMIT 1"
            ),
            {"c": city},
        ).scalar_one()
    engine.dispose()
    return case_no
