"""The operator's command line (issue 18): `hub ingest` exit codes and dry run, and
`hub feeds list | show | rejects [--csv] | scorecard | rollback`; in Chinese by default,
codes by their names and times in Asia/Shanghai (issue 16), CSV as stored."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from hub import models as m
from hub.store import transaction
from tests.conftest import ROOT

SAMPLES = ROOT / "data" / "samples"
HEFEI = SAMPLES / "hefei_incidents_gbk.csv"


def hub(url: str, *args: str, lang: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HUB_LANG"}
    return subprocess.run([sys.executable, "-m", "hub", *args[:1], "--db", url, *args[1:]],
                          capture_output=True, text=True, cwd=ROOT, timeout=180,
                          env=env | ({"HUB_LANG": lang} if lang else {}))  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite"])
def test_ingest_exit_codes_dry_run_and_the_feeds_commands(store, tmp_path):
    url = store.url.render_as_string(hide_password=False)
    ingest = [
        "ingest",
        "--city",
        "340100",
        "--dataset",
        "incidents",
        "--spec",
        "hefei_incidents_gbk",
    ]
    dry = hub(url, *ingest, "--dry-run", str(HEFEI))
    assert dry.returncode == 0 and dry.stdout.startswith("预演，未写入任何数据，预计：批次"), (
        dry.stdout
    )
    english = hub(url, *ingest, "--dry-run", str(HEFEI), lang="en")
    assert english.stdout.startswith("dry run, nothing stored: would be batch"), english.stdout
    assert "read 240 = inserted 240 + updated 0" in english.stdout
    with transaction(store) as s:
        assert s.scalar(select(func.count()).select_from(m.Incident)) == 0
        assert s.scalar(select(func.count()).select_from(m.FeedBatch)) == 0
    first = hub(url, *ingest, str(HEFEI))
    assert first.returncode == 0 and "读取 240 = 新增 240 + 更新 0" in first.stdout, first.stdout
    lines = HEFEI.read_bytes().decode("gbk").splitlines()
    lines[1] = lines[1].replace("盗窃", "抢夺")  # a type the spec does not map: rejected
    lines[2] = lines[2].replace("诈骗", "盗窃")  # a changed type: an update
    edited = tmp_path / "edited.csv"
    edited.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    preview = hub(url, *ingest, "--dry-run", str(edited))
    assert preview.returncode == 3, preview.stderr
    assert "HF11020261120001 的类别：'诈骗' -> '盗窃'" in preview.stdout, preview.stdout
    assert "第 2 行：类别 的值“抢夺”不在代码表 警情类别 中" in preview.stdout, preview.stdout
    second = hub(url, *ingest, str(edited))
    assert second.returncode == 3 and "更新 1" in second.stdout and "拒收 1" in second.stdout
    assert "拒收原因：代码不在代码表中 1；变更字段：类别 1" in second.stdout, second.stdout
    batch = re.match(r"批次 (\d+)（", second.stdout).group(1)

    listed = hub(url, "feeds", "list")
    assert listed.returncode == 0 and "hefei_incidents_gbk" in listed.stdout
    assert "接入时间（北京时间）" in listed.stdout and " 警情 " in listed.stdout, listed.stdout
    assert "UTC" not in listed.stdout and " incidents " not in listed.stdout
    shown = hub(url, "feeds", "show", batch)
    assert "记录版本: 新增 0，更新 1" in shown.stdout, shown.stdout
    assert 'ts = "%Y/%m/%d %H:%M:%S"' in shown.stdout
    rejects = hub(url, "feeds", "rejects", batch, "--csv")
    assert rejects.stdout.splitlines()[0] == "row_number,reasons"
    assert rejects.stdout.splitlines()[1].startswith('2,"unknown_code type_code')
    assert "抢夺" not in rejects.stdout  # the operator's file holds reasons, no row values
    table = hub(url, "feeds", "rejects", batch).stdout
    assert "类别 的值“***”不在代码表 警情类别 中" in table and "抢夺" not in table, table
    card = hub(url, "feeds", "scorecard")
    assert card.returncode == 0 and "hefei_incidents_gbk" in card.stdout

    undo = hub(url, "feeds", "rollback", batch)
    assert undo.returncode == 0 and "恢复更新过的 1 行" in undo.stdout, undo.stdout
    again = hub(url, "feeds", "rollback", batch)
    assert again.returncode == 4 and f"批次 #{batch} 的状态为 已回滚" in again.stderr, again.stderr
    again = hub(url, "feeds", "rollback", batch, lang="en")
    assert again.returncode == 4 and "is rolled back: it changed nothing" in again.stderr
    with transaction(store) as s:
        actions = s.scalars(select(m.AuditEntry.action).order_by(m.AuditEntry.seq)).all()
    assert actions[-3:] == ["feed_rollback", "feed_rollback_refused", "feed_rollback_refused"]

    wrong = tmp_path / "wrong.toml"
    spec = (ROOT / "data" / "specs" / "hefei_incidents_gbk.toml").read_text(encoding="utf-8")
    wrong.write_text(spec.replace('timezone = "Asia/Shanghai"\n', ""), encoding="utf-8")
    refused = hub(url, "ingest", "--city", "340100", "--dataset", "incidents", "--spec",
                  str(wrong), str(HEFEI))  # fmt: skip
    assert refused.returncode == 1 and "timezone" in refused.stderr, refused.stderr
    assert refused.stderr.startswith("错误：映射规范有误："), refused.stderr
