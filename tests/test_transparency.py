"""The transparency report against a hand-built log whose counts were worked out by hand.

合肥 (340100) is the city reported on; 滁州 (341100) and 芜湖 (340200) are the others.
2026Q4 in Asia/Shanghai runs from 2026-09-30 16:00 UTC to 2026-12-31 16:00 UTC.
"""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

from hub.transparency import ENTRY_COLUMNS, quarter_bounds, to_csv, transparency_report

HF, CZ, WH = "340100", "341100", "340200"


def _e(ts, city, action, *, purpose=None, owners=None, decision=None, grant=None, detail=None):
    return {
        "ts": pd.Timestamp(ts, tz="UTC"), "user_id": 1, "username": f"u{city}", "role": "investigator",
        "city_code": city, "action": action, "dataset": "sightings", "query": None,
        "subject": None, "purpose": purpose, "case_no": None, "result_count": 1,
        "record_ids": None, "owner_cities": owners, "decision": decision, "grant_id": grant,
        "detail": json.dumps(detail) if detail is not None else None,
    }  # fmt: skip


LOG = pd.DataFrame(
    [
        # 1. 23:59 local on 30 September: the quarter before.
        _e("2026-09-30T15:59", HF, "search", purpose="pursuit", owners=f"{HF},{CZ}"),
        # 2. 00:00 local on 1 October: in; a search and an access out to 滁州.
        _e("2026-09-30T16:00", HF, "search", purpose="pursuit", owners=f"{HF},{CZ}"),
        # 3. a view of 滁州's record through grant 5: out, with a grant.
        _e("2026-10-05T02:00", HF, "view", purpose="case_investigation", owners=CZ, grant=5),
        # 4, 5. own records, and nothing found: searches, no cross-city access.
        _e("2026-10-06T02:00", HF, "search", purpose="pursuit", owners=HF),
        _e("2026-10-07T02:00", HF, "search", purpose="pursuit"),
        # 6-8, 10. other cities touching 合肥's records: in.
        _e("2026-10-08T02:00", CZ, "search", purpose="missing_person", owners=f"{HF},{WH}"),
        _e("2026-10-09T02:00", WH, "view", purpose="pursuit", owners=HF, grant=9),
        _e(
            "2026-10-10T02:00",
            CZ,
            "break_glass",
            purpose="pursuit",
            owners=HF,
            decision="granted",
            grant=11,
        ),  # fmt: skip
        # 9. 合肥's investigator breaks glass on 芜湖's sightings: out.
        _e(
            "2026-10-11T02:00",
            HF,
            "break_glass",
            purpose="pursuit",
            owners=WH,
            decision="granted",
            grant=12,
        ),  # fmt: skip
        _e("2026-10-12T02:00", CZ, "export", purpose="pursuit", owners=HF),
        # 11. a refused search is not a search.
        _e("2026-10-13T02:00", HF, "search_refused", purpose="pursuit", decision="no_open_case"),
        # 12, 13. request 1 by 合肥 for 滁州's records, approved after 120 minutes.
        _e(
            "2026-10-14T00:00",
            HF,
            "request",
            purpose="pursuit",
            owners=CZ,
            decision="pending",
            detail={"request_id": 1},
        ),  # fmt: skip
        _e(
            "2026-10-14T02:00",
            CZ,
            "decide",
            owners=CZ,
            decision="approved",
            grant=20,
            detail={"request_id": 1, "requester_id": 1},
        ),  # fmt: skip
        # 14, 15. request 2 for 合肥's records filed last quarter, denied on 1 October
        # (11 days = 15840 minutes).
        _e(
            "2026-09-20T00:00",
            CZ,
            "request",
            owners=HF,
            decision="pending",
            detail={"request_id": 2},
        ),  # fmt: skip
        _e(
            "2026-10-01T00:00",
            HF,
            "decide",
            owners=HF,
            decision="denied",
            detail={"request_id": 2, "requester_id": 2},
        ),  # fmt: skip
        # 16, 17. request 3, approved after 60 minutes.
        _e(
            "2026-11-01T00:00",
            WH,
            "request",
            owners=HF,
            decision="pending",
            detail={"request_id": 3},
        ),  # fmt: skip
        _e(
            "2026-11-01T01:00",
            HF,
            "decide",
            owners=HF,
            decision="approved",
            grant=21,
            detail={"request_id": 3, "requester_id": 3},
        ),  # fmt: skip
        # 18. request 4, never decided.
        _e(
            "2026-12-01T00:00",
            WH,
            "request",
            owners=HF,
            decision="pending",
            detail={"request_id": 4},
        ),  # fmt: skip
        # 19, 20. request 5 filed on 31 December local, decided in January.
        _e(
            "2026-12-31T10:00",
            CZ,
            "request",
            owners=HF,
            decision="pending",
            detail={"request_id": 5},
        ),  # fmt: skip
        _e(
            "2027-01-02T00:00",
            HF,
            "decide",
            owners=HF,
            decision="denied",
            detail={"request_id": 5, "requester_id": 2},
        ),  # fmt: skip
        # 21. 08:00 local on 1 January: the next quarter.
        _e("2026-12-31T16:00", HF, "view", purpose="pursuit", owners=CZ),
        # 22, 23. neither accesses nor requests.
        _e("2026-10-20T02:00", HF, "alarm_close", detail={"rule": "burst", "note": "ok"}),
        _e("2026-10-20T03:00", HF, "sign_in", decision="ok"),
    ]
)

ALARMS = pd.DataFrame(
    {
        "ts": pd.to_datetime(
            ["2026-10-02T01:00", "2026-10-10T02:00", "2026-09-29T15:00", "2026-12-30T15:00",
             "2026-12-31T17:00"], utc=True,
        ),
        "rule": ["burst", "break_glass", "off_hours", "off_hours", "repeated_refusals"],
        "city_code": [HF, CZ, HF, HF, HF],
        "closed_at": pd.to_datetime(
            ["2026-10-03T00:00", None, "2026-10-02T00:00", None, None], utc=True
        ),
    }
)  # fmt: skip


@pytest.fixture(scope="module")
def report():
    return transparency_report(LOG, HF, "2026Q4", alarms=ALARMS)


def test_quarter_bounds_are_local_calendar_quarters():
    start, end = quarter_bounds("2026Q4")
    assert start.isoformat() == "2026-10-01T00:00:00+08:00"
    assert end.isoformat() == "2027-01-01T00:00:00+08:00"
    assert quarter_bounds("2027Q1")[0] == end
    for bad in ("2026Q5", "2026-Q4", "Q4 2026", ""):
        with pytest.raises(ValueError):
            quarter_bounds(bad)


def test_searches_by_purpose(report):
    table = report.searches_by_purpose
    assert table.to_dict("index") == {
        "pursuit": {"search": 3, "view": 0, "total": 3},
        "case_investigation": {"search": 0, "view": 1, "total": 1},
    }
    assert list(table.index) == ["pursuit", "case_investigation"]


def test_cross_city_accesses_in(report):
    assert report.cross_city_in.to_dict("index") == {
        CZ: {"search": 1, "view": 0, "break_glass": 1, "export": 1, "total": 3, "with_grant": 1},
        WH: {"search": 0, "view": 1, "break_glass": 0, "export": 0, "total": 1, "with_grant": 1},
    }


def test_cross_city_accesses_out(report):
    assert report.cross_city_out.to_dict("index") == {
        CZ: {"search": 1, "view": 1, "break_glass": 0, "export": 0, "total": 2, "with_grant": 1},
        WH: {"search": 0, "view": 0, "break_glass": 1, "export": 0, "total": 1, "with_grant": 1},
    }


def test_requests_with_median_decision_time(report):
    r = report.requests
    assert r.loc["in", ["filed", "approved", "denied", "pending_at_end"]].tolist() == [3, 1, 1, 2]
    # Median of 15840 and 60 minutes.
    assert r.loc["in", "median_decision"] == pd.Timedelta(minutes=7950)
    assert r.loc["out", ["filed", "approved", "denied", "pending_at_end"]].tolist() == [1, 1, 0, 0]
    assert r.loc["out", "median_decision"] == pd.Timedelta(minutes=120)


def test_break_glass_in_and_out(report):
    assert (report.break_glass_in, report.break_glass_out) == (1, 1)


def test_alarms_raised_and_closed(report):
    assert report.alarms.to_dict("index") == {
        "burst": {"raised": 1, "closed": 1},
        "off_hours": {"raised": 1, "closed": 1},
    }


def test_the_other_city_sees_the_mirror_image():
    cz = transparency_report(LOG, CZ, "2026Q4")
    assert cz.cross_city_out.loc[HF, "total"] == 3 and cz.cross_city_out.loc[WH, "total"] == 1
    assert cz.cross_city_in.loc[HF, "total"] == 2 and cz.break_glass_out == 1
    assert cz.requests.loc["in", "approved"] == 1 and cz.requests.loc["out", "denied"] == 1
    assert cz.alarms is None


def test_a_decision_without_its_request_entry_counts_but_is_not_timed():
    partial = LOG[~LOG["detail"].fillna("").str.contains('"request_id": 2}')]
    r = transparency_report(partial, HF, "2026Q4").requests
    assert r.loc["in", "denied"] == 1
    assert r.loc["in", "median_decision"] == pd.Timedelta(minutes=60)


def test_an_empty_log_gives_zeros_not_an_error():
    empty = pd.DataFrame(columns=list(ENTRY_COLUMNS))
    report = transparency_report(empty, HF, "2026Q4", alarms=ALARMS.iloc[0:0])
    assert report.searches_by_purpose.empty and report.cross_city_in.empty
    assert report.requests["filed"].tolist() == [0, 0]
    assert report.requests["median_decision"].isna().all()
    assert report.alarms.empty and (report.break_glass_in, report.break_glass_out) == (0, 0)
    assert to_csv(report).startswith(b"\xef\xbb\xbfsection,item,metric,value")


def test_missing_columns_are_refused():
    with pytest.raises(ValueError, match="owner_cities"):
        transparency_report(LOG.drop(columns="owner_cities"), HF, "2026Q4")


def test_csv_is_long_and_complete(report):
    rows = list(csv.reader(io.StringIO(to_csv(report).decode("utf-8-sig"))))
    assert rows[0] == ["section", "item", "metric", "value"]
    values = {(s, i, m): v for s, i, m, v in rows[1:]}
    assert values[("report", "quarter", "quarter")] == "2026Q4"
    assert values[("searches_by_purpose", "pursuit", "total")] == "3"
    assert values[("cross_city_in", CZ, "break_glass")] == "1"
    assert values[("cross_city_out", WH, "total")] == "1"
    assert values[("requests", "in", "median_decision_minutes")] == "7950.0"
    assert values[("requests", "out", "pending_at_end")] == "0"
    assert values[("break_glass", "out", "uses")] == "1"
    assert values[("alarms", "off_hours", "closed")] == "1"
    without = to_csv(transparency_report(LOG, HF, "2026Q4"))
    assert b"alarms,,not_supplied," in without


def test_hostile_purpose_text_is_neutralised_in_the_csv():
    log = pd.DataFrame([_e("2026-10-05T02:00", HF, "search", purpose="=cmd|' /C calc'!A0")])
    rows = list(
        csv.reader(io.StringIO(to_csv(transparency_report(log, HF, "2026Q4")).decode("utf-8-sig")))
    )
    assert ["searches_by_purpose", "'=cmd|' /C calc'!A0", "total", "1"] in rows


def test_a_user_without_a_home_city_is_still_counted_in():
    log = pd.DataFrame([_e("2026-10-05T02:00", None, "view", purpose="pursuit", owners=HF)])
    report = transparency_report(log, HF, "2026Q4")
    assert report.cross_city_in.loc["", "view"] == 1
    assert report.searches_by_purpose.empty
