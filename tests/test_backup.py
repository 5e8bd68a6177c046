"""docs/deploy.md's backup procedure, run for real: pg_dump (custom format) of a store with
activity, pg_restore into an empty database, `hub audit verify` on the copy, and the same
row count in every table."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest
from sqlalchemy import func, select, text

from hub.cli import main as cli
from hub.models import Base
from hub.security.reasons import Reason
from hub.service import Hub
from hub.settings import load_settings
from hub.store import make_engine, session_factory
from tests import conftest
from tests.security_support import principal, seeded_copy

pytestmark = pytest.mark.skipif(
    shutil.which("pg_dump") is None, reason="pg_dump comes with PostgreSQL's client tools"
)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _counts(engine) -> dict[str, int]:
    with session_factory(engine)() as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t).execution_options(policy="validation"))
            for t in Base.metadata.sorted_tables
        }  # fmt: skip


def test_dump_restore_verify(tmp_path_factory, tmp_path) -> None:
    from hub.demo import PURSUIT_CASE_NO, PURSUIT_PLATE

    engine = seeded_copy("postgresql", tmp_path_factory)
    hub = Hub(engine, load_settings())
    hub.search_plate(principal(engine, "investigator.hf"), PURSUIT_PLATE,
                     Reason("pursuit", PURSUIT_CASE_NO))  # fmt: skip
    source = engine.url.render_as_string(hide_password=False)
    dump = tmp_path / "hub.dump"
    subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", _libpq(source)],
                   check=True)  # fmt: skip

    name = f"hub_restore_{uuid.uuid4().hex[:10]}"
    admin = conftest._admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    conftest._created.append(name)
    target = conftest.PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    subprocess.run(
        ["pg_restore", "--no-owner", f"--dbname={_libpq(target)}", str(dump)], check=True
    )

    assert cli(["audit", "verify", "--db", target]) == 0
    restored = make_engine(target)
    try:
        assert _counts(restored) == _counts(engine)
        with restored.begin() as conn, pytest.raises(Exception, match="append-only"):
            conn.execute(text("DELETE FROM audit_log"))  # the triggers came back too
    finally:
        restored.dispose()
        engine.dispose()
