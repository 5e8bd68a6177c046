"""The demo province: on the real boundaries, valid identifiers, deterministic, scripted pursuit."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from geo.boundaries import load_boundaries
from hub import demo
from hub.security.crypto import FieldCipher
from hub.security.narrative import reveal
from hub.settings import load_settings
from hub.validate import id_region, is_valid_id_number, is_valid_phone, is_valid_plate
from tests.conftest import ANCHOR, ROOT

CIPHER = FieldCipher.from_settings(load_settings())
DIGEST = re.compile(r"[0-9a-f]{64}")
POINT_TABLES = ("incidents", "cameras", "sightings", "units", "help_requests")


@pytest.fixture(scope="module")
def small() -> demo.DemoData:
    return demo.generate(demo.SIZES["small"], 7, ANCHOR, CIPHER)


def _query(engine, sql: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(sql)).mappings().all())


@pytest.mark.parametrize("table", POINT_TABLES)
def test_every_point_lies_in_its_city_and_district(seeded_sqlite, table):
    b = load_boundaries()
    rows = _query(seeded_sqlite, f"SELECT lon, lat, city_code, district_code FROM {table}")
    assert len(rows) > 0
    for level, frame, col in (
        ("city", b.cities, "city_code"),
        ("district", b.districts, "district_code"),
    ):
        polygons = dict(zip(frame.adcode, frame.geometry, strict=True))
        for code, group in rows.groupby(col):
            inside = shapely.intersects_xy(
                polygons[code], group.lon.to_numpy(), group.lat.to_numpy()
            )
            assert inside.all(), f"{(~inside).sum()} {table} points outside their {level} {code}"


def test_districts_belong_to_the_record_city(seeded_sqlite):
    bad = _query(
        seeded_sqlite,
        "SELECT COUNT(*) AS n FROM incidents i JOIN districts d ON d.adcode = i.district_code "
        "WHERE d.city_code <> i.city_code",
    )
    assert bad.n.iloc[0] == 0


def test_person_identifiers_are_valid_encrypted_and_indexed(seeded_sqlite):
    rows = _query(
        seeded_sqlite, "SELECT id_enc, id_bidx, phone_enc, phone_bidx, birth_date, sex FROM persons"
    )
    assert len(rows) == demo.SIZES["small"].persons
    for r in rows.itertuples():
        assert b"34" not in r.id_enc[:2]  # ciphertext, not the number
        number = CIPHER.decrypt("id_number", r.id_enc)
        assert is_valid_id_number(number, today=ANCHOR.date())
        assert id_region(number).startswith("34"), "region codes of the demo province"
        assert CIPHER.blind_index("id_number", number) == r.id_bidx
        assert str(r.birth_date).replace("-", "") == number[6:14]
        assert r.sex == ("M" if int(number[16]) % 2 else "F")
        phone = CIPHER.decrypt("phone", r.phone_enc)
        assert is_valid_phone(phone) and CIPHER.blind_index("phone", phone) == r.phone_bidx


def test_plates_are_valid(seeded_sqlite):
    plates = _query(seeded_sqlite, "SELECT DISTINCT plate FROM sightings").plate
    bad = [p for p in plates if not is_valid_plate(p)]
    assert not bad, bad[:5]


def test_same_seed_same_data(small):
    again = demo.generate(demo.SIZES["small"], 7, ANCHOR, CIPHER)
    assert list(small) == list(again)
    for name, df in small.items():
        # Ciphertexts carry a random nonce; their blind indexes must agree instead, and
        # sealed narratives must agree once opened.
        plain = [c for c in df.columns if not c.endswith("_enc") and c != "summary"]
        pd.testing.assert_frame_equal(df[plain], again[name][plain], obj=name)
        if "summary" in df:
            opened = [df["summary"], again[name]["summary"]]
            opened = [s.map(lambda v: reveal(v, CIPHER, mask_ids=False, mask_phones=False))
                      for s in opened]  # fmt: skip
            pd.testing.assert_series_equal(*opened, obj=name)


def test_other_seed_other_data(small):
    other = demo.generate(demo.SIZES["small"], 8, ANCHOR, CIPHER)
    assert not small["incidents"]["lon"].equals(other["incidents"]["lon"])


def test_everything_is_labelled_synthetic_and_in_the_window(small):
    assert (small["feed_batches"]["source_name"] == demo.DEMO_SOURCE).all()
    for name in ("incidents", "sightings", "help_requests"):
        ts = small[name]["ts"]
        assert ts.max() <= pd.Timestamp(ANCHOR)
        assert ts.min() >= pd.Timestamp(ANCHOR) - pd.Timedelta(days=31)
        assert ts.is_monotonic_increasing, f"{name} in time order"
    assert small["incidents"]["summary"].str.startswith("（合成）").all()


def test_incidents_follow_daily_rhythm_and_urban_hotspots(small):
    inc = small["incidents"]
    local_hour = inc["ts"].dt.tz_convert("Asia/Shanghai").dt.hour
    by_hour = local_hour.value_counts()
    assert by_hour[20] > 2 * by_hour[4]
    urban = inc["district_code"].map(
        dict(
            zip(
                load_boundaries().districts.adcode,
                load_boundaries().districts.name.str.endswith("区"),
                strict=True,
            )
        )
    )
    assert urban.mean() > 0.6, "incidents concentrate in urban districts"
    assert set(inc["classification"]) == {"public", "internal", "sensitive", "secret"}


def test_h3_cells_precomputed(small):
    import h3

    inc = small["incidents"].head(50)
    for r in inc.itertuples():
        assert r.h3_r8 == h3.latlng_to_cell(r.lat, r.lon, 8)
        assert r.h3_r7 == h3.cell_to_parent(r.h3_r8, 7)


def test_border_checkpoints_on_both_sides(small):
    cams = small["cameras"]
    border = cams[cams["at_border"]]
    assert (border["kind"] == "checkpoint").all()
    assert border["city_code"].nunique() == 16


def test_scripted_pursuit_crosses_into_the_neighbour_within_the_hour(seeded):
    rows = _query(
        seeded,
        f"SELECT s.ts, s.city_code, s.classification FROM sightings s "
        f"WHERE s.plate = '{demo.PURSUIT_PLATE}' ORDER BY s.ts",
    )
    cities = rows["city_code"].tolist()
    assert cities[0] == demo.PURSUIT_FROM and cities[-1] == demo.PURSUIT_TO
    first_out = cities.index(demo.PURSUIT_TO)
    assert set(cities[:first_out]) == {demo.PURSUIT_FROM}
    ts = pd.to_datetime(rows["ts"], utc=True)
    assert ts.iloc[first_out] - ts.iloc[first_out - 1] < pd.Timedelta(hours=1)
    assert (rows.loc[first_out:, "classification"] == "sensitive").all()
    case = _query(
        seeded,
        "SELECT c.status, c.city_code FROM cases c JOIN vehicle_case_links l ON l.case_id = c.id "
        f"JOIN vehicles v ON v.id = l.vehicle_id WHERE v.plate = '{demo.PURSUIT_PLATE}'",
    )
    assert case.to_dict("records") == [{"status": "open", "city_code": demo.PURSUIT_FROM}]


def test_seeded_store_counts(seeded):
    n = _query(seeded, "SELECT COUNT(*) AS n FROM incidents").n.iloc[0]
    assert n == demo.SIZES["small"].incidents
    n = _query(seeded, "SELECT COUNT(*) AS n FROM sightings").n.iloc[0]
    assert n == demo.SIZES["small"].sightings


def test_seeding_twice_refuses_without_reset(store):
    demo.seed(store, load_settings(), size="small", anchor=ANCHOR)
    with pytest.raises(demo.AlreadySeeded, match="--reset"):
        demo.seed(store, load_settings(), size="small", anchor=ANCHOR)
    written = demo.seed(store, load_settings(), size="small", anchor=ANCHOR, reset=True, seed=9)
    assert written["incidents"] == demo.SIZES["small"].incidents
    rows = _query(store, "SELECT COUNT(*) AS n FROM incidents").n.iloc[0]
    assert rows == demo.SIZES["small"].incidents


def test_cli_demo_refusal_is_a_message(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cmd = [sys.executable, "-m", "hub", "demo", "--size", "small", "--quiet", "--db", url]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "合成数据" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert second.returncode == 1
    assert "Traceback" not in second.stderr and "--reset" in second.stderr


def test_ids_dense_from_one(small):
    for name, df in small.items():
        if "id" in df:
            assert np.array_equal(df["id"].to_numpy(), np.arange(1, len(df) + 1)), name


def test_no_identifier_in_clear_in_any_text_column(seeded):
    """Issue 14 item 2: the seeded demo (audit log included) holds no ID number or phone
    in clear in any text column; the incident narratives keep them sealed."""
    from sqlalchemy import String, Text

    from hub import models as m
    from hub.validate import find_id_numbers, find_phones

    found, sealed = [], []
    with seeded.connect() as conn:
        for table in m.Base.metadata.sorted_tables:
            cols = [c for c in table.columns if isinstance(c.type, String | Text)]
            if not cols:
                continue
            for row in conn.execute(table.select().with_only_columns(*cols)):
                for col, value in zip(cols, row, strict=True):
                    if not value or DIGEST.fullmatch(value):  # a hash or blind index
                        continue
                    if find_id_numbers(value) or find_phones(value):
                        found.append((table.name, col.name, value[:80]))
                    elif "⟦ph:" in value and table.name == "incidents":
                        sealed.append(value)
    assert found == [], sorted({(t, c) for t, c, _ in found})
    assert sealed  # the demo's callers' phones are there, encrypted
    shown = reveal(sealed[0], CIPHER, mask_ids=False, mask_phones=False)
    assert find_phones(shown) and "⟦" not in shown
