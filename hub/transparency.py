"""The transparency report of one city and one quarter, computed from the audit log
itself (DESIGN §4 "Transparency"). Pure: the caller reads the entries (and the alarms)
through the audited service and passes them in as frames.

What is counted, with the audit actions as the services write them:

- searches by purpose: ``search`` and ``view`` entries by the city's users;
- cross-city accesses: ``search``, ``view``, ``break_glass`` and ``export`` entries (the
  owner view's set) whose ``owner_cities`` name another city than the user's: *in* when
  the city's records were touched by another city's user, *out* when the city's users
  touched another city's records. One entry touching two other cities counts for each;
- access requests: ``request`` entries (``detail.request_id``) and ``decide`` entries
  (``decision`` approved or denied, same ``detail.request_id``); *in* are requests for the
  city's records (``owner_cities``), *out* those filed by the city's users. The decision
  time is the decide entry's time minus the request entry's, so a decision in the quarter
  is timed even when the request was filed before it, provided its entry is passed in;
- break-glass uses: ``break_glass`` entries, in and out as above;
- alarms raised and closed: alarms are rows beside the log (each one names the
  ``audit_seq`` that raised it), not log entries, so they come as their own frame;
  they are counted for the city of the user they are about, as the alarm pages do.

The quarter is a calendar quarter in local time (Asia/Shanghai by default).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd

from hub.security.watermark import neutralise

LOOKUP_ACTIONS = ("search", "view")
ACCESS_ACTIONS = ("search", "view", "break_glass", "export")
DECISIONS = ("approved", "denied")
ENTRY_COLUMNS = (
    "ts", "user_id", "username", "role", "city_code", "action", "dataset", "query", "subject",
    "purpose", "case_no", "result_count", "record_ids", "owner_cities", "decision", "grant_id",
    "detail",
)  # fmt: skip
ALARM_COLUMNS = ("ts", "rule", "city_code", "closed_at")
_QUARTER = re.compile(r"(\d{4})Q([1-4])")
NO_PURPOSE = "(none)"


@dataclass(frozen=True)
class TransparencyReport:
    """One city's quarter.

    Attributes
    ----------
    searches_by_purpose
        Index ``purpose``; columns ``search``, ``view``, ``total``; most used first.
    cross_city_in, cross_city_out
        Index ``city_code`` (the other city); columns per access action, ``total`` and
        ``with_grant`` (entries that used a grant or break-glass).
    requests
        Index ``direction`` (``in``, ``out``); columns ``filed``, ``approved``, ``denied``,
        ``pending_at_end`` and ``median_decision`` (a Timedelta, NaT without decisions).
    break_glass_in, break_glass_out
        Break-glass uses on the city's records by others, and by the city's users.
    alarms
        Index ``rule``; columns ``raised`` and ``closed``; None when no alarms were given.
    """

    city_code: str
    quarter: str
    start: datetime
    end: datetime
    searches_by_purpose: pd.DataFrame
    cross_city_in: pd.DataFrame
    cross_city_out: pd.DataFrame
    requests: pd.DataFrame
    break_glass_in: int
    break_glass_out: int
    alarms: pd.DataFrame | None


def quarter_bounds(quarter: str, tz: str = "Asia/Shanghai") -> tuple[datetime, datetime]:
    """[start, end) of a quarter such as ``2026Q4``, as aware datetimes in `tz`.

    Raises
    ------
    ValueError
        For anything but ``YYYYQn`` with n from 1 to 4.
    """
    match = _QUARTER.fullmatch(quarter.strip())
    if not match:
        raise ValueError(f"quarter {quarter!r} is not like 2026Q4")
    year, q = int(match[1]), int(match[2])
    zone = ZoneInfo(tz)
    start = datetime(year, 3 * q - 2, 1, tzinfo=zone)
    end = (
        datetime(year + 1, 1, 1, tzinfo=zone)
        if q == 4
        else datetime(year, 3 * q + 1, 1, tzinfo=zone)
    )
    return start, end


def _utc(series: pd.Series) -> pd.Series:
    # Naive times are the store's UTC (SQLite hands them back without an offset).
    return pd.to_datetime(series, utc=True)


def _detail(value) -> dict:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _cities(value) -> frozenset[str]:
    if not isinstance(value, str):
        return frozenset()
    return frozenset(c for c in value.split(",") if c)


def _access_table(frame: pd.DataFrame, other: str) -> pd.DataFrame:
    """Counts per other city (column `other`) and action, plus total and with_grant."""
    columns = [*ACCESS_ACTIONS, "total", "with_grant"]
    if frame.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="city_code"), dtype="int64")
    table = pd.crosstab(frame[other], frame["action"]).reindex(columns=ACCESS_ACTIONS, fill_value=0)
    table["total"] = table.sum(axis=1)
    table["with_grant"] = frame.assign(g=frame["grant_id"].notna()).groupby(other)["g"].sum()
    table.index.name, table.columns.name = "city_code", None
    return table.astype("int64").sort_values(["total"], ascending=False, kind="stable")


def _searches(mine: pd.DataFrame) -> pd.DataFrame:
    lookups = mine[mine["action"].isin(LOOKUP_ACTIONS)]
    purpose = lookups["purpose"].fillna(NO_PURPOSE).rename("purpose")
    table = pd.crosstab(purpose, lookups["action"]).reindex(columns=LOOKUP_ACTIONS, fill_value=0)
    table.columns.name = None
    table["total"] = table.sum(axis=1)
    return table.astype("int64").sort_values("total", ascending=False, kind="stable")


def _with_request_id(entries: pd.DataFrame) -> pd.DataFrame:
    ids = entries["detail"].map(lambda d: _detail(d).get("request_id"))
    return entries.assign(request_id=ids).dropna(subset=["request_id"])


def _requests(log: pd.DataFrame, city: str, start, end) -> pd.DataFrame:
    filed = _with_request_id(log[log["action"] == "request"]).drop_duplicates("request_id")
    decided = _with_request_id(log[(log["action"] == "decide") & log["decision"].isin(DECISIONS)])
    # One row per request: filed when, by which city, for whose records, and its outcome.
    # A decision whose request entry was not passed in still counts for the owner (its
    # entry names the owner city) but has no decision time and no requesting city.
    requests = filed[["request_id", "ts", "city_code", "owner_cities"]].merge(
        decided[["request_id", "ts", "decision", "owner_cities"]].drop_duplicates("request_id"),
        on="request_id",
        how="outer",
        suffixes=("", "_decided"),
    )
    requests["owner_cities"] = requests["owner_cities"].fillna(requests["owner_cities_decided"])
    rows = {}
    for direction, picked in (
        ("in", requests["owner_cities"].map(lambda v: city in _cities(v))),
        ("out", requests["city_code"] == city),
    ):
        r = requests.loc[picked.astype(bool)]
        filed_ts, decided_ts = r["ts"], r["ts_decided"]
        decisions = r[decided_ts.ge(start) & decided_ts.lt(end)]
        waits = (decisions["ts_decided"] - decisions["ts"]).dropna()
        rows[direction] = {
            "filed": int((filed_ts.ge(start) & filed_ts.lt(end)).sum()),
            "approved": int((decisions["decision"] == "approved").sum()),
            "denied": int((decisions["decision"] == "denied").sum()),
            # NaT compares False: a request never decided is still pending.
            "pending_at_end": int((filed_ts.lt(end) & ~decided_ts.lt(end)).sum()),
            "median_decision": waits.median() if len(waits) else pd.NaT,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "direction"
    return table


def _alarms(alarms: pd.DataFrame, city: str, start, end) -> pd.DataFrame:
    missing = set(ALARM_COLUMNS) - set(alarms.columns)
    if missing:
        raise ValueError(f"alarms lack columns {sorted(missing)}")
    mine = alarms[alarms["city_code"] == city]
    raised_ts, closed_ts = _utc(mine["ts"]), _utc(mine["closed_at"])
    raised = mine[raised_ts.ge(start) & raised_ts.lt(end)].groupby("rule").size()
    closed = mine[closed_ts.ge(start) & closed_ts.lt(end)].groupby("rule").size()
    table = pd.DataFrame({"raised": raised, "closed": closed}).fillna(0).astype("int64")
    table.index.name = "rule"
    return table.sort_index()


def transparency_report(
    entries: pd.DataFrame,
    city_code: str,
    quarter: str,
    *,
    alarms: pd.DataFrame | None = None,
    tz: str = "Asia/Shanghai",
) -> TransparencyReport:
    """The transparency report of `city_code` for `quarter`.

    Parameters
    ----------
    entries
        Audit entries with the audit columns (``ts``, ``city_code``, ``action``,
        ``purpose``, ``owner_cities``, ``decision``, ``grant_id``, ``detail`` as JSON text,
        …). Pass at least the quarter, and the ``request`` entries of requests decided in
        it, so that their decision time is known; entries outside the quarter are not
        counted.
    city_code
        The city the report is about.
    quarter
        ``YYYYQn``, a calendar quarter in `tz`.
    alarms
        Alarm rows (``ts``, ``rule``, ``city_code`` of the alarmed user, ``closed_at``);
        without them the report's ``alarms`` is None.
    tz
        Time zone of the quarter's boundaries.

    Returns
    -------
    TransparencyReport

    Raises
    ------
    ValueError
        For a malformed quarter or frames missing a column.
    """
    missing = set(ENTRY_COLUMNS) - set(entries.columns)
    if missing:
        raise ValueError(f"audit entries lack columns {sorted(missing)}")
    start, end = quarter_bounds(quarter, tz)
    log = entries.assign(ts=_utc(entries["ts"]))
    in_quarter = log[log["ts"].ge(start) & log["ts"].lt(end)]
    mine = in_quarter[in_quarter["city_code"] == city_code]

    access = in_quarter[in_quarter["action"].isin(ACCESS_ACTIONS)].assign(
        owners=lambda f: f["owner_cities"].map(_cities)
    )
    incoming = access[
        access["owners"].map(lambda owners: city_code in owners)
        & (access["city_code"] != city_code)
    ]
    # Users without a home city would otherwise vanish from the groupby.
    incoming = incoming.assign(from_city=incoming["city_code"].fillna(""))
    outgoing = access[access["city_code"] == city_code].assign(
        to_city=lambda f: f["owners"].map(lambda owners: sorted(owners - {city_code}))
    )
    outgoing = outgoing.explode("to_city").dropna(subset=["to_city"])

    return TransparencyReport(
        city_code=city_code,
        quarter=quarter.strip(),
        start=start,
        end=end,
        searches_by_purpose=_searches(mine),
        cross_city_in=_access_table(incoming, "from_city"),
        cross_city_out=_access_table(outgoing, "to_city"),
        requests=_requests(log, city_code, start, end),
        break_glass_in=int((incoming["action"] == "break_glass").sum()),
        break_glass_out=int((mine["action"] == "break_glass").sum()),
        alarms=None if alarms is None else _alarms(alarms, city_code, start, end),
    )


def _minutes(value) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{pd.Timedelta(value).total_seconds() / 60:.1f}"


def to_csv(report: TransparencyReport) -> bytes:
    """The report as one long CSV (section, item, metric, value), UTF-8 with BOM.

    Parameters
    ----------
    report
        From `transparency_report`.

    Returns
    -------
    bytes
        Decision times are in minutes; an absent alarms frame is written as a
        ``not_supplied`` line, so a reader never takes it for zero alarms.
    """
    rows: list[tuple] = [
        ("report", "city", "city_code", report.city_code),
        ("report", "quarter", "quarter", report.quarter),
        ("report", "period", "start", report.start.isoformat()),
        ("report", "period", "end", report.end.isoformat()),
    ]
    for purpose, counts in report.searches_by_purpose.iterrows():
        rows += [("searches_by_purpose", purpose, m, int(v)) for m, v in counts.items()]
    for section, table in (
        ("cross_city_in", report.cross_city_in),
        ("cross_city_out", report.cross_city_out),
    ):
        for city, counts in table.iterrows():
            rows += [(section, city, m, int(v)) for m, v in counts.items()]
    for direction, r in report.requests.iterrows():
        for metric in ("filed", "approved", "denied", "pending_at_end"):
            rows.append(("requests", direction, metric, int(r[metric])))
        rows.append(
            ("requests", direction, "median_decision_minutes", _minutes(r["median_decision"]))
        )
    rows += [
        ("break_glass", "in", "uses", report.break_glass_in),
        ("break_glass", "out", "uses", report.break_glass_out),
    ]
    if report.alarms is None:
        rows.append(("alarms", "", "not_supplied", ""))
    else:
        for rule, counts in report.alarms.iterrows():
            rows += [("alarms", rule, m, int(v)) for m, v in counts.items()]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("section", "item", "metric", "value"))
    # Purposes and cities come from the log; a refused input may have put anything there.
    writer.writerows([neutralise(c) for c in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")
