"""The store on both backends: migrations, model/migration agreement, URL errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from hub import partitions
from hub.models import Base, City
from hub.reference import load_reference
from hub.store import (
    StoreError,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    revisions,
    transaction,
    upgrade,
)
from tests.conftest import ROOT


def test_migrations_round_trip(empty_url):
    engine = make_engine(empty_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert {"incidents", "sightings", "persons", "users"} <= set(inspect(engine).get_table_names())
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_models_and_migrations_agree(store):
    with store.connect() as conn:
        # Day partitions (PostgreSQL) are the parent table's storage, not schema tables.
        context = MigrationContext.configure(
            conn, opts={"include_object": partitions.include_object}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


@pytest.mark.parametrize("start", revisions())
def test_older_store_is_upgraded_not_recreated(empty_url, start):
    engine = make_engine(empty_url)
    upgrade(engine, start)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cities (adcode, name, name_en, lon, lat, geometry) "
                "VALUES ('340100', '合肥市', 'Hefei', 117.2, 31.8, '{}')"
            )
        )
    upgrade(engine)
    with transaction(engine) as session:
        assert session.scalar(select(City.name).where(City.adcode == "340100")) == "合肥市"
    engine.dispose()


def test_reference_data_loaded_and_idempotent(store):
    with transaction(store) as session:
        counts = load_reference(session=session)
    assert counts["cities"] == 16
    assert counts["districts"] == 104
    with store.connect() as conn:
        names = conn.execute(text("SELECT name FROM cities ORDER BY adcode")).scalars().all()
        n_codes = conn.execute(text("SELECT COUNT(*) FROM code_values")).scalar_one()
    assert names[0] == "合肥市" and len(names) == 16
    assert n_codes == counts["codes"]


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_foreign_keys_enforced(store):
    with pytest.raises(Exception, match="(?i)foreign key"), store.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO districts (adcode, city_code, name, lon, lat, geometry) "
                "VALUES ('999901', '999900', 'x', 0, 0, '{}')"
            )
        )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nonsense", "malformed"),
        ("mysql://root@127.0.0.1/test", "unsupported database"),
        ("postgresql://postgres@127.0.0.1:1/test", "cannot reach the store"),
    ],
)
def test_bad_database_url_is_one_clear_message(url, expected):
    with pytest.raises(StoreError, match=expected):
        make_engine(url)


def test_cli_bad_url_prints_one_line_and_exits_nonzero():
    proc = subprocess.run(
        [sys.executable, "-m", "hub", "init", "--db", "postgresql://postgres@127.0.0.1:1/x"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the store" in lines[0]
    assert "HUB_DATABASE_URL" in lines[0]


@pytest.mark.parametrize("command", ["init", "demo", "bench", "users", "audit"])
def test_every_command_has_help_and_db_option(command):
    proc = subprocess.run(
        [sys.executable, "-m", "hub", command, "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "--db URL" in proc.stdout
