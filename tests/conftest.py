"""Shared fixtures: fresh and seeded stores on SQLite and on the local PostgreSQL.

PostgreSQL is not optional: the suite runs the store tests on both. Each test that
needs a fresh PostgreSQL store gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from hub import demo
from hub.reference import load_reference
from hub.settings import load_settings
from hub.store import make_engine, transaction, upgrade

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT.parent / "shared" / "testdata" / "peer"
PG_ADMIN_URL = os.environ.get(
    "HUB_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")
ANCHOR = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _admin() -> Engine:
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def new_database_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'hub-{uuid.uuid4().hex[:8]}.db'}"
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    _created.append(name)
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


_created: list[str] = []


def pytest_sessionfinish(session, exitstatus) -> None:
    if not _created:
        return
    admin = _admin()
    with admin.connect() as conn:
        for name in _created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def pytest_configure(config) -> None:
    try:
        admin = _admin()
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
        admin.dispose()
    except Exception as exc:  # the message must say what to do, not skip
        raise pytest.UsageError(
            f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({exc.__class__.__name__}). "
            "Start it (./test does: pg_ctlcluster --skip-systemctl-redirect "
            "$(ls /etc/postgresql) main start) or set HUB_TEST_DATABASE_URL."
        ) from None


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> str:
    """URL of a database with nothing in it (not even the schema)."""
    return new_database_url(backend, tmp_path)


@pytest.fixture
def store(empty_url: str) -> Iterator[Engine]:
    """A migrated store with reference data and no records."""
    engine = make_engine(empty_url)
    upgrade(engine)
    with transaction(engine) as session:
        load_reference(session=session)
    yield engine
    engine.dispose()


_seeded: dict[str, Engine] = {}


def seeded_engine(backend: str, tmp_path_factory) -> Engine:
    """One small demo store per backend for the whole session; tests must not write."""
    if backend not in _seeded:
        url = new_database_url(backend, tmp_path_factory.mktemp(f"seeded-{backend}"))
        engine = make_engine(url)
        upgrade(engine)
        with transaction(engine) as session:
            load_reference(session=session)
        demo.seed(engine, load_settings(), size="small", seed=7, anchor=ANCHOR)
        _seeded[backend] = engine
    return _seeded[backend]


@pytest.fixture
def seeded(backend: str, tmp_path_factory) -> Engine:
    return seeded_engine(backend, tmp_path_factory)


@pytest.fixture
def seeded_sqlite(tmp_path_factory) -> Engine:
    return seeded_engine("sqlite", tmp_path_factory)


def pytest_collection_modifyitems(session, config, items) -> None:
    """The standby tests first: `pg_basebackup` copies the whole test server, which is
    smallest before the other tests have made their databases. The browser tests last:
    Playwright's sync API keeps an event loop running in the main thread until the
    session ends, and the bus tests' `asyncio.run` cannot start under it."""

    def order(item) -> int:
        if item.get_closest_marker("standby"):
            return 0
        return 2 if item.get_closest_marker("browser") else 1

    items.sort(key=order)
