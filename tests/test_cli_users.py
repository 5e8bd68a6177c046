"""`python -m hub users …`: every change is audited; bad input is one line, exit 1."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import select

from hub.models import AuditEntry, User
from hub.security.identity import password_matches
from hub.store import transaction
from tests.conftest import ROOT


def _hub(url: str, *args: str) -> subprocess.CompletedProcess:
    """Run the CLI; `--password X` is given as one line on standard input, as
    `--password-stdin` reads it (a password is never an argument)."""
    args_, password = list(args), None
    if "--password" in args_:
        i = args_.index("--password")
        password = args_.pop(i + 1)
        args_[i] = "--password-stdin"
    return subprocess.run(
        [sys.executable, "-m", "hub", *args_, "--db", url],
        input=None if password is None else password + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_user_lifecycle_through_the_cli(store):
    url = store.url.render_as_string(hide_password=False)
    add = _hub(url, "users", "add", "wang.wei", "--role", "officer", "--city", "340100",
               "--district", "340102", "--name", "王伟", "--password", "first-pass-1")  # fmt: skip
    assert add.returncode == 0, add.stderr
    listed = _hub(url, "users", "list")
    assert (
        "wang.wei" in listed.stdout
        and "officer" in listed.stdout
        and "340100/340102" in listed.stdout
    )
    assert _hub(url, "users", "lock", "wang.wei").returncode == 0
    assert "locked" in _hub(url, "users", "list").stdout
    assert _hub(url, "users", "unlock", "wang.wei").returncode == 0
    assert (
        _hub(url, "users", "reset-password", "wang.wei", "--password", "second-pass-2").returncode
        == 0
    )
    assert (
        _hub(
            url, "users", "set-role", "wang.wei", "--role", "investigator", "--city", "340100"
        ).returncode
        == 0
    )
    with transaction(store) as session:
        user = session.scalar(select(User).where(User.username == "wang.wei"))
        assert user.role == "investigator" and user.active and user.district_code is None
        assert password_matches(user.password_hash, "second-pass-2")
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions == [
        "user_add",
        "user_lock",
        "user_unlock",
        "user_reset_password",
        "user_set_role",
    ]


def test_bad_user_input_is_one_line(store):
    url = store.url.render_as_string(hide_password=False)
    cases = [
        (("users", "add", "x", "--role", "sheriff", "--password", "long-enough-1"), "unknown role"),
        (
            (
                "users",
                "add",
                "y",
                "--role",
                "officer",
                "--city",
                "340100",
                "--password",
                "long-enough-1",
            ),
            "district",
        ),
        (("users", "add", "z", "--role", "analyst", "--password", "short"), "12 characters"),
        (("users", "lock", "nobody"), "no user"),
    ]
    for args, message in cases:
        proc = _hub(url, *args)
        assert proc.returncode == 1, args
        assert "Traceback" not in proc.stderr and message in proc.stderr, (args, proc.stderr)
    with transaction(store) as session:
        assert session.scalars(select(User)).all() == []
        assert session.scalars(select(AuditEntry)).all() == []
