"""Engine factory, sessions and schema migrations for SQLite and PostgreSQL.

One engine per process (the app caches it with `st.cache_resource`); sessions are
opened by the caller, query functions take `*, session` and never commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class StoreError(Exception):
    """The store cannot be used; the message says which and how to fix it."""


def _describe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def parse_url(raw: str) -> URL:
    """Parse a database URL, choosing the psycopg 3 driver for plain `postgresql://`.

    Raises
    ------
    StoreError
        When the URL is malformed or names a database kind the hub does not support.
    """
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StoreError(
            f"HUB_DATABASE_URL is malformed: {raw!r}. Use sqlite:///path/to/hub.db "
            "or postgresql://user@host:5432/dbname"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {url.get_backend_name()!r} in HUB_DATABASE_URL: "
            "the hub runs on SQLite or PostgreSQL"
        )
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(raw_url: str, *, check: bool = True) -> Engine:
    """Build the engine for a database URL and, by default, prove it answers.

    Parameters
    ----------
    raw_url
        `sqlite:///file.db` (created with its folder if absent) or a PostgreSQL URL.
    check
        Connect once now so that a wrong URL fails here with a clear message.

    Raises
    ------
    StoreError
        Malformed URL, missing driver or unreachable server.
    """
    url = parse_url(raw_url)
    kwargs: dict[str, object] = {}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    try:
        engine = create_engine(url, **kwargs)
    except NoSuchModuleError as exc:
        raise StoreError(f"no driver for {_describe(url)}: {exc}") from None
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if check:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            engine.dispose()
            raise StoreError(
                f"cannot reach the store at {_describe(url)}: {reason}. "
                "Check that the server runs and HUB_DATABASE_URL is right."
            ) from None
    return engine


@lru_cache(maxsize=16)
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """One sessionmaker per engine (and so per process)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on error."""
    with session_factory(engine)() as session, session.begin():
        yield session


# --- migrations -----------------------------------------------------------------------


def _alembic_config(connection) -> Config:
    # Alembic is imported where the schema is read or changed, not by every page.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; an older store is upgraded, never recreated."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(None))
    head = script.get_current_head()
    assert head is not None, "no migrations found"
    return head


def revisions() -> list[str]:
    """Every revision id, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(None))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
