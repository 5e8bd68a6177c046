"""The benchmark harness end to end on a small store. Figures are never asserted."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

import hub.bench as hb
from hub.cli import main
from hub.store import StoreError


def _table(out: str) -> tuple[str, list[list[str]]]:
    """Header line and the split data rows of the printed table."""
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert set(lines[1].replace(" ", "")) == {"-"}, "second line is the rule under the header"
    return lines[0], [line.split() for line in lines[2:]]


def _check_header(header: str) -> None:
    for name in hb.HEADER:
        assert name in header


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small bench store seeded by a first `bulk_load` run; that run's output."""
    tmp = tmp_path_factory.mktemp("bench")
    url = f"sqlite:///{tmp / 'bench.db'}"
    results = tmp / "first.json"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = hb.run_bench(db=url, only="bulk_load", size="small", results_path=results)
    return {"url": url, "tmp": tmp, "code": code, "out": out.getvalue(), "results": results}


def test_bulk_load_seeds_the_store_and_reports(store):
    assert store["code"] == 0
    header, rows = _table(store["out"])
    _check_header(header)
    assert rows and all(r[0] == "bulk_load" for r in rows)
    figures = [" ".join(r) for r in rows]
    assert any("bulk_insert" in f and "to_sql" in f for f in figures)
    assert any("demo.seed" in f for f in figures), (
        "this run built the store: its seeding is reported"
    )
    assert all(r[-1] != "error" for r in rows)

    payload = json.loads(store["results"].read_text(encoding="utf-8"))
    assert payload["backend"] == "sqlite"
    assert payload["size"] == "small"
    assert payload["cores"] >= 1
    assert "date" in payload
    main_row = payload["rows"][0]
    assert main_row["job"] == "bulk_load"
    assert main_row["met"] in ("yes", "no")
    assert main_row["value"] > 0 and main_row["naive_value"] > 0 and main_row["ratio"] > 0


def test_plate_lookup_through_the_cli(store, monkeypatch, capsys):
    results = store["tmp"] / "cli.json"
    monkeypatch.setattr(hb, "RESULTS_PATH", results)
    code = main(["bench", "--size", "small", "--db", store["url"], "--only", "plate_lookup"])
    out = capsys.readouterr().out
    assert code == 0
    header, rows = _table(out)
    _check_header(header)
    assert [r[0] for r in rows] == ["plate_lookup", "plate_lookup"]  # p50 and p95
    assert "demo.seed" not in out, "the store already had records: nothing was seeded"

    payload = json.loads(results.read_text(encoding="utf-8"))
    assert [r["job"] for r in payload["rows"]] == ["plate_lookup", "plate_lookup"]
    p95 = payload["rows"][1]
    assert p95["goal"] == 5.0 and p95["higher_is_better"] is False
    assert p95["met"] in ("yes", "no")
    assert p95["naive_value"] > 0


def test_a_failing_job_is_an_error_row_and_the_others_run(store, monkeypatch, capsys):
    hb.load_jobs()

    def broken(ctx):
        raise RuntimeError("boom in the bulk loader")

    monkeypatch.setitem(hb.JOBS, "bulk_load", broken)
    results = store["tmp"] / "failing.json"
    # "lo" selects bulk_load and plate_lookup, not point_assignment.
    code = hb.run_bench(db=store["url"], only="lo", size="small", results_path=results)
    out = capsys.readouterr().out
    assert code == 0
    _, rows = _table(out)
    by_job = {}
    for r in rows:
        by_job.setdefault(r[0], []).append(r)
    assert set(by_job) == {"bulk_load", "plate_lookup"}
    assert "error" in by_job["bulk_load"][0]
    assert "boom in the bulk loader" in out
    assert all("error" not in r for r in by_job["plate_lookup"])

    payload = json.loads(results.read_text(encoding="utf-8"))
    failed = [r for r in payload["rows"] if r["job"] == "bulk_load"]
    assert failed[0]["met"] == "error" and "boom" in failed[0]["error"]


def test_no_matching_job_is_a_usage_error(store, capsys):
    assert (
        hb.run_bench(
            db=store["url"], only="no-such-job", size="small", results_path=store["tmp"] / "x.json"
        )
        == 1
    )
    assert "no benchmark job matches" in capsys.readouterr().err


def test_an_unreachable_store_raises_store_error(tmp_path):
    with pytest.raises(StoreError):
        hb.run_bench(
            db="postgresql://nobody@127.0.0.1:1/nothing",
            only="plate_lookup",
            size="small",
            results_path=tmp_path / "r.json",
        )


def test_ratio_and_goal_logic():
    rate = hb.Result(job="j", figure="f", value=300.0, naive_value=100.0, goal=250.0)
    assert rate.ratio == pytest.approx(3.0) and rate.met == "yes"
    latency = hb.Result(
        job="j", figure="f", value=2.0, naive_value=50.0, goal=1.0, higher_is_better=False
    )
    assert latency.ratio == pytest.approx(25.0) and latency.met == "no"
    assert hb.Result(job="j", figure="f", error="x").met == "error"
    assert hb.Result(job="j", figure="f", value=1.0).met == "-"
