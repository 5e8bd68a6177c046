"""Helpers shared by the security-kernel tests (test_policy, test_access, test_audit,
test_payloads): writable copies of a seeded demo store, principals by username, and a
clock anchored on the demo's `ANCHOR`.

Seeding the small demo province takes seconds and is done once per backend (the
session's `seeded` store); each test module that writes gets a copy of its own: a file
copy on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select, text

from hub.models import User
from hub.reference import load_reference
from hub.security.identity import principal_of
from hub.security.policy import Principal
from hub.store import make_engine, transaction, upgrade
from tests import conftest
from tests.conftest import ANCHOR, PG_ADMIN_URL, new_database_url

_templates: dict[str, str] = {}


def _template(backend: str, tmp_path_factory) -> str:
    """URL of the session's seeded store (`tests.conftest.seeded_engine`), with nobody
    connected to it, as the source of copies. Copying is not writing: the shared store
    stays as the other tests expect it."""
    if backend not in _templates:
        engine = conftest.seeded_engine(backend, tmp_path_factory)
        if backend == "sqlite":
            with engine.connect() as conn:
                conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        _templates[backend] = engine.url.render_as_string(hide_password=False)
    if backend == "postgresql":
        conftest.seeded_engine(backend, tmp_path_factory).dispose()  # no open connections
    return _templates[backend]


def seeded_copy(backend: str, tmp_path_factory) -> Engine:
    """A writable copy of the small demo province (with DEMO_USERS) of its own."""
    source = _template(backend, tmp_path_factory)
    if backend == "sqlite":
        target = tmp_path_factory.mktemp("copy") / f"hub-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(source.removeprefix("sqlite:///"), target)
        return make_engine(f"sqlite:///{target}")
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    admin = conftest._admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source.rsplit("/", 1)[1]}"'))
    admin.dispose()
    conftest._created.append(name)
    return make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)


def empty_store(backend: str, tmp_path: Path) -> Engine:
    """A migrated store with reference data and no records (like the `store` fixture)."""
    engine = make_engine(new_database_url(backend, tmp_path))
    upgrade(engine)
    with transaction(engine) as session:
        load_reference(session=session)
    return engine


def principal(engine: Engine, username: str) -> Principal:
    with transaction(engine) as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None, f"no user {username!r} in the store"
        return principal_of(user)


def at(minutes: float = 0, *, day: int = 0) -> datetime:
    """A moment relative to the demo anchor (16:00 Asia/Shanghai, inside duty hours)."""
    return ANCHOR + timedelta(days=day, minutes=minutes)
