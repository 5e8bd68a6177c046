"""`python -m hub users …`: every change is audited; bad input is one line, exit 1; in
Chinese by default (HUB_LANG / --lang en for English)."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select

from hub.models import AuditEntry, User
from hub.security.identity import password_matches
from hub.store import transaction
from tests.conftest import ROOT


def _hub(url: str, *args: str, lang: str | None = None) -> subprocess.CompletedProcess:
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
        env={k: v for k, v in os.environ.items() if k != "HUB_LANG"}
        | ({"HUB_LANG": lang} if lang else {}),
    )


def test_user_lifecycle_through_the_cli(store):
    url = store.url.render_as_string(hide_password=False)
    add = _hub(url, "users", "add", "wang.wei", "--role", "officer", "--city", "340100",
               "--district", "340102", "--name", "王伟", "--password", "first-pass-1")  # fmt: skip
    assert add.returncode == 0 and add.stdout.strip() == "已添加用户 wang.wei", add.stderr
    listed = _hub(url, "users", "list")
    assert (
        "wang.wei" in listed.stdout
        and "基层民警" in listed.stdout
        and "340100/340102" in listed.stdout
        and "启用" in listed.stdout
    )
    assert _hub(url, "users", "lock", "wang.wei").returncode == 0
    assert "已锁定" in _hub(url, "users", "list").stdout
    english = _hub(url, "users", "list", lang="en").stdout
    assert "Officer" in english and "locked" in english and "已锁定" not in english
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
        (("users", "add", "x", "--role", "sheriff", "--password", "long-enough-1"), "未知角色"),
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
            "区县",
        ),
        (("users", "add", "z", "--role", "analyst", "--password", "short"), "至少需要 12 个字符"),
        (("users", "lock", "nobody"), "用户不存在"),
    ]
    for args, message in cases:
        proc = _hub(url, *args)
        assert proc.returncode == 1, args
        assert "Traceback" not in proc.stderr and message in proc.stderr, (args, proc.stderr)
        assert proc.stderr.startswith("错误：") and proc.stderr.count("\n") == 1, proc.stderr
    english = _hub(url, "users", "lock", "nobody", lang="en")
    assert english.returncode == 1 and english.stderr == "error: No such user.\n"
    with transaction(store) as session:
        assert session.scalars(select(User)).all() == []
        assert session.scalars(select(AuditEntry)).all() == []
