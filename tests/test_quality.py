"""Scorecards, the published standard, retention and the Hub's feed methods by role."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from hub import models as m
from hub.ingest.datasets import DATASETS
from hub.ingest.pipeline import ingest_file
from hub.ingest.spec import load_spec
from hub.retention import apply_retention
from hub.security.errors import AccessDenied
from hub.service import Hub
from hub.settings import load_settings
from hub.standard import standard
from hub.store import transaction
from tests.conftest import ROOT
from tests.security_support import principal, seeded_copy

SAMPLES = ROOT / "data" / "samples"


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    hub = Hub(engine, load_settings())
    for _ in range(2):
        ingest_file(engine, SAMPLES / "hefei_incidents_gbk.csv", city_code="340100",
                    spec=load_spec("hefei_incidents_gbk"), cipher=hub.cipher)  # fmt: skip
    return hub


def test_scorecard_per_feed(fed):
    card = fed.quality_scorecard(principal(fed.engine, "province.approver"))
    rows = card[(card.city_code == "340100") & (card.dataset == "incidents")]
    assert len(rows) >= 2  # one feed per spec: the demo's and the sample's, not mixed
    row = rows[rows.spec_name == "hefei_incidents_gbk"].iloc[0]
    assert row.validity == 1.0 and row.duplicate_share == 0.0 and row.findings == 0
    # Completeness over the fields the spec maps (a feed without reported_at is whole).
    assert row.completeness == 1.0 and row.lag_p50_h > 0 and row.freshness_h < 1
    assert row.timely_share is not None and 0 <= row.timely_share <= 1
    assert row.batches == 2  # two arrivals of this feed


def test_rejects_are_masked_and_audited(fed, tmp_path):
    lines = (SAMPLES / "hefei_incidents_gbk.csv").read_bytes().decode("gbk").splitlines()
    lines[1] = (
        lines[1].replace("（合成）报警人称", "电话13812345678，报警人称").replace("一般", "未知")
    )
    path = tmp_path / "bad.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    report = ingest_file(fed.engine, path, city_code="340100", spec=load_spec("hefei_incidents_gbk"),
                         cipher=fed.cipher)  # fmt: skip
    admin = principal(fed.engine, "admin")
    prov = principal(fed.engine, "province.approver")
    masked = fed.feed_rejects(prov, report.batch_id).raw.iloc[0]
    assert "13812345678" not in masked and "138****5678" in masked
    assert "raw" not in fed.feed_rejects(admin, report.batch_id)  # the admin opens no records
    csv = fed.reject_file(admin, report.batch_id).decode("utf-8-sig")
    assert "unknown_code severity" in csv and "13812345678" not in csv
    with transaction(fed.engine) as s:
        last = s.scalars(select(m.AuditEntry).order_by(m.AuditEntry.seq.desc())).first()
    assert (last.action, last.dataset, last.result_count) == ("export", "feed_rejects", 1)


def test_other_roles_are_refused(fed):
    officer = principal(fed.engine, "officer.hf")
    with pytest.raises(AccessDenied):
        fed.quality_scorecard(officer)
    with pytest.raises(AccessDenied):
        fed.ingest_feed(officer, city="340100", spec_name="hefei_incidents_gbk",
                        filename="x.csv", data=b"x")  # fmt: skip


def test_standard_covers_every_entity_and_code_table():
    std = standard()
    assert set(std["entities"]) >= {mdl.__tablename__ for mdl in m.RECORD_MODELS}
    inc = std["entities"]["incidents"]
    assert inc["properties"]["severity"]["enum"] == [1, 2, 3, 4]
    assert "ts" in inc["required"] and inc["x-natural-key"] == ["city_code", "source_id"]
    # Fields the hub fills itself (cells, the time it was stored) are never asked of a city.
    assert not {"h3_r7", "h3_r8", "reported_at"} & set(inc["required"])
    for name, entity in std["entities"].items():
        fed = DATASETS.get(name)
        if fed is not None:
            assert set(entity["required"]) <= {*fed.required, "source_id"}, name
    assert "id_enc" not in std["entities"]["persons"]["properties"]
    assert std["entities"]["persons"]["properties"]["id_number"]["x-feed-only"]
    assert {"incident_type", "case_type", "classification"} <= set(std["code_tables"])


def test_standard_export_cli(tmp_path):
    out = tmp_path / "std.json"
    proc = subprocess.run([sys.executable, "-m", "hub", "standard", "export", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert proc.returncode == 0
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(standard()))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_retention_keeps_records_of_open_cases(backend, tmp_path_factory):
    engine = seeded_copy(backend, tmp_path_factory)
    now = datetime.now(UTC) + timedelta(days=400)
    with transaction(engine) as s:
        open_case = s.scalars(select(m.Case).where(m.Case.status == "open")).first()
        linked = s.scalars(select(m.Incident).limit(1)).first()
        linked.case_id = open_case.id
        total = s.query(m.Incident).count()
    with transaction(engine) as s:
        purges = {p.dataset: p for p in apply_retention(s, {"incidents": 30}, now=now)}
    assert purges["incidents"].purged == total - 1 and purges["incidents"].kept_for_open_cases == 1
    with transaction(engine) as s:
        assert [i.id for i in s.scalars(select(m.Incident))] == [linked.id]
        entry = s.scalars(select(m.AuditEntry).where(m.AuditEntry.action == "retention",
                                                     m.AuditEntry.dataset == "incidents")).one()  # fmt: skip
        assert entry.result_count == total - 1


def test_retention_setting_from_the_environment():
    assert load_settings({"HUB_RETENTION_SIGHTINGS": "30"}).retention_days["sightings"] == 30
    with pytest.raises(ValueError, match="HUB_RETENTION_WEATHER"):
        load_settings({"HUB_RETENTION_WEATHER": "3"})


def test_every_dataset_and_batch_status_has_a_label():
    from hub.ingest.datasets import DATASETS
    from ui.i18n import LANGUAGES, catalogue

    keys = [f"dataset_{d}" for d in DATASETS]
    keys += [f"feed_status_{s}" for s in ("running", "done", "unchanged", "failed")]
    for key in keys:
        assert set(catalogue()[key]) == set(LANGUAGES), key


def test_every_shipped_spec_is_named_and_described_in_both_languages():
    from hub.ingest.spec import shipped_specs
    from ui.i18n import LANGUAGES, catalogue

    for name in shipped_specs():
        for key in (f"fspec_{name}", f"fspec_{name}_about"):
            assert set(catalogue()[key]) == set(LANGUAGES), key


def test_trend_chart_is_on_the_province_clock():
    from ui.feeds import trend_chart

    batches = pd.DataFrame({"started_at": pd.to_datetime(["2026-11-22T04:51:00Z"], utc=True),
                            "completeness": [0.9], "validity": [1.0], "duplicate_share": [0.0]})  # fmt: skip
    chart = trend_chart(batches)
    assert set(chart.data["when"]) == {pd.Timestamp("2026-11-22 12:51")}  # Beijing wall clock
    assert set(chart.data["shown"]) == {"2026-11-22 12:51"}
    spec = chart.to_dict()["encoding"]["x"]
    assert spec["scale"]["type"] == "utc"  # drawn as written, whatever the browser's zone


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_standard_tab_names_fields_in_words_and_gives_machine_text_as_code(fed, monkeypatch, lang):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HUB_DATABASE_URL", fed.engine.url.render_as_string(hide_password=False))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "pages/quality.py"), default_timeout=90)
    at.session_state["lang"] = lang
    at.session_state["principal"] = principal(fed.engine, "province.approver")
    at = at.run()
    st.cache_resource.clear()
    assert not at.exception, at.exception
    zh = lang == "zh"
    col = lambda z, e: z if zh else e  # noqa: E731
    fields = next(d.value for d in at.dataframe if col("类型", "Type") in d.value.columns)
    rows = fields.set_index(col("字段", "Field"))
    ts = rows.loc[col("发生时间", "When it happened")]
    assert ts[col("类型", "Type")] == col("日期时间（带时区）", "Date and time (with zone)")
    assert ts[col("必填", "Required")] == "✓"
    cell = rows.loc[col("六边形网格编号（7 级）", "Hexagon cell (resolution 7)")]
    assert cell[col("必填", "Required")] == ""  # the hub computes it; a feed never sends it
    assert cell[col("取值 / 代码表", "Values / code table")] == col(
        "平台生成，地市不发送", "Set by the hub; not sent"
    )
    machine = "\n".join(c.value for c in at.code)
    assert (
        '"ts": "2026-11-30T08:30:00+08:00"' in machine
        and col("// 发生时间", "// When it happened") in machine
    )
    assert '"type_code": "theft"' in machine
    assert '"public"' in machine and col("# 公开 · Public", "# Public · 公开") in machine
    assert "python -m hub standard export" in machine
