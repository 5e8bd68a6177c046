"""Guardrails (issue 18): each plausible spec mistake, built from the shipped samples, is
refused before it stores anything, with the message an operator needs."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from geo.coords import convert
from hub import models as m
from hub.ingest.pipeline import ingest
from hub.ingest.spec import FeedError, load_spec, parse_spec
from hub.security.crypto import FieldCipher
from hub.settings import load_settings
from hub.store import transaction
from tests.conftest import ROOT
from tests.security_support import seeded_copy

SAMPLES = ROOT / "data" / "samples"
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
CIPHER = FieldCipher.from_settings(load_settings())
HEFEI = load_spec("hefei_incidents_gbk")
STANDARD = load_spec("standard_incidents")


def feed(engine, data: bytes, spec, city="340100", **kw):
    return ingest(engine, city_code=city, spec=spec, source=io.BytesIO(data),
                  source_name="feed.csv", cipher=CIPHER, now=NOW, **kw)  # fmt: skip


def refused(engine, data: bytes, spec, city="340100") -> FeedError:
    before = records(engine)
    with pytest.raises(FeedError) as exc:
        feed(engine, data, spec, city)
    assert records(engine) == before  # nothing stored
    return exc.value


def records(engine) -> tuple:
    with transaction(engine) as s:
        return (s.scalar(select(func.count()).select_from(m.Incident)),
                s.scalar(select(func.max(m.Incident.updated_at))))  # fmt: skip


def respec(spec, old: str, new: str, *, strict: bool = True):
    assert old in spec.text
    return parse_spec(spec.text.replace(old, new), strict=strict)


def hefei() -> pd.DataFrame:
    return pd.read_csv(SAMPLES / "hefei_incidents_gbk.csv", encoding="gbk", dtype=str,
                       keep_default_na=False)  # fmt: skip


def gbk(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("gbk")


# --- the spec check ---------------------------------------------------------------------


def test_a_format_mixing_24_hour_and_am_pm_is_refused():
    with pytest.raises(FeedError) as exc:
        respec(HEFEI, 'ts = "%Y/%m/%d %H:%M:%S"', 'ts = "%Y/%m/%d %H:%M:%S %p"')
    assert "mixes %H (24-hour) with %p" in str(exc.value) and exc.value.code == "bad_spec"
    with pytest.raises(FeedError, match="%I .12-hour. without %p"):
        respec(HEFEI, 'ts = "%Y/%m/%d %H:%M:%S"', 'ts = "%Y/%m/%d %I:%M:%S"')


def test_a_spec_without_time_zone_or_coordinate_system_is_refused():
    with pytest.raises(FeedError, match="no timezone: the times of ts need one"):
        respec(HEFEI, 'timezone = "Asia/Shanghai"\n', "")
    with pytest.raises(FeedError, match="no crs"):
        respec(HEFEI, 'crs = "gcj02"\n', "")
    # Specs kept with old batches still read (lineage, reject masks).
    assert respec(HEFEI, 'timezone = "Asia/Shanghai"\n', "", strict=False).timezone


def test_unknown_names_and_codes_list_the_valid_ones():
    with pytest.raises(FeedError, match="its fields: .*type_code.*summary"):
        respec(HEFEI, 'summary = "简要警情"', 'narrative = "简要警情"')
    with pytest.raises(FeedError, match="valid: open, handling, closed"):
        respec(HEFEI, '"处置中" = "handling"', '"处置中" = "in_progress"')


# --- guardrails against the stored records ----------------------------------------------


def test_twelve_hour_flip_of_stored_times_fails(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    feed(engine, (SAMPLES / "hefei_incidents_gbk.csv").read_bytes(), HEFEI)
    wrong = hefei()  # afternoons exported on a 12-hour clock without the marker
    ts = pd.to_datetime(wrong["报警时间"], format="%Y/%m/%d %H:%M:%S")
    pm = ts.dt.hour >= 12
    wrong.loc[pm, "报警时间"] = (ts[pm] - pd.Timedelta(hours=12)).dt.strftime("%Y/%m/%d %H:%M:%S")
    err = refused(engine, gbk(wrong), HEFEI)
    assert err.code == "time_shift_12h"
    assert f"{int(pm.sum())} of {int(pm.sum())} changed ts values move by exactly 12 hours" in str(
        err
    )


def test_a_forgotten_time_zone_moving_stored_times_fails(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    naive = (SAMPLES / "standard_incidents.csv").read_text(encoding="utf-8").replace("+00:00", "")
    feed(engine, naive.encode(), STANDARD)
    shanghai = respec(STANDARD, 'timezone = "UTC"', 'timezone = "Asia/Shanghai"')
    err = refused(engine, naive.encode(), shanghai)
    assert err.code == "time_offset" and "move by the same -8 h" in str(err)


def test_day_first_format_swapping_day_and_month_fails(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    us = hefei()  # a US export: month first, early-month days
    day = 1 + np.arange(len(us)) % 12
    us["报警时间"] = [f"11/{d:02d}/2026 {t[-8:]}" for d, t in zip(day, us["报警时间"], strict=True)]
    month_first = respec(HEFEI, 'ts = "%Y/%m/%d %H:%M:%S"', 'ts = "%m/%d/%Y %H:%M:%S"')
    feed(engine, gbk(us), month_first)
    day_first = respec(HEFEI, 'ts = "%Y/%m/%d %H:%M:%S"', 'ts = "%d/%m/%Y %H:%M:%S"')
    err = refused(engine, gbk(us), day_first)
    assert err.code == "time_day_month_swap" and "day and month swapped" in str(err)


def test_gcj02_points_declared_wgs84_moving_stored_points_fails(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    wgs = respec(HEFEI, 'crs = "gcj02"', 'crs = "wgs84"')
    feed(engine, (SAMPLES / "hefei_incidents_gbk.csv").read_bytes(), wgs)
    mixed = hefei()  # 5% of the rows re-exported from a GCJ-02 map
    some = mixed.index[::20]
    lon, lat = convert(mixed.loc[some, "经度"].astype(float).to_numpy(),
                       mixed.loc[some, "纬度"].astype(float).to_numpy(), "wgs84", "gcj02")  # fmt: skip
    mixed.loc[some, "经度"], mixed.loc[some, "纬度"] = (
        [f"{v:.6f}" for v in lon],
        [f"{v:.6f}" for v in lat],
    )
    err = refused(engine, gbk(mixed), wgs)
    assert err.code == "position_shift" and "coordinate system is probably wrong" in str(err)
    assert f"{len(some)} of {len(some)} moved points" in str(err)


# --- guardrails on the file alone -------------------------------------------------------


def test_gbk_file_read_as_latin1_is_a_probable_encoding_error(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    data = (SAMPLES / "standard_incidents.csv").read_text(encoding="utf-8").encode("gbk")
    latin1 = respec(STANDARD, 'encoding = "utf-8"', 'encoding = "latin-1"')
    err = refused(engine, data, latin1)
    assert err.code == "probable_encoding_error"
    assert "decode as iso8859-1 into Latin accents with no Chinese" in str(err)
    assert (
        feed(engine, data, respec(STANDARD, 'encoding = "utf-8"', 'encoding = "gbk"')).status
        == "done"
    )


def test_a_batch_over_its_reject_limit_fails_whole(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    bad = hefei()
    bad.loc[bad.index[: len(bad) // 3], "警情类别"] = "抢夺"  # not in [values.type_code]
    err = refused(engine, gbk(bad), HEFEI)
    assert err.code == "too_many_rejects" and "over the spec's max_reject_share 20%" in str(err)
    with transaction(engine) as s:
        failed = s.scalars(select(m.FeedBatch).order_by(m.FeedBatch.id.desc())).first()
        assert failed.status == "failed" and failed.error_code == "too_many_rejects"
    # The else value of the mapping takes what the table does not list.
    other = parse_spec(HEFEI.text + '\n[else]\ntype_code = "public_order"\n')
    assert feed(engine, gbk(bad), other).rows_rejected == 0


def test_a_spreadsheet_title_row_is_named_and_skipped(tmp_path_factory):
    engine = seeded_copy("sqlite", tmp_path_factory)
    data = (
        "合肥市110警情导出（2026年11月）\n".encode("gbk")
        + (SAMPLES / "hefei_incidents_gbk.csv").read_bytes()
    )
    err = refused(engine, data, HEFEI)
    assert err.code == "missing_column" and "set header_row" in str(err)
    titled = parse_spec("header_row = 2\n" + HEFEI.text)
    r = feed(engine, data, titled)
    assert r.rows_inserted == 240 and r.rows_rejected == 0
    with transaction(engine) as s:
        first = s.scalar(select(m.RecordVersion.row_number).where(
            m.RecordVersion.batch_id == r.batch_id).order_by(m.RecordVersion.row_number))  # fmt: skip
    assert first == 3  # lineage counts the file's own lines
