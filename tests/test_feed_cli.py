"""The operator's command line (issue 18): `hub ingest` exit codes and dry run, and
`hub feeds list | show | rejects [--csv] | scorecard | rollback`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select

from hub import models as m
from hub.store import transaction
from tests.conftest import ROOT

SAMPLES = ROOT / "data" / "samples"
HEFEI = SAMPLES / "hefei_incidents_gbk.csv"


def hub(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub", *args[:1], "--db", url, *args[1:]],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)  # fmt: skip


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
    assert dry.returncode == 0 and dry.stdout.startswith("dry run, nothing stored: would be batch")
    with transaction(store) as s:
        assert s.scalar(select(func.count()).select_from(m.Incident)) == 0
        assert s.scalar(select(func.count()).select_from(m.FeedBatch)) == 0
    first = hub(url, *ingest, str(HEFEI))
    assert first.returncode == 0 and "inserted 240" in first.stdout
    lines = HEFEI.read_bytes().decode("gbk").splitlines()
    lines[1] = lines[1].replace("盗窃", "抢夺")  # a type the spec does not map: rejected
    lines[2] = lines[2].replace("诈骗", "盗窃")  # a changed type: an update
    edited = tmp_path / "edited.csv"
    edited.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    preview = hub(url, *ingest, "--dry-run", str(edited))
    assert preview.returncode == 3, preview.stderr
    assert "type_code of HF11020261120001: 'fraud' -> 'theft'" in preview.stdout
    assert "line 2: unknown_code type_code" in preview.stdout
    second = hub(url, *ingest, str(edited))
    assert second.returncode == 3 and "updated 1" in second.stdout and "rejected 1" in second.stdout
    batch = second.stdout.split()[1]

    listed = hub(url, "feeds", "list")
    assert listed.returncode == 0 and "hefei_incidents_gbk" in listed.stdout
    shown = hub(url, "feeds", "show", batch)
    assert '"update": 1' in shown.stdout and 'ts = "%Y/%m/%d %H:%M:%S"' in shown.stdout
    rejects = hub(url, "feeds", "rejects", batch, "--csv")
    assert rejects.stdout.splitlines()[0] == "row_number,reasons"
    assert rejects.stdout.splitlines()[1].startswith('2,"unknown_code type_code')
    assert "抢夺" not in rejects.stdout  # the operator's file holds reasons, no row values
    card = hub(url, "feeds", "scorecard")
    assert card.returncode == 0 and "hefei_incidents_gbk" in card.stdout

    undo = hub(url, "feeds", "rollback", batch)
    assert undo.returncode == 0 and "restored 1 updated rows" in undo.stdout
    again = hub(url, "feeds", "rollback", batch)
    assert again.returncode == 4 and "[nothing_to_roll_back]" in again.stderr
    with transaction(store) as s:
        actions = s.scalars(select(m.AuditEntry.action).order_by(m.AuditEntry.seq)).all()
    assert actions[-2:] == ["feed_rollback", "feed_rollback_refused"]

    wrong = tmp_path / "wrong.toml"
    spec = (ROOT / "data" / "specs" / "hefei_incidents_gbk.toml").read_text(encoding="utf-8")
    wrong.write_text(spec.replace('timezone = "Asia/Shanghai"\n', ""), encoding="utf-8")
    refused = hub(url, "ingest", "--city", "340100", "--dataset", "incidents", "--spec",
                  str(wrong), str(HEFEI))  # fmt: skip
    assert refused.returncode == 1 and "no timezone" in refused.stderr
