"""Explore, the overview KPIs, registered watermarked exports and leak identification,
through the Hub on a seeded store (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import func, select, text

from hub import analytics
from hub.cli import main as cli
from hub.models import AuditEntry, Export, Incident
from hub.security.errors import AccessDenied, InputError
from hub.service import Hub
from hub.settings import load_settings
from hub.store import session_factory
from tests.conftest import ANCHOR, BACKENDS
from tests.security_support import principal, seeded_copy

TZ = ZoneInfo("Asia/Shanghai")
MONTH = analytics.ExploreQuery(ANCHOR - timedelta(days=30), ANCHOR, rows=("city",),
                               columns="severity")  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def env(request, tmp_path_factory):
    engine = seeded_copy(request.param, tmp_path_factory)
    hub = Hub(engine, load_settings())
    who = {u: principal(engine, u) for u in ("analyst", "auditor", "leader", "commander.hf",
                                             "officer.hf", "approver.hf")}  # fmt: skip
    yield hub, who, engine
    engine.dispose()


def _incidents(engine) -> pd.DataFrame:
    with session_factory(engine)() as s:
        rows = s.execute(
            select(Incident.city_code, Incident.severity, Incident.ts, Incident.type_code)
            .where(Incident.classification != "secret")
            .execution_options(policy="validation")
        ).all()  # fmt: skip
    frame = pd.DataFrame(rows, columns=["city_code", "severity", "ts", "type_code"])
    frame["local"] = pd.to_datetime(frame.ts, utc=True).dt.tz_convert(TZ)
    return frame


def _last(engine) -> AuditEntry:
    with session_factory(engine)() as s:
        return s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()


# --- Explore ----------------------------------------------------------------------------------


def test_pivot_counts_match_the_records(env) -> None:
    hub, who, engine = env
    found = hub.explore(who["analyst"], MONTH)
    raw = _incidents(engine)
    raw = raw[(raw.local >= MONTH.start) & (raw.local < MONTH.end)]
    assert found.total == len(raw)
    expected = raw.groupby(["city_code", "severity"]).size()
    got = found.table.set_index(["city", "severity"])["count"]
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    assert set(found.pivot.columns) == {"city", 1, 2, 3, 4}


def test_local_hour_and_weekday_are_asia_shanghai(env) -> None:
    hub, who, engine = env
    q = analytics.ExploreQuery(MONTH.start, MONTH.end, rows=("weekday",), columns="hour")
    found = hub.explore(who["analyst"], q)
    raw = _incidents(engine)
    raw = raw[(raw.local >= q.start) & (raw.local < q.end)]
    expected = raw.groupby([raw.local.dt.day_of_week, raw.local.dt.hour]).size()
    got = found.table.set_index(["weekday", "hour"])["count"]
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    assert found.hour_of_week["count"].sum() == found.total


def test_an_empty_selection_is_an_empty_pivot(env) -> None:
    hub, who, _ = env
    far = ANCHOR - timedelta(days=900)
    found = hub.explore(who["analyst"], analytics.ExploreQuery(far, far + timedelta(days=1)))
    assert found.total == 0 and found.table.empty and found.cells.empty


@pytest.mark.parametrize("rows", [(), ("city", "type", "day"), ("city", "city"), ("ufo",)])
def test_bad_groupings_are_refused(env, rows) -> None:
    hub, who, _ = env
    with pytest.raises(InputError):
        hub.explore(who["analyst"], analytics.ExploreQuery(MONTH.start, MONTH.end, rows=rows))


@pytest.mark.parametrize("username", ["officer.hf", "commander.hf", "auditor"])
def test_only_analysts_explore(env, username) -> None:
    hub, who, _ = env
    with pytest.raises(AccessDenied):
        hub.explore(who[username], MONTH)


# --- Overview -------------------------------------------------------------------------------


def test_overview_today_against_the_week(env) -> None:
    hub, who, engine = env
    ov = hub.overview(who["leader"], now=ANCHOR)
    raw = _incidents(engine)
    today = ANCHOR.astimezone(TZ).date()
    days = raw.local.dt.date
    assert ov.province["today"] == int((days == today).sum())
    week = [today - timedelta(days=n) for n in range(1, 8)]
    same_time = raw.local.dt.time <= ANCHOR.astimezone(TZ).time()
    assert ov.province["mean_7d"] == pytest.approx((days.isin(week) & same_time).sum() / 7)
    hefei = raw[raw.city_code == "340100"].local.dt.date
    assert ov.incidents.loc["340100", "today"] == int((hefei == today).sum())
    assert ov.trend["count"].sum() == int(
        ((raw.local >= pd.Timestamp(today - timedelta(days=29), tz=TZ)) & (raw.ts < ANCHOR)).sum()
    )
    assert ov.open_cases.sum() > 0


def test_analysts_and_officers_have_no_overview(env) -> None:
    hub, who, _ = env
    for u in ("analyst", "officer.hf"):
        with pytest.raises(AccessDenied):
            hub.overview(who[u], now=ANCHOR)


# --- exports and identification ---------------------------------------------------------------


def _strip_footer_and_header(data: bytes) -> bytes:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    out = io.StringIO()
    csv.writer(out).writerows(rows[1:-1])
    return out.getvalue().encode("utf-8")


def test_export_is_registered_audited_and_identified_after_cutting(env) -> None:
    hub, who, engine = env
    q = analytics.ExploreQuery(MONTH.start, MONTH.end, rows=("city", "type"))
    f = hub.export_exploration(who["analyst"], q, "csv", now=ANCHOR)
    entry = _last(engine)
    assert (entry.action, entry.seq, entry.result_count) == ("export", f.export_id, f.rows)
    with session_factory(engine)() as s:
        row = s.get(Export, f.export_id)
    assert (row.username, row.format, row.row_count) == ("analyst", "csv", f.rows)
    assert json.loads(row.query)["rows"] == ["city", "type"]
    text_ = f.data.decode("utf-8-sig")
    assert f"编号 {f.export_id}" in text_.splitlines()[-1], "visible footer names the export"

    leaked = _strip_footer_and_header(f.data)
    match = hub.identify_export(who["auditor"], leaked, "leak.csv", now=ANCHOR)
    assert match is not None and match.export_id == f.export_id
    assert (match.username, match.same_file) == ("analyst", False)
    assert _last(engine).action == "watermark_identify"


def test_xlsx_export_survives_a_spreadsheet_resave(env) -> None:
    hub, who, _ = env
    f = hub.export_exploration(who["analyst"], MONTH, "xlsx", now=ANCHOR)
    wb = openpyxl.load_workbook(io.BytesIO(f.data))
    ws = wb.active
    ws.delete_rows(ws.max_row)  # the footer
    ws.delete_rows(1)  # the header
    out = io.BytesIO()
    wb.save(out)
    match = hub.identify_export(who["auditor"], out.getvalue(), "resaved.xlsx", now=ANCHOR)
    assert match is not None and match.export_id == f.export_id


def test_a_file_never_exported_matches_nothing(env) -> None:
    hub, who, engine = env
    plain = "城市,类型,数量\n合肥市,盗窃,12\n".encode()
    assert hub.identify_export(who["auditor"], plain, "mine.csv", now=ANCHOR) is None
    entry = _last(engine)
    assert (entry.action, entry.decision) == ("watermark_identify", "no_match")


def test_only_auditors_identify_and_empty_files_are_refused(env) -> None:
    hub, who, _ = env
    with pytest.raises(AccessDenied):
        hub.identify_export(who["approver.hf"], b"x", "x.csv", now=ANCHOR)
    with pytest.raises(InputError):
        hub.identify_export(who["auditor"], b"", "x.csv", now=ANCHOR)


def test_an_empty_selection_cannot_be_exported(env) -> None:
    hub, who, _ = env
    far = ANCHOR - timedelta(days=900)
    with pytest.raises(InputError) as err:
        hub.export_exploration(
            who["analyst"], analytics.ExploreQuery(far, far + timedelta(days=1)), "csv"
        )
    assert err.value.code == "export_empty"


def test_the_export_registry_is_append_only(env) -> None:
    hub, who, engine = env
    f = hub.export_exploration(who["analyst"], MONTH, "csv", now=ANCHOR)
    for sql in ("UPDATE exports SET username = 'someone' WHERE id = :i",
                "DELETE FROM exports WHERE id = :i"):  # fmt: skip
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql), {"i": f.export_id})
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Export).where(Export.id == f.export_id))


def test_cli_names_the_export_or_says_none_matches(env, tmp_path, capsys, monkeypatch) -> None:
    """In Chinese by default, the time in Asia/Shanghai with the zone named; English on
    request (issue 16: `hub watermark identify` answered in English and UTC)."""
    from tests.test_language import offences

    hub, who, engine = env
    monkeypatch.delenv("HUB_LANG", raising=False)
    f = hub.export_exploration(who["analyst"], MONTH, "csv", now=ANCHOR)
    leaked, other = tmp_path / "leak.csv", tmp_path / "other.csv"
    leaked.write_bytes(_strip_footer_and_header(f.data))
    other.write_text("a,b\n1,2\n")
    db = engine.url.render_as_string(hide_password=False)
    local = ANCHOR.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert cli(["watermark", "identify", str(leaked), "--db", db]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"导出 {f.export_id}：analyst（数据分析员，合肥市）"), out
    assert f"于 {local}（北京时间）导出" in out and "警情统计" in out, out
    shown = out.replace(f.filename, "")  # a file's name is shown as it is
    assert f.filename in out and offences([shown], "zh") == [], out
    assert cli(["watermark", "identify", str(other), "--db", db]) == 1
    assert "没有匹配的导出" in capsys.readouterr().err
    assert cli(["--lang", "en", "watermark", "identify", str(leaked), "--db", db]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"export {f.export_id}: analyst (Analyst, Hefei)"), out
    assert f"at {local} (Asia/Shanghai)" in out
    assert offences([out.replace(f.filename, "")], "en") == [], out
    monkeypatch.setenv("HUB_LANG", "en")
    assert cli(["watermark", "identify", str(other), "--db", db]) == 1
    assert "no export matches" in capsys.readouterr().err


# --- transparency --------------------------------------------------------------------------


def test_transparency_report_counts_this_quarters_searches(env) -> None:
    from hub.demo import PURSUIT_CASE_NO
    from hub.security.reasons import Reason

    hub, who, _ = env
    inv = principal(env[2], "investigator.hf")
    quarter = f"{ANCHOR.year}Q{(ANCHOR.month - 1) // 3 + 1}"
    before = hub.transparency(who["auditor"], "340100", quarter)
    hub.search_plate(inv, "皖AK7P35", Reason("pursuit", PURSUIT_CASE_NO))
    after = hub.transparency(who["auditor"], "340100", quarter)
    assert after.searches_by_purpose["total"].sum() == before.searches_by_purpose["total"].sum() + 1
    assert after.searches_by_purpose.loc["pursuit", "search"] >= 1
    with pytest.raises(AccessDenied):
        hub.transparency(who["approver.hf"], "341100", quarter)
    with pytest.raises(InputError):
        hub.transparency(who["auditor"], "340100", "2026Q9")


def test_overview_flags_overdue_feeds(env) -> None:
    hub, who, _ = env
    assert hub.overview(who["leader"], now=ANCHOR).stale_feeds.sum() == 0
    later = hub.overview(who["leader"], now=ANCHOR + timedelta(hours=3))
    assert len(later.stale_feeds) == 16 and (later.stale_feeds > 0).all()


def test_overview_counts_unacknowledged_and_escalated_alerts(env) -> None:
    from hub import alerts
    from hub.store import transaction

    hub, who, engine = env
    before = hub.overview(who["leader"], now=ANCHOR)
    alert_id, cities = hub.raise_alert(principal(engine, "commander.hf"), title="电信诈骗预警（测试）",
                                       level="high", lon=117.59, lat=32.24, radius_m=3000, now=ANCHOR)  # fmt: skip
    assert set(cities) >= {"340100", "341100"}
    mid = hub.overview(who["leader"], now=ANCHOR)
    assert mid.unacknowledged.sum() == before.unacknowledged.sum() + len(cities)
    with transaction(engine) as s:
        alerts.escalate_overdue(s, now=ANCHOR + timedelta(hours=2))
    after = hub.overview(who["leader"], now=ANCHOR + timedelta(hours=2))
    assert after.escalated.sum() >= len(cities) and alert_id
