"""A real streaming standby of a PostgreSQL server, for the replica tests and `replica_reads`.

`pg_basebackup -R` copies the running test server into a temporary data directory and
writes the standby's connection to it; `pg_ctl` starts that copy on a free loopback
port as a hot standby. The server's own pg_hba.conf gains the one line that lets a
replication connection in from 127.0.0.1 (the first time only). Everything runs as the
`postgres` operating-system user, as PostgreSQL requires.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

REPLICATION_LINE = "host replication all 127.0.0.1/32 trust"


def _bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found under /usr/lib/postgresql (install postgresql)")
    return str(found[-1])


def _as_postgres(args: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def allow_replication(admin_url: str) -> str:
    """Make sure the server accepts replication connections from 127.0.0.1; its hba file."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        hba = conn.execute(text("SHOW hba_file")).scalar_one()
        lines = Path(hba).read_text().splitlines()
        if REPLICATION_LINE not in (line.strip() for line in lines):
            with open(hba, "a") as fh:
                fh.write(f"\n# added by the hub's replica tests\n{REPLICATION_LINE}\n")
            conn.execute(text("SELECT pg_reload_conf()"))
    admin.dispose()
    return hba


@dataclass
class Standby:
    port: int
    datadir: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self, mode: str = "fast") -> None:
        _as_postgres([_bin("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])

    def start(self) -> None:
        log = self.datadir / "standby.log"
        try:
            _as_postgres([_bin("pg_ctl"), "-D", str(self.datadir), "-l", str(log),
                          "-w", "-t", "60", "start"])  # fmt: skip
        except subprocess.CalledProcessError:
            tail = log.read_text()[-2000:] if log.exists() else "(no log)"
            raise RuntimeError(f"the standby did not start:\n{tail}") from None


@contextmanager
def standby_of(admin_url: str) -> Iterator[Standby]:
    """A hot standby of the server behind `admin_url`, removed afterwards."""
    hba = allow_replication(admin_url)
    root = Path(tempfile.mkdtemp(prefix="hub-standby-"))
    datadir = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    standby = Standby(port, datadir)
    started = False
    # A replication slot keeps the primary's WAL until the standby has it: without one, a
    # busy test server recycles segments while the copy is still being taken.
    slot = f"hub_test_standby_{port}"
    _drop_stale_slots(admin_url)
    try:
        _as_postgres([_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", "5432", "-U", "postgres",
                      "-D", str(datadir), "-R", "-X", "stream", "-c", "fast", "-C", "-S", slot],
                     timeout=600)  # fmt: skip
        # The Debian server keeps its configuration outside the data directory, so the
        # copy gets a small one of its own (the connection to the primary is in
        # postgresql.auto.conf, written by -R).
        ident = Path(hba).with_name("pg_ident.conf")
        conf = datadir / "postgresql.conf"
        conf.write_text(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
            f"hba_file = '{hba}'\nident_file = '{ident}'\nhot_standby = on\n"
            "max_connections = 200\nshared_buffers = 64MB\n"
        )
        if os.geteuid() == 0:
            shutil.chown(conf, "postgres", "postgres")
        standby.start()
        started = True
        deadline = time.monotonic() + 60
        probe = create_engine(standby.url("postgres"))
        while True:
            try:
                with probe.connect() as conn:
                    if conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one():
                        break
            except Exception:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)
        probe.dispose()
        yield standby
    finally:
        if started:
            with suppress(subprocess.CalledProcessError):
                standby.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
        _drop_stale_slots(admin_url)


def _drop_stale_slots(admin_url: str) -> None:
    """Drop the slots of standbys that are gone: a forgotten slot keeps WAL for ever."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name LIKE 'hub_test_standby_%' AND NOT active"
        ))  # fmt: skip
    admin.dispose()
