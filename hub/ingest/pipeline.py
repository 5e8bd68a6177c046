"""The feed pipeline: read -> map -> validate -> transform -> upsert -> batch record.

One ingest is one transaction: the batch row, the records, the rejected rows and the
audit entry commit together or not at all. A fatal problem (a `FeedError`) rolls
everything back; the failed arrival is then recorded (batch row with its error code
and an audit entry) in a transaction of its own.

Row counts always add up: read = inserted + updated + unchanged + duplicate + rejected,
where `unchanged` rows are already in the store with the same content and `duplicate`
rows repeat an earlier row of the same file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    SmallInteger,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, DropConstraint

from geo import cells
from geo.assign import assign_city_district
from geo.boundaries import load_boundaries
from geo.coords import convert
from hub import models as m
from hub.bulk import before_index_build, write_frame
from hub.codes import code_values
from hub.ingest import guardrails
from hub.ingest.datasets import LINE_VALUES, Dataset, dataset
from hub.ingest.history import VERSIONS, previous_json, version_frame
from hub.ingest.readers import LAT, LON, Chunk, Limits, read_chunks
from hub.ingest.spec import EPOCH_FORMATS, STATUS_CODES, FeedError, Spec
from hub.security import audit
from hub.security.crypto import FieldCipher
from hub.security.masking import mask_id_number, mask_phone
from hub.security.narrative import MAY_HOLD, reveal, seal, seal_value
from hub.security.policy import Principal
from hub.validate import (
    id_number_problem,
    normalize_id_number,
    normalize_phone,
    normalize_plate,
    phone_problem,
    plate_problem,
)

Progress = Callable[[float, int], None]
FUTURE_SLACK = timedelta(minutes=10)  # clocks of city systems drift a little
REBUILD_ROWS = 200_000  # SQLite: a load this big into a smaller table rebuilds indexes
EMPTY_REBUILD_ROWS = 10_000  # into an empty table, a load this big builds them at the end
_KM_PER_DEG = 111.0
_TRUE = {"1", "true", "t", "yes", "y", "是", "有"}
_FALSE = {"0", "false", "f", "no", "n", "否", "无"}
# A batch this many times smaller than the table looks its keys up instead of loading
# every key of the city (a stream's micro-batch against a table of millions).
LOOKUP_RATIO = 20
# SQLite page cache of an ingest's connection: a micro-batch's index pages (2,000 reads:
# up to ~40 MB) stay in it; a feed of `BIG_FEED_BYTES` or more gets more, for its run only.
FEED_CACHE_KIB = 65_536
BIG_FEED_BYTES = 8 << 20
BIG_FEED_CACHE_KIB = 262_144
FK_CHECK_IDS = 5_000  # updated rows the key check looks up by id; more: it reads the table
PREVIEW_SAMPLES = 3  # before/after pairs per changed field in a dry run
PREVIEW_REJECTS = 50
_MASKS = {"id_number": mask_id_number, "phone": mask_phone}


@dataclass
class BatchReport:
    """What an ingest did, for the CLI and the Feeds page."""

    batch_id: int | None
    city_code: str
    dataset: str
    spec_name: str
    source_name: str
    status: str  # done, unchanged, failed
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    same_file_as: int | None = None  # an earlier batch with the same content
    error_code: str | None = None
    error: str | None = None
    dry_run: bool = False  # nothing was stored: the report says what would happen
    findings: list[dict] = field(default_factory=list)  # guardrails (hub.ingest.guardrails)
    changed_fields: dict[str, int] = field(default_factory=dict)  # field -> records updated
    # A dry run's samples: {"changes": {field: [{source_id, before, after}]},
    # "rejects": [{row_number, reasons}]}, values in clear (the caller masks them).
    preview: dict = field(default_factory=dict)

    @property
    def adds_up(self) -> bool:
        return self.rows_read == (
            self.rows_inserted + self.rows_updated + self.rows_unchanged
            + self.rows_duplicate + self.rows_rejected
        )  # fmt: skip

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        """One English paragraph for the command line."""
        if self.status == "failed":
            head = "dry run: would fail" if self.dry_run else f"batch {self.batch_id} failed"
            return f"{head} ({self.error_code}): {self.error}; nothing stored"
        text = (
            ("dry run, nothing stored: would be " if self.dry_run else "")
            + f"batch {self.batch_id} ({self.dataset}, city {self.city_code}, spec {self.spec_name}): "
            f"read {self.rows_read:,} = inserted {self.rows_inserted:,} + updated "
            f"{self.rows_updated:,} + unchanged {self.rows_unchanged:,} + duplicate "
            f"{self.rows_duplicate:,} + rejected {self.rows_rejected:,} "
            f"in {self.seconds:.2f} s ({self.rows_per_second:,.0f} rows/s)"
        )
        if self.status == "unchanged":
            text += "; nothing changed" + (
                f" (same file as batch {self.same_file_as})" if self.same_file_as else ""
            )
        if self.reasons:
            text += "; reasons: " + ", ".join(f"{k} {v:,}" for k, v in self.reasons.items())
        if self.changed_fields:
            text += "; fields changed: " + ", ".join(
                f"{k} {v:,}" for k, v in self.changed_fields.items()
            )
        for f in self.findings:
            text += (
                f"; {'accepted ' if f.get('accepted') else ''}finding {f['code']}: {f['message']}"
            )
        return text


def _now() -> datetime:
    return datetime.now(UTC)


def _sha256(source: BinaryIO) -> str:
    source.seek(0)
    digest = hashlib.sha256()
    while block := source.read(1 << 20):
        digest.update(block)
    source.seek(0)
    return digest.hexdigest()


log = logging.getLogger("hub.ingest")


# --- map --------------------------------------------------------------------------------


def _map(frame: pd.DataFrame, spec: Spec, ds: Dataset) -> pd.DataFrame:
    """Source columns -> standard fields as stripped text ("" = absent), value-mapped."""
    out = {}
    for name, cols in spec.columns.items():
        s = frame[cols[0]].astype("str")
        for c in cols[1:]:
            s = s + " " + frame[c].astype("str")
        out[name] = s.str.strip()
    if spec.format == "geojson" and ds.has_point:
        out.setdefault("lon", frame[LON].astype("str"))
        out.setdefault("lat", frame[LAT].astype("str"))
    std = pd.DataFrame(out, index=frame.index)
    for name, value in spec.constants.items():
        if name not in std:
            std[name] = value
        else:  # a constant fills the gaps of a mapped column
            std[name] = std[name].where(std[name] != "", value)
    for name, mapping in spec.values.items():
        if name in std:
            mapped = std[name].map(mapping)
            rest = std[name]
            if name in spec.else_values:  # a value the table does not list: the else code
                rest = rest.where(rest == "", spec.else_values[name])
            std[name] = mapped.where(mapped.notna(), rest).astype("str")
    return std


# --- validate ---------------------------------------------------------------------------


_Shown = pd.Series | Callable[[], pd.Series] | None


class _Problems:
    """Row problems of one chunk: (mask, code, field, values) collected vectorised.

    `values` (and any parameter) may be a function returning the Series: text that is
    costly to build (coordinates as text) is then built only when some row is refused.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[tuple[np.ndarray, str, str, pd.Series | None, dict]] = []

    def add(self, mask, code: str, field_: str, values: _Shown = None, **params) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            if callable(values):
                values = values()
            params = {k: v() if callable(v) else v for k, v in params.items()}
            self.items.append((mask, code, field_, values, params))

    @property
    def any(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for mask, *_ in self.items:
            out |= mask
        return out

    def reasons(self, positions: np.ndarray) -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {int(p): [] for p in positions}
        for mask, code, field_, values, params in self.items:
            for p in np.flatnonzero(mask):
                reason = {"code": code, "field": field_}
                for k, v in params.items():
                    reason[k] = str(v.iloc[p]) if isinstance(v, pd.Series) else v
                if values is not None:
                    reason["value"] = str(values.iloc[p])[:200]
                out[int(p)].append(reason)
        return out


def _parse_times(s: pd.Series, fmt: str, tz: str) -> pd.Series:
    # "now" and "today" are words pandas reads as the clock's time: never a record's; a
    # signed (expanded) year is no record's either, and pandas cannot hold most of them.
    present = (s != "") & ~s.isin(_CLOCK_WORDS) & ~s.str.startswith(("-", "+"))
    if fmt in EPOCH_FORMATS:
        num = pd.to_numeric(s.where(present), errors="coerce")
        return pd.to_datetime(
            num, unit="s" if fmt == "epoch_s" else "ms", utc=True, errors="coerce"
        )
    try:
        parsed = pd.to_datetime(s.where(present), format=fmt, errors="coerce")
        if getattr(parsed.dtype, "tz", None) is None:
            parsed = parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        return parsed.dt.tz_convert("UTC").dt.as_unit("us")
    except (ValueError, TypeError, OverflowError, NotImplementedError):
        # Mixed zones, or a value out of range for the column as a whole (a year 9999 with
        # nanoseconds, a negative year): each distinct value alone, a bad one NaT.
        uniq = {v: _one_time(v, fmt, tz) for v in s[present].unique()}
        return pd.to_datetime(s.map(uniq), utc=True).dt.as_unit("us")


_CLOCK_WORDS = ("now", "today")
# An ISO 8601 time of day with its zone at the end: 08:00Z, 08:00:00.5+08, 080000+0800.
_ZONE = r"\d\d:?\d\d(?::?\d\d(?:[.,]\d+)?)?(?:[Zz]|[+-]\d\d(?::?\d\d)?)$"


def _int_limit(ds: Dataset, name: str) -> int:
    """The largest magnitude the field's column holds on every backend (PostgreSQL's
    INTEGER is 32 bits, SMALLINT 16; a BIGINT is kept to what a float64 holds exactly)."""
    col = ds.table.c.get(name)
    if col is not None and isinstance(col.type, BigInteger):
        return 2**53
    if col is not None and isinstance(col.type, SmallInteger):
        return 2**15 - 1
    return 2**31 - 1


def _one_time(value: str, fmt: str, tz: str):
    """One time in the spec's own format (never a guess at day or month order), in UTC
    microseconds; NaT where it cannot be one (in a gap or overlap of the zone's clock, out
    of range)."""
    try:
        ts = pd.to_datetime(value, format=fmt)
        if ts.tzinfo is None:
            ts = ts.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        return pd.NaT if ts is pd.NaT else ts.tz_convert("UTC").as_unit("us")
    except (ValueError, TypeError, OverflowError, NotImplementedError):
        return pd.NaT


def _to_number(s: pd.Series, present: np.ndarray) -> pd.Series:
    """Text to float64, NaN where absent or not a number (as `pd.to_numeric(errors="coerce")`).

    Arrow parses a column at once; it refuses the whole column on one bad value, and
    then pandas decides value by value."""
    values = pd.Series(s.where(present), dtype="str")
    try:
        parsed = pc.cast(pa.array(values.array), pa.float64())
        out = pd.Series(parsed.to_numpy(zero_copy_only=False), index=s.index, dtype="float64")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        out = pd.to_numeric(values, errors="coerce").astype("float64")
    return out.where(np.isfinite(out))  # "Infinity", 1e400: no quantity of a record


def _check_unique(s: pd.Series, check: Callable[[str], str | None]) -> pd.Series:
    """Run a per-value validator once per distinct value; the problem or None per row."""
    uniq = s.unique()
    problems = {v: check(v) for v in uniq}
    return s.map(problems)


def _validate(std: pd.DataFrame, spec: Spec, ds: Dataset, now: datetime,
              p: _Problems, districts: frozenset[str]) -> dict[str, pd.Series]:  # fmt: skip
    """Typed values per field; problems recorded in `p`."""
    typed: dict[str, pd.Series] = {}
    for name, f in ds.fields.items():
        if name == "source_id":
            continue
        if name not in std:
            if f.required and not (name in ("lon", "lat") and spec.format == "geojson"):
                p.add(np.ones(len(std), bool), "missing", name)
            continue
        s = std[name]
        present = (s != "").to_numpy()
        if f.required:
            p.add(~present, "missing", name)
        allowed = STATUS_CODES.get((ds.name, name))
        not_code = np.zeros(len(s), dtype=bool)
        if f.code_table or allowed:
            codes = code_values(f.code_table) if f.code_table else allowed
            not_code = present & ~s.isin(codes).to_numpy()
            p.add(not_code, "unknown_code", name, s, table=f.code_table or name)
        if f.kind == "text":
            if f.check == "plate":
                s = s.map(normalize_plate).astype("str")
                prob = _check_unique(
                    s.where(present, ""), lambda v: plate_problem(v) if v else None
                )
                p.add(prob.notna().to_numpy() & present, "bad_plate", name, s)
            elif f.check in ("id_number", "phone"):
                norm = normalize_id_number if f.check == "id_number" else normalize_phone
                s = s.map(norm).astype("str")
                fn = (
                    (lambda v: id_number_problem(v, today=now.date()))
                    if f.check == "id_number"
                    else phone_problem
                )  # noqa: E731
                prob = _check_unique(s.where(present, ""), lambda v, fn=fn: fn(v) if v else None)
                shown = s.map(lambda v, mk=_MASKS[f.check]: mk(v) or "")
                p.add(prob.notna().to_numpy() & present, f"bad_{f.check}", name, shown)
            if f.max_len:
                p.add(present & (s.str.len() > f.max_len).to_numpy(), "too_long", name,
                      limit=f.max_len)  # fmt: skip
            typed[name] = s.where(present, None)
        elif f.kind in ("int", "float"):
            num = _to_number(s, present)
            bad = present & num.isna().to_numpy()
            if f.kind == "int":
                bad |= present & (num.notna() & (num != num.round())).to_numpy()
            p.add(bad & ~not_code, "not_integer" if f.kind == "int" else "not_number", name, s)
            if f.kind == "int":  # a whole number the column cannot hold (1e20, 2**40)
                limit = _int_limit(ds, name)
                big = present & ~bad & (num.abs() > limit).to_numpy()
                p.add(big & ~not_code, "out_of_range", name, s, limit=limit)
                bad |= big
            typed[name] = num.where(~bad).round().astype("Int64") if f.kind == "int" else num
        elif f.kind in ("datetime", "date"):
            fmt = spec.datetime_formats.get(name, "ISO8601")
            zoneless = np.zeros(len(s), dtype=bool)
            if spec.zone_required and fmt not in EPOCH_FORMATS:
                zoneless = present & ~s.str.contains(_ZONE, na=False).to_numpy()
                p.add(zoneless, "no_zone", name, s)
            ts = _parse_times(s.where(~zoneless, ""), fmt, spec.local_zone)
            bad = present & ~zoneless & ts.isna().to_numpy()
            p.add(bad, "bad_datetime", name, s, format=fmt)
            bad |= zoneless
            ok = ~bad & present
            p.add(ok & (ts > now + FUTURE_SLACK).to_numpy(), "in_future", name, s)
            if f.kind == "datetime":
                oldest = now - timedelta(days=spec.max_age_days)
                p.add(ok & (ts < oldest).to_numpy(), "too_old", name, s, days=spec.max_age_days)
                typed[name] = ts
            else:
                typed[name] = ts.dt.tz_convert(spec.local_zone).dt.date.where(ok, None)
        elif f.kind == "bool":
            low = s.str.lower()
            val = pd.Series(np.where(low.isin(_TRUE), True, np.where(low.isin(_FALSE), False, None)),
                            index=s.index, dtype=object)  # fmt: skip
            p.add(present & val.isna().to_numpy(), "not_boolean", name, s)
            typed[name] = val.where(present, None)
    if "district_code" in typed:
        d = typed["district_code"]
        p.add(d.notna().to_numpy() & ~d.isin(districts).to_numpy(), "unknown_district",
              "district_code", std["district_code"])  # fmt: skip
    return typed


# --- transform --------------------------------------------------------------------------


def _h3_cells(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H3 cells at resolutions 7 and 8 as text: r8 from h3, r7 as its parent."""
    r8 = cells.from_points(lat, lon, 8)
    return cells.to_text(cells.parents(r8, 7)), cells.to_text(r8)


def _locate(typed: dict[str, pd.Series], spec: Spec, city: str, p: _Problems, city_shape) -> None:
    """Coordinates to WGS84, then city and district; points outside their city refused."""
    lon, lat = typed["lon"].to_numpy(), typed["lat"].to_numpy()
    ok = ~(np.isnan(lon) | np.isnan(lat))
    wlon, wlat = np.full(len(lon), np.nan), np.full(len(lat), np.nan)
    if ok.any():
        wlon[ok], wlat[ok] = convert(lon[ok], lat[ok], spec.crs, "wgs84")
    cities = np.full(len(lon), None, dtype=object)
    districts = np.full(len(lon), None, dtype=object)
    if ok.any():
        cities[ok], districts[ok] = assign_city_district(wlon[ok], wlat[ok])

    def shown() -> pd.Series:
        return typed["lon"].astype("str") + "," + typed["lat"].astype("str")

    outside = ok & np.equal(cities, None)
    elsewhere = ok & ~outside & (cities != city)
    near = np.zeros(len(lon), dtype=bool)
    candidates = np.flatnonzero(outside | elsewhere)
    if len(candidates) and spec.city_tolerance_km > 0:
        pts = shapely.points(wlon[candidates], wlat[candidates])
        km = shapely.distance(city_shape, pts) * _KM_PER_DEG
        near[candidates] = km <= spec.city_tolerance_km
    p.add(outside & ~near, "outside_province", "lon,lat", shown)
    p.add(elsewhere & ~near, "outside_city", "lon,lat", shown,
          city=city, found=lambda: pd.Series(cities).astype("str"))  # fmt: skip
    districts = np.where(near, None, districts)  # near the border: the city, no district
    typed["lon"] = pd.Series(np.round(wlon, 6), index=typed["lon"].index)
    typed["lat"] = pd.Series(np.round(wlat, 6), index=typed["lat"].index)
    assigned = pd.Series(districts, index=typed["lon"].index, dtype=object)
    if "district_code" in typed:  # the mapped district fills in where the point gave none
        assigned = assigned.where(assigned.notna(), typed["district_code"])
    typed["district_code"] = assigned


def _source_ids(frame: pd.DataFrame, spec: Spec, p: _Problems) -> pd.Series:
    if spec.key:
        parts = [frame[c].astype("str").str.strip() for c in spec.key]
        missing = np.zeros(len(frame), dtype=bool)
        for part in parts:
            missing |= (part == "").to_numpy()
        key = parts[0]
        for part in parts[1:]:
            key = key + "-" + part
        p.add(missing, "missing_key", "+".join(spec.key))
        p.add(~missing & (key.str.len() > 64).to_numpy(), "too_long", "source_id", key, limit=64)
        return key
    rows = frame.astype("str").to_numpy().tolist()
    return pd.Series(
        ["H" + hashlib.sha1("\x1f".join(r).encode()).hexdigest() for r in rows],
        index=frame.index,
        dtype="str",
    )


# --- the store side ---------------------------------------------------------------------


def _table_columns(ds: Dataset) -> list[str]:
    return [c.name for c in ds.table.columns if c.name != "id"]


def _defaults(ds: Dataset) -> dict[str, object]:
    out = {}
    for c in ds.table.columns:
        if c.default is not None and getattr(c.default, "is_scalar", False):
            out[c.name] = c.default.arg
    return out


def _canon(s: pd.Series) -> pd.Series:
    """Values as comparable text: times as UTC microseconds, floats to 6 places."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        out = s.dt.tz_convert("UTC").dt.as_unit("us").astype("int64").astype("str")
        return out.where(s.notna(), "")
    if s.dtype.kind == "f":
        return s.round(6).map(repr).where(s.notna(), "")
    return s.astype(object).map(lambda v: "" if v is None or v is pd.NA or v != v else str(v))


class _Writer:
    """Everything one ingest writes, on one connection inside one transaction."""

    def __init__(self, conn: Connection, session: Session, ds: Dataset, city: str, batch_id: int,
                 cipher: FieldCipher):  # fmt: skip
        self.conn, self.session, self.ds, self.city, self.batch_id = (
            conn,
            session,
            ds,
            city,
            batch_id,
        )
        self.cipher = cipher
        t = ds.table
        self.existing: dict[str, int] = {}
        self.lookup = False  # look keys up per chunk (see `plan`)
        self.table_rows: int | None = None  # counted up to what the plan needs (`_count`)
        # What `check_foreign_keys` reads on SQLite: the rows this batch inserts get ids
        # above the largest one now (the batch holds the write lock from its first write,
        # the batch row, on), and the rows it updates are kept by id.
        self.max_id_before = 0
        if conn.dialect.name == "sqlite":
            self.max_id_before = conn.execute(select(func.max(t.c.id))).scalar_one() or 0
        self.updated_ids: list[int] = []
        self.indexes: list = []
        self.foreign_keys: list = []
        self.compare = [c for c in _table_columns(ds)
                        if c not in ("created_at", "updated_at", "source_batch_id")
                        and not c.endswith("_enc")]  # fmt: skip
        # What an update overwrites, and so what its record version keeps.
        self.written = [c for c in _table_columns(ds)
                        if c not in ("created_at", "source_id", "city_code")]  # fmt: skip

    def _count(self, expected_rows: float) -> int:
        """The table's rows, counted no further than the plan compares them with (the
        batch's rows times `LOOKUP_RATIO`): a micro-batch does not count a table of
        millions (on PostgreSQL a scan of every partition)."""
        if self.table_rows is None:
            t, cap = self.ds.table, int(expected_rows * LOOKUP_RATIO) + 1
            some = select(t.c.id).limit(cap).subquery()
            self.table_rows = self.conn.execute(select(func.count()).select_from(some)).scalar_one()
        return self.table_rows

    def plan(self, expected_rows: float) -> None:
        """Find existing keys per chunk for a batch much smaller than the table (a
        micro-batch), else load the city's keys once (a file: one read beats many)."""
        t = self.ds.table
        if expected_rows * LOOKUP_RATIO < self._count(expected_rows):
            self.lookup = True
            return
        rows = self.conn.execute(select(t.c.source_id, t.c.id).where(t.c.city_code == self.city))
        self.existing = dict(rows.all())

    def maybe_drop_indexes(self, expected_rows: float) -> None:
        """A big load into a smaller table builds its indexes once at the end, from sorted
        input, instead of inserting every row into every index.

        PostgreSQL also drops the table's foreign keys, which it checks with a trigger
        per row (half the time of a load), and adds them back at the end, validated in
        one join each (as pg_restore does). Dropping takes the table's exclusive lock
        until the commit: readers of this table wait for the load. That is the price of
        a first load, which this is (the file is larger than the table).
        """
        table_rows = self._count(expected_rows)
        first_load = table_rows == 0 and expected_rows >= EMPTY_REBUILD_ROWS
        if not first_load and (expected_rows < REBUILD_ROWS or expected_rows <= table_rows):
            return
        self.indexes = sorted(self.ds.table.indexes, key=lambda ix: ix.name)
        for ix in self.indexes:
            ix.drop(self.conn)
        if self.conn.dialect.name == "postgresql":
            self.foreign_keys = sorted(self.ds.table.foreign_key_constraints,
                                       key=lambda fk: fk.name)  # fmt: skip
            for fk in self.foreign_keys:
                self.conn.execute(DropConstraint(fk))

    def rebuild_indexes(self) -> None:
        if self.indexes:
            before_index_build(self.conn)
        for ix in self.indexes:
            ix.create(self.conn)
        for fk in self.foreign_keys:
            self.conn.execute(AddConstraint(fk, isolate_from_table=False))

    def split_existing(self, keys: pd.Series) -> np.ndarray:
        if self.lookup:
            t, wanted = self.ds.table, keys.unique().tolist()
            for start in range(0, len(wanted), 500):
                q = select(t.c.source_id, t.c.id).where(
                    t.c.city_code == self.city, t.c.source_id.in_(wanted[start : start + 500])
                )
                self.existing.update(dict(self.conn.execute(q).all()))
        if not self.existing:
            return np.zeros(len(keys), dtype=bool)
        return np.fromiter(map(self.existing.__contains__, keys.tolist()), bool, len(keys))

    def changed(self, new: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame, dict]:
        """For rows whose key is in the store: does any compared column differ? Also the
        stored rows (the columns an update writes, as stored, by position) and, per
        compared column, which rows differ in it (clear values: `old[c]`, `opened[c]`)."""
        t = self.ds.table
        ids = [self.existing[k] for k in new["source_id"]]
        cols = ["id", *dict.fromkeys([*self.compare, *self.written])]
        old_parts = []
        for start in range(0, len(ids), 500):
            q = select(*[t.c[c] for c in cols]).where(t.c.id.in_(ids[start : start + 500]))
            old_parts.append(pd.DataFrame(self.conn.execute(q).all(), columns=cols))
        old = pd.concat(old_parts).set_index("id").reindex(ids).reset_index()
        differs = np.zeros(len(new), dtype=bool)
        per_field: dict[str, tuple[np.ndarray, pd.Series, pd.Series]] = {}
        for c in [c for c in self.compare if c in new.columns]:
            a = new[c].reset_index(drop=True)
            b = old[c]
            if c in self.ds.fields and self.ds.fields[c].narrative:
                b = _opened(b, self.cipher)  # a token's ciphertext differs on every seal
            if isinstance(new[c].dtype, pd.DatetimeTZDtype):
                b = pd.to_datetime(b, utc=True)
            elif new[c].dtype.kind == "f":
                b = pd.to_numeric(b)
            diff = (_canon(a) != _canon(b)).to_numpy()
            if diff.any():
                per_field[c] = (diff, b, a)
            differs |= diff
        return differs, old, per_field

    def insert(self, frame: pd.DataFrame) -> None:
        if len(frame):
            write_frame(self.conn, self.ds.table, frame)

    def update(self, frame: pd.DataFrame, stored_ts: list | None = None) -> None:
        """Overwrite stored records with the rows of `frame` (found by their keys).

        A record is addressed by its id and, where the table has one, its stored time:
        the partition key on PostgreSQL (`hub.partitions`), so that the update reads one
        day's partition instead of probing all of them. A new time moves the row."""
        if not len(frame):
            return
        t = self.ds.table
        cols = [c for c in frame.columns if c not in ("created_at", "source_id", "city_code")]
        where = t.c.id == bindparam("_id")
        by_time = "ts" in t.c and stored_ts is not None
        if by_time:
            where &= t.c.ts == bindparam("_ts", type_=t.c.ts.type)
        stmt = update(t).where(where).values({c: bindparam(c) for c in cols})
        rows = frame[cols].astype(object).where(frame[cols].notna(), None).to_dict("records")
        for row, key in zip(rows, frame["source_id"], strict=True):
            row["_id"] = self.existing[key]
        self.updated_ids.extend(row["_id"] for row in rows)
        if by_time:
            for row, ts in zip(rows, stored_ts, strict=True):
                row["_ts"] = pd.Timestamp(ts).to_pydatetime()
        done = self.conn.execute(stmt, rows).rowcount
        if done not in (-1, len(rows)):  # a record moved or went away under the batch
            raise FeedError("store_refused", f"{len(rows) - done} of {len(rows)} records to "
                            "update were not found as they were read", detail=t.name)  # fmt: skip

    def versions(self, frame: pd.DataFrame) -> None:
        if len(frame):
            write_frame(self.conn, VERSIONS, frame)

    def rejects(self, rows: list[tuple[int, str, str]]) -> None:
        if rows:
            df = pd.DataFrame(rows, columns=["row_number", "raw", "reasons"])
            df.insert(0, "batch_id", self.batch_id)
            write_frame(self.conn, m.FeedReject.__table__, df)

    def check_foreign_keys(self) -> None:
        """SQLite: refuse the batch if one of its rows refers to a missing record.

        Foreign keys are off during an ingest (`_sqlite_fast`) and checked here once, for
        the rows of this batch only: the records it inserted or updated and its rejected
        rows. A check of the whole table (`PRAGMA foreign_key_check`) would cost a scan of
        the largest table for every micro-batch of a stream. PostgreSQL checks every row
        as it is written (or validates a dropped key as it adds it back).
        """
        if self.conn.dialect.name != "sqlite":
            return
        t, batch, ids = self.ds.table, self.batch_id, self.updated_ids
        if len(ids) > FK_CHECK_IDS:  # a big update: one pass over the table
            checks = [(t.name, "batch", batch)]
        else:  # the rows inserted (ids above those before), the rows updated (by id)
            checks = [(t.name, "after", self.max_id_before),
                      *((t.name, "ids", ids[i : i + 500]) for i in range(0, len(ids), 500))]  # fmt: skip
        for name, scope, value in [*checks, ("feed_rejects", "batch", batch)]:
            query, parents = _missing_parent_query(name, scope)
            row = self.conn.execute(query, {"scope": value}).first()
            if row is not None:
                parent, column = next(
                    p for p, broken in zip(parents, row[1:], strict=True) if broken
                )
                raise FeedError("store_refused", f"{name}: a row refers to a missing record",
                                detail=str((name, row[0], parent, column)))  # fmt: skip


@functools.cache
def _missing_parent_query(name: str, scope: str):
    """The first row of table `name` within `scope` whose foreign key finds no parent: one
    pass, a lookup per key and row, as `PRAGMA foreign_key_check` makes (a key with a
    null column refers to nothing). Scopes, bound as ``scope``: ``after`` (ids above),
    ``ids`` (a list of ids), ``batch`` (the feed batch's rows). With each key's parent
    table and first column, in the order of the flags the row carries after its id."""
    table = m.Base.metadata.tables[name]
    batch_column = table.c.batch_id if name == "feed_rejects" else table.c.source_batch_id
    where = {
        "after": lambda: table.c.id > bindparam("scope"),
        "ids": lambda: table.c.id.in_(bindparam("scope", expanding=True)),
        "batch": lambda: batch_column == bindparam("scope"),
    }[scope]()
    keys = sorted(table.foreign_key_constraints, key=lambda fk: fk.name)
    joined, broken, shown = table, [], [table.c.id]
    for i, fk in enumerate(keys):
        parent = fk.referred_table.alias(f"p{i}")
        pairs = [(e.parent, parent.c[e.column.name]) for e in fk.elements]
        joined = joined.outerjoin(parent, and_(*(c == p for c, p in pairs)))
        missing = and_(*(c.is_not(None) for c, _ in pairs), pairs[0][1].is_(None))
        broken.append(missing)
        shown.append(missing.label(f"missing{i}"))
    query = select(*shown).select_from(joined).where(where, or_(*broken)).limit(1)
    return query, [(fk.referred_table.name, fk.elements[0].parent.name) for fk in keys]


# --- the run ----------------------------------------------------------------------------


@dataclass
class _Tally:
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicate: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    filled: Counter = field(default_factory=Counter)
    lags: list = field(default_factory=list)
    timings: Counter = field(default_factory=Counter)
    changed_fields: Counter = field(default_factory=Counter)
    samples: dict = field(default_factory=dict)  # a dry run's before/after per field
    reject_samples: list = field(default_factory=list)  # a dry run's first rejected rows


class _Seen:
    """The first accepted row of each key of the file so far: its content hash and row.

    Whole-chunk operations only: one dict lookup mapped over the keys (no Python code
    per row) finds keys of earlier chunks, `np.unique` finds repeats within the chunk.
    """

    def __init__(self) -> None:
        self.position: dict[str, int] = {}  # key -> index into the arrays below
        self._hashes: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        self._joined: tuple[np.ndarray, np.ndarray] | None = None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._joined is None:
            self._joined = (np.concatenate(self._hashes), np.concatenate(self._rows))
        return self._joined

    def classify(
        self, keys: list[str], content: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Accepted rows of a chunk, in file order -> (duplicate, row of the conflicting
        first row or 0). A repeat with the same content hash is a duplicate, with other
        content a conflict; first occurrences are remembered for later chunks."""
        n = len(keys)
        ref_hash, ref_row = np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=np.int64)
        prior = np.fromiter(map(self.position.get, keys, repeat(-1)), np.int64, n)
        earlier = prior >= 0
        if earlier.any():
            hashes, first_rows = self._arrays()
            ref_hash[earlier], ref_row[earlier] = hashes[prior[earlier]], first_rows[prior[earlier]]
        codes, _ = pd.factorize(np.asarray(keys, dtype=object))
        _, first_of_code = np.unique(codes, return_index=True)
        first = first_of_code[codes]
        within = ~earlier & (first != np.arange(n))
        ref_hash[within], ref_row[within] = content[first[within]], rows[first[within]]
        repeated = earlier | within
        dup = repeated & (ref_hash == content)
        new = np.flatnonzero(~repeated)
        base = len(self.position)
        fresh = np.asarray(keys, dtype=object)[new].tolist()
        self.position.update(zip(fresh, range(base, base + len(new)), strict=True))
        self._hashes.append(content[new])
        self._rows.append(rows[new])
        self._joined = None
        return dup, np.where(repeated & ~dup, ref_row, 0)


def _may_hold(s: pd.Series) -> np.ndarray:
    """Rows whose text may hold an identifier (a vectorised pre-check of the narrative
    finders, so that the per-row work runs only on the few rows with digit runs)."""
    return s.str.contains(MAY_HOLD.pattern, regex=True, na=False).to_numpy(dtype=bool)


def _opened(s: pd.Series, cipher: FieldCipher) -> pd.Series:
    """Stored narratives with their tokens decrypted, to compare with a new feed row."""
    sealed = s.str.contains("⟦", regex=False, na=False).to_numpy(dtype=bool)
    if not sealed.any():
        return s
    s = s.astype(object).copy()
    s[sealed] = [reveal(v, cipher, mask_ids=False, mask_phones=False) for v in s[sealed]]
    return s


def _seal_narratives(frame: pd.DataFrame, ds: Dataset, cipher: FieldCipher) -> pd.DataFrame:
    """ID numbers and phones in the narrative columns replaced by encrypted tokens.

    Runs on the rows about to be written, after duplicates and changes were found on the
    clear text: a token's ciphertext differs on every seal, the clear text does not."""
    for name, f in ds.fields.items():
        if not f.narrative or name not in frame.columns:
            continue
        hit = _may_hold(frame[name])
        if hit.any():
            col = frame[name].astype(object).copy()
            col[hit] = [seal(v, cipher, max_len=f.max_len) for v in col[hit]]
            frame = frame.assign(**{name: col})
    return frame


def _sealed_reasons(reasons: list[dict], cipher: FieldCipher) -> str:
    """A rejected row's reasons as stored: the offending values encrypted, since they are
    fragments of the row (an ID number in a wrong column, a plate)."""
    out = [
        {**r, "value": seal_value(r["value"], cipher)}
        if "value" in r and r["code"] not in LINE_VALUES else r
        for r in reasons
    ]  # fmt: skip
    return json.dumps(out, ensure_ascii=False, default=str)


def _raw_json(frame: pd.DataFrame, positions: np.ndarray) -> list[str]:
    sub = frame.iloc[positions]
    return [json.dumps(r, ensure_ascii=False)[:4000] for r in sub.to_dict("records")]


def _field_name(ds: Dataset, column: str) -> str:
    """The standard field a stored column holds (an identifier's blind index: its field)."""
    return ds.derived.get(column, column)


def _shown(value: object) -> str:
    if (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and value != value)
    ):
        return ""
    if isinstance(value, pd.Timestamp | datetime):
        return (
            pd.Timestamp(value).tz_convert("UTC").isoformat()
            if pd.Timestamp(value).tzinfo
            else str(value)
        )
    return str(value)[:200]


@dataclass
class _Check:
    """What the checks of a chunk need: the same for every chunk of a batch, handed once
    to each worker process (`_worker_start`)."""

    spec: Spec
    ds: Dataset
    city: str
    cipher: FieldCipher
    now: datetime
    batch_id: int
    city_shape: object
    districts: frozenset[str]
    defaults: dict[str, object]
    cameras: dict[str, int] | None
    prose: list[str]


@dataclass
class _Checked:
    """A chunk after its checks: the records as they would be stored, their problems,
    and what the batch accumulates from them (filled fields, text for the guardrails)."""

    out: pd.DataFrame
    keys: pd.Series
    problems: _Problems
    content: np.ndarray  # hash of each accepted row's record (rows without a problem)
    filled: dict[str, int]
    text: guardrails.Watch


def _check(c: _Check, frame: pd.DataFrame) -> _Checked:
    """Map, validate, convert, locate and build the records of one chunk: everything that
    needs no store and no earlier chunk, so that it can run in a worker process."""
    n = len(frame)
    p = _Problems(n)
    std = _map(frame, c.spec, c.ds)
    filled = {name: int((std[name] != "").sum()) for name in c.ds.fields if name in std}
    text = guardrails.Watch()
    for name in c.prose:
        text.text(name, std[name])
    typed = _validate(std, c.spec, c.ds, c.now, p, c.districts)
    keys = _source_ids(frame, c.spec, p)
    if c.ds.has_point and "lon" in typed and "lat" in typed:
        with np.errstate(over="ignore", invalid="ignore"):  # 1e308: refused, not a warning
            _locate(typed, c.spec, c.city, p, c.city_shape)
    out = _records(c, typed, keys, n, p)
    accepted = np.flatnonzero(~p.any)
    content = pd.util.hash_pandas_object(
        out.iloc[accepted].drop(columns=["created_at", "updated_at"]), index=False
    ).to_numpy()
    return _Checked(out, keys, p, content, filled, text)


_WORKER: _Check | None = None  # in a worker process: the batch it checks chunks of


def _worker_start(c: _Check) -> None:
    global _WORKER
    _WORKER = c


def _worker_check(frame: pd.DataFrame) -> _Checked:
    assert _WORKER is not None, "a worker process without its batch"
    return _check(_WORKER, frame)


def default_workers(cpus: int | None = None) -> int:
    """Worker processes for the checks when none are set: none on two cores or fewer (the
    ingest's own process checks while its writer thread stores; a third process would only
    take turns with them), else all cores but two (the writer and the database keep one
    each)."""
    cpus = cpus or os.cpu_count() or 1
    return 0 if cpus <= 2 else cpus - 2


def _warm_geo() -> None:
    """Build the point-in-polygon grids once in this process, before workers are forked
    from it: each then starts with them instead of building its own."""
    assign_city_district(np.array([117.28]), np.array([31.86]))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


@functools.lru_cache(maxsize=64)
def _city_geometry(boundaries, city: str) -> tuple[object, frozenset[str]]:
    """A city's outline (None: no such city) and its districts' adcodes, looked up once
    per process (`load_boundaries` returns the same object for the same file)."""
    b = boundaries
    shape = next(iter(b.cities.geometry[(b.cities["adcode"] == city).to_numpy()]), None)
    return shape, frozenset(b.districts.loc[b.districts["parent_adcode"] == city, "adcode"])


def _writer_pool() -> ThreadPoolExecutor:
    """The process's writer threads, shared by its ingests: a stream's micro-batch does
    not start (and wait for) a thread of its own. A run has at most one write pending
    (`_Run.drain` before each), so its chunks are written in order."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ingest-write")
        return _POOL


class _Run:
    def __init__(self, spec: Spec, ds: Dataset, city: str, cipher: FieldCipher, now: datetime,
                 writer: _Writer, started: datetime, dry_run: bool = False,
                 workers: int = 0) -> None:  # fmt: skip
        self.spec, self.ds, self.city, self.cipher, self.now = spec, ds, city, cipher, now
        self.w, self.started, self.dry_run = writer, started, dry_run
        self.guard = guardrails.Watch()
        self.tally = _Tally()
        self.seen = _Seen()
        city_shape, districts = _city_geometry(load_boundaries(), city)
        cameras: dict[str, int] | None = None
        if "camera" in ds.fields:
            t = m.Camera.__table__
            rows = writer.conn.execute(select(t.c.source_id, t.c.id).where(t.c.city_code == city))
            cameras = dict(rows.all())
        self.check = _Check(
            spec=spec, ds=ds, city=city, cipher=cipher, now=now, batch_id=writer.batch_id,
            city_shape=city_shape, districts=districts,
            defaults=_defaults(ds), cameras=cameras,
            # Free text a wrong encoding garbles: not codes, identifiers or value-mapped fields.
            prose=[n for n, f in ds.fields.items() if f.kind == "text" and not f.code_table
                   and not f.check and n not in spec.values and n in spec.columns],
        )  # fmt: skip
        # Worker processes check chunks while this one compares, seals and hands chunks to
        # the writer thread; started at the second chunk (`_start_workers`), so that a
        # file of one chunk (a stream's micro-batch) never starts any.
        self.workers = max(0, int(workers))
        self.procs: ProcessPoolExecutor | None = None
        self.queue: deque[tuple[Chunk, Future]] = deque()
        self.pool = _writer_pool()
        self.pending: Future | None = None
        # PostgreSQL: chunks of new rows are held until `HOLD_ROWS` and written in one
        # COPY (below `_hold`); SQLite writes each chunk as it comes.
        self.held: list[tuple] = []
        self.held_rows = 0
        self.hold_rows = HOLD_ROWS if writer.conn.dialect.name == "postgresql" else 0

    def _start_workers(self) -> None:
        """Fork the worker processes (the batch's context is inherited, not pickled), with
        the writer thread idle and the boundary grids built here once for all of them."""
        self.drain()
        _warm_geo()
        self.procs = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("fork"),
            initializer=_worker_start, initargs=(self.check,),
        )  # fmt: skip

    def chunk(self, chunk: Chunk) -> None:
        """Check a chunk (here, or in a worker process) and store it when its turn comes."""
        frame = chunk.frame.reset_index(drop=True)
        if self.workers and self.procs is None and self.tally.read:
            self._start_workers()
        if self.procs is None:
            t0 = time.perf_counter()
            checked = _check(self.check, frame)
            self.tally.timings["validate"] += time.perf_counter() - t0
            self._store(chunk, checked)
            return
        self.queue.append((chunk, self.procs.submit(_worker_check, frame)))
        while len(self.queue) > self.workers:  # every worker busy with one chunk
            self._next()

    def finish(self) -> None:
        """Store the chunks still being checked and those held, then wait for the last
        write."""
        while self.queue:
            self._next()
        self._release()
        self.drain()

    def _next(self) -> None:
        chunk, future = self.queue.popleft()
        t0 = time.perf_counter()
        checked = future.result()
        self.tally.timings["validate_wait"] += time.perf_counter() - t0
        self._store(chunk, checked)

    def _store(self, chunk: Chunk, checked: _Checked) -> None:
        """A checked chunk: repeats, rejects, comparison with the store, the write."""
        t0 = time.perf_counter()
        tally, frame, n = self.tally, chunk.frame.reset_index(drop=True), len(chunk.frame)
        # Rejected rows are records: stored encrypted, shown by policy (hub.quality).
        rejects: list[tuple[int, str, str]] = [
            (rp.row_number, seal_value(rp.raw, self.cipher),
             _sealed_reasons([{"code": rp.code, "field": "", **rp.params}], self.cipher))
            for rp in chunk.problems
        ]  # fmt: skip
        for rp in chunk.problems:
            tally.reasons[rp.code] += 1
            if self.dry_run and len(tally.reject_samples) < PREVIEW_REJECTS:
                tally.reject_samples.append({"row_number": rp.row_number,
                                             "reasons": [{"code": rp.code, **rp.params}]})  # fmt: skip
        tally.read += n + len(chunk.problems)
        tally.filled.update(checked.filled)
        self.guard.merge_text(checked.text)
        out, keys, p = checked.out, checked.keys, checked.problems
        # Repeats inside the file: same key and content as an earlier row -> duplicate;
        # same key, other content -> rejected (which one is right cannot be told).
        rows, accepted = chunk.rows, np.flatnonzero(~p.any)
        dup = np.zeros(n, dtype=bool)
        conflict_with = np.zeros(n, dtype=np.int64)
        dup[accepted], conflict_with[accepted] = self.seen.classify(
            keys.iloc[accepted].tolist(), checked.content, rows[accepted]
        )
        p.add(conflict_with > 0, "conflicting_duplicate", "source_id",
              lambda: pd.Series(conflict_with).astype("str"))  # fmt: skip
        bad = p.any
        t1 = time.perf_counter()
        tally.timings["validate"] += t1 - t0
        if bad.any():
            positions = np.flatnonzero(bad)
            raws = _raw_json(frame, positions)
            reasons = p.reasons(positions)
            for pos, raw in zip(positions, raws, strict=True):
                rs = reasons[int(pos)]
                for r in rs:
                    tally.reasons[r["code"]] += 1
                if self.dry_run and len(tally.reject_samples) < PREVIEW_REJECTS:
                    tally.reject_samples.append({"row_number": int(rows[pos]), "reasons": rs})
                rejects.append(
                    (int(rows[pos]), seal_value(raw, self.cipher), _sealed_reasons(rs, self.cipher))
                )
        keep = ~bad & ~dup
        tally.duplicate += int(dup.sum())
        tally.rejected += len(rejects)
        good = out[keep]
        if self.ds.time_field and self.ds.time_field in good:
            lag = (pd.Timestamp(self.started) - good[self.ds.time_field]).dt.total_seconds()
            tally.lags.append(lag.dropna().to_numpy())
        if self.w.lookup:
            self.drain()  # the store is read: the previous chunk's write must be in
        exists = self.w.split_existing(good["source_id"])
        fresh, known = good[~exists], good[exists]
        history = [version_frame(self.w.batch_id, self.ds.name, self.city, fresh["source_id"],
                                 rows[fresh.index], "insert")]  # fmt: skip
        stored_ts = None
        if len(known):
            self.drain()  # the store is read: the previous chunk's write must be in
            changed, old, per_field = self.w.changed(known)
            tally.unchanged += int((~changed).sum())
            self._changes(known, changed, old, per_field)
            known = known[changed].drop(columns=["created_at"])
            if "ts" in old:
                stored_ts = old.loc[changed, "ts"].tolist()
            before = old.loc[changed, self.w.written].astype(object)
            history.append(version_frame(
                self.w.batch_id, self.ds.name, self.city, known["source_id"], rows[known.index],
                "update", record_ids=old.loc[changed, "id"].tolist(),
                previous=previous_json(before.where(before.notna(), None).to_dict("records")),
            ))  # fmt: skip
        tally.timings["compare"] += time.perf_counter() - t1
        if self.ds.time_field in fresh:
            # Rows in time order: the time-led indexes then build from sorted runs,
            # about twice as fast as from a file's arbitrary order.
            fresh = fresh.sort_values(self.ds.time_field, kind="stable")
        # Keys inserted by this batch need not join `existing`: they are in `seen`, so a
        # later row with one of them is a duplicate or a conflict, never an update.
        tally.inserted += len(fresh)
        tally.updated += len(known)
        t2 = time.perf_counter()
        fresh = _seal_narratives(fresh, self.ds, self.cipher)
        known = _seal_narratives(known, self.ds, self.cipher)
        tally.timings["seal"] += time.perf_counter() - t2
        self._hold((fresh, known, stored_ts, rejects, history))

    def _hold(self, part: tuple) -> None:
        """Hand a chunk's writes to the writer thread, or hold them for the next.

        On PostgreSQL every statement fires the rollups' statement triggers once (a
        grouped upsert of the rows it wrote, `hub.rollup`), and a COPY into a table with
        such triggers goes row by row whatever its size: thirty COPYs of 30,000 rows
        cost a third more than one of the same million rows. A first load's new rows are
        therefore held until `HOLD_ROWS` and written in one COPY. A chunk that updates
        stored rows, and any chunk of a batch that looks its keys up in the store (a
        stream's micro-batches), is written at once with whatever is held before it.
        """
        fresh, known = part[0], part[1]
        self.held.append(part)
        self.held_rows += len(fresh)
        # The first write goes out sooner: until it does, the writer thread idles.
        enough = self.hold_rows if self.pending is not None else self.hold_rows // 5
        if len(known) or self.w.lookup or self.held_rows >= enough:
            self._release()

    def _release(self) -> None:
        if not self.held:
            return
        parts, self.held, self.held_rows = self.held, [], 0
        self.drain()
        self.pending = self.pool.submit(self._write_parts, parts)

    def _write_parts(self, parts: list[tuple]) -> None:
        if len(parts) == 1:
            return self._write(*parts[0])
        fresh = pd.concat([p[0] for p in parts if len(p[0])] or [parts[0][0]])
        history: dict[tuple, list[pd.DataFrame]] = {}
        for p in parts:
            for frame in p[4]:
                history.setdefault(tuple(frame.columns), []).append(frame)
        # Only the last part can update stored rows: `_hold` releases at an update.
        self._write(fresh, parts[-1][1], parts[-1][2], [r for p in parts for r in p[3]],
                    [pd.concat(frames) for frames in history.values()])  # fmt: skip

    def _changes(self, known: pd.DataFrame, changed: np.ndarray, old: pd.DataFrame,
                 per_field: dict) -> None:  # fmt: skip
        """Count changed fields, feed the guardrails, keep a dry run's before/after samples."""
        ds = self.ds
        self.guard.compared += len(known)
        for c, (diff, before, after) in per_field.items():
            if c in ds.fields:  # a field's value emptied, or set back to its default
                self.guard.lost(c, before.reset_index(drop=True), after.reset_index(drop=True),
                                diff, self.check.defaults.get(c))  # fmt: skip
            name = _field_name(ds, c)
            self.tally.changed_fields[name] += int(diff.sum())
            if not self.dry_run or name != c:  # identifiers: a blind index, never shown
                continue
            samples = self.tally.samples.setdefault(name, [])
            for i in np.flatnonzero(diff)[: PREVIEW_SAMPLES - len(samples)]:
                samples.append({"source_id": str(known["source_id"].iloc[i]),
                                "before": _shown(before.iloc[i]), "after": _shown(after.iloc[i])})  # fmt: skip
        times = [n for n, f in ds.fields.items() if f.kind == "datetime"]
        new = known.reset_index(drop=True)[changed]
        was = old[changed].copy()
        for c in times:
            if c in was:
                was[c] = pd.to_datetime(was[c], utc=True)
        self.guard.changed(was, new, times)

    def _write(self, fresh: pd.DataFrame, known: pd.DataFrame, stored_ts: list | None,
               rejects: list, history: list[pd.DataFrame]) -> None:  # fmt: skip
        """One chunk into the store, on the writer thread while the next chunk is read and
        checked: the database works outside the interpreter lock, so the two overlap."""
        started = time.perf_counter()
        self.w.insert(fresh)
        self.w.update(known, stored_ts)
        self.w.rejects(rejects)
        for frame in history:
            self.w.versions(frame)
        self.tally.timings["write"] += time.perf_counter() - started

    def drain(self) -> None:
        """Wait for the chunk being written; its error, if any, is raised here."""
        if self.pending is not None:
            started = time.perf_counter()
            pending, self.pending = self.pending, None
            try:
                pending.result()
            finally:
                self.tally.timings["write_wait"] += time.perf_counter() - started

    def close(self) -> None:
        """No write left running (before a commit or a rollback; its error, if any, is
        `drain`'s), then no worker process."""
        if self.pending is not None:
            wait([self.pending])
        if self.procs is not None:
            self.procs.shutdown(wait=True, cancel_futures=True)
            self.queue.clear()

    def stats(self) -> dict:
        t = self.tally
        lags = np.concatenate(t.lags) if t.lags else np.array([])
        parsed = max(1, t.read)
        completeness = {name: round(t.filled[name] / parsed, 4) for name in self.ds.fields
                        if name != "source_id"}  # fmt: skip
        # The fields this feed is meant to supply: those its spec maps (not constants).
        supplied = [n for n in self.spec.columns if n in completeness]
        if self.spec.format == "geojson" and self.ds.has_point:
            supplied += ["lon", "lat"]
        out = {
            "completeness": completeness,
            "completeness_overall": round(float(np.mean(list(completeness.values()))), 4) if completeness else None,
            "completeness_feed": round(float(np.mean([completeness[n] for n in supplied])), 4) if supplied else None,
            "reasons": dict(t.reasons.most_common()),
            "changed_fields": dict(t.changed_fields.most_common()),
        }  # fmt: skip
        if len(lags):
            out["lag_s"] = {
                "p50": float(np.percentile(lags, 50)),
                "p90": float(np.percentile(lags, 90)),
                "max": float(lags.max()),
                # Counts, so that timeliness adds up over every batch of a feed.
                "n": int(len(lags)),
                "within_24h": int((lags <= 86_400).sum()),
            }
        return out


HOLD_ROWS = 250_000  # new rows held for one COPY on PostgreSQL (`_Run._hold`)


def _records(c: _Check, typed: dict[str, pd.Series], keys: pd.Series, n: int,
             p: _Problems) -> pd.DataFrame:  # fmt: skip
    """The rows to store, in the table's columns (identifiers encrypted and blind-indexed)."""
    ds, now = c.ds, pd.Timestamp(c.now)
    idx = keys.index
    out: dict[str, object] = {
        "source_id": keys,
        "classification": typed.get("classification", pd.Series(None, index=idx, dtype=object)),
        "created_at": now,
        "updated_at": now,
        "city_code": c.city,
        "source_batch_id": c.batch_id,
    }
    cls = out["classification"]
    out["classification"] = cls.where(cls.notna(), c.spec.classification)
    for name, f in ds.fields.items():
        if name in typed and f.check not in ("id_number", "phone") and name != "camera":
            out[name] = typed[name]
    for col in ds.table.columns:
        if col.name in c.defaults and col.name in out:
            s = out[col.name]
            out[col.name] = s.where(s.notna(), c.defaults[col.name])
        elif col.name in c.defaults and col.name not in out and col.name != "id":
            out[col.name] = c.defaults[col.name]
    if "district_code" in ds.table.c and "district_code" not in out:
        out["district_code"] = None
    if ds.name == "incidents":
        ts = typed["ts"]
        rep = typed.get("reported_at")
        out["reported_at"] = ts if rep is None else rep.where(rep.notna(), ts)
        lat, lon = typed["lat"].to_numpy(), typed["lon"].to_numpy()
        # A point off the earth (refused as outside the province) has no cell either.
        with np.errstate(invalid="ignore"):
            ok = (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        r7 = np.full(n, None, dtype=object)
        r8 = np.full(n, None, dtype=object)
        if ok.any():
            r7[ok], r8[ok] = _h3_cells(lat[ok], lon[ok])
        out["h3_r7"], out["h3_r8"] = r7, r8
    if c.cameras is not None:
        cam = typed["camera"]
        ids = cam.map(c.cameras)
        p.add(cam.notna().to_numpy() & ids.isna().to_numpy(), "unknown_camera", "camera", cam)
        out["camera_id"] = ids.astype("Int64")
    for col, virtual in ds.derived.items():
        if col == "camera_id":
            continue
        values = typed.get(virtual)
        kind = ds.fields[virtual].check
        if values is None:
            out[col] = None
        elif col.endswith("_enc"):
            # a missing optional identifier arrives as None or as NaN (v != v)
            out[col] = [None if v is None or v != v else c.cipher.encrypt(kind, v)
                        for v in values]  # fmt: skip
        else:
            out[col] = [None if v is None or v != v else c.cipher.blind_index(kind, v)
                        for v in values]  # fmt: skip
    if any(c.endswith("_enc") for c in ds.derived):
        out["key_id"] = c.cipher.key_id
    frame = pd.DataFrame(out, index=idx)
    return frame[[c for c in _table_columns(ds) if c in frame.columns]]


def _sqlite_fast(
    conn: Connection, on: bool, big: bool = False, cache: int | None = None
) -> int | None:
    """One large transaction: foreign keys checked once at the end of it
    (`_Writer.check_foreign_keys`), and a page cache of at least `FEED_CACHE_KIB` (a
    `big` feed: `BIG_FEED_CACHE_KIB`). ``on`` returns the cache size a big feed replaced
    (as `PRAGMA cache_size` gives it), which ``on=False`` with it as `cache` puts back.

    A small feed (a stream's micro-batch) leaves its cache in place: shrinking it after
    each batch would empty it, and every next micro-batch would read its index pages from
    the file again. SQLite allocates cache pages only as it reads them.
    """
    if conn.dialect.name != "sqlite":
        return None
    # On the driver's connection: through SQLAlchemy the pragma would begin a transaction,
    # and foreign_keys only changes outside one.
    raw = conn.connection.driver_connection
    before = None
    if on:
        now = raw.execute("PRAGMA cache_size").fetchone()[0]
        kib = -now if now < 0 else now * raw.execute("PRAGMA page_size").fetchone()[0] // 1024
        want = BIG_FEED_CACHE_KIB if big else FEED_CACHE_KIB
        if kib < want:
            raw.execute(f"PRAGMA cache_size=-{want}")
            before = now if big else None
    elif cache is not None:
        raw.execute(f"PRAGMA cache_size={int(cache)}")
    raw.execute("PRAGMA foreign_keys=OFF" if on else "PRAGMA foreign_keys=ON")
    if not on:
        raw.execute("PRAGMA threads=0")  # set for an index rebuild (`_Writer.rebuild_indexes`)
    return before


def _audit(session: Session, principal: Principal | None, report: BatchReport, now: datetime,
           source_name: str) -> None:  # fmt: skip
    audit.record(
        session, principal, "ingest", now=now, username=None if principal else "cli",
        dataset=report.dataset[:32],
        query={"city": report.city_code, "spec": report.spec_name, "file": source_name[:200]},
        result_count=report.rows_inserted + report.rows_updated,
        owner_cities=[report.city_code], decision=report.error_code or report.status,
        detail={"batch_id": report.batch_id, "read": report.rows_read,
                "inserted": report.rows_inserted, "updated": report.rows_updated,
                "unchanged": report.rows_unchanged, "duplicate": report.rows_duplicate,
                "rejected": report.rows_rejected},
    )  # fmt: skip


def ingest(
    engine: Engine,
    *,
    city_code: str,
    spec: Spec,
    source: BinaryIO,
    source_name: str,
    cipher: FieldCipher,
    principal: Principal | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    limits: Limits = Limits(),
    dry_run: bool = False,
    accept: frozenset[str] | tuple[str, ...] = (),
    workers: int | None = None,
    after_write: Callable[[Session, BatchReport], None] | None = None,
) -> BatchReport:
    """Ingest one feed file of one city under a spec; the batch report.

    Parameters
    ----------
    city_code
        Adcode of the city whose feed this is (the owner of every row).
    spec
        The validated mapping spec (`hub.ingest.spec.load_spec`).
    source
        The file, opened in binary mode (seekable).
    principal
        Who ingests (None: the command line); recorded in the audit entry.
    progress
        Called after each chunk with the share of the file read and the rows so far.
    dry_run
        Do everything but commit: the report (``dry_run=True``) says what would be
        inserted, updated (``preview``: before/after samples per field), left, rejected
        and found; a batch that would fail is reported (status ``failed``), not raised,
        and nothing is stored, not even the failure.
    accept
        Guardrail finding codes the operator means (``hub.ingest.guardrails``): such
        findings are reported, and do not fail the batch.
    workers
        Processes that check chunks (map, validate, convert, locate) beside this one;
        0 checks them here. None: the setting ``HUB_INGEST_WORKERS``, else
        `default_workers` (none on two cores or fewer). Counts, rejects, history and
        the stored rows are the same for any number.
    after_write
        Called with the batch's session and its final report once everything is
        written and audited, before the commit (never on a dry run): what it writes
        commits with the batch's rows or not at all (the stream's plate-watch hits:
        ``hub.watch.match_batch(session, report.batch_id)``). An exception from it
        rolls the whole batch back and is raised as the pipeline's own are; a caller
        that wants the rows kept whatever it does catches its own errors inside a
        savepoint (``session.begin_nested()``).

    Raises
    ------
    FeedError
        A fatal problem; nothing was stored but the failed batch row and its audit entry.
    """
    now = now or _now()
    started = time.perf_counter()
    if workers is None:
        from hub.settings import load_settings

        workers = load_settings().ingest_workers
        workers = default_workers() if workers is None else workers
    ds = dataset(spec.dataset)
    report = BatchReport(None, city_code, ds.name, spec.name, source_name[:200], "running")
    with engine.connect() as conn:
        if conn.execute(select(m.City.adcode).where(m.City.adcode == city_code)).first() is None:
            raise FeedError("unknown_city", f"no city with adcode {city_code!r}", city=city_code)
    digest = _sha256(source)
    driver_error = engine.dialect.loaded_dbapi.Error
    big = source.seek(0, os.SEEK_END) >= BIG_FEED_BYTES
    source.seek(0)
    report.dry_run = dry_run
    try:
        with engine.connect() as conn:
            cache = _sqlite_fast(conn, True, big)
            try:
                with conn.begin(), Session(bind=conn) as session:
                    _ingest(conn, session, report, spec, ds, source, digest, cipher, principal,
                            now, progress, started, limits, frozenset(accept), workers)  # fmt: skip
                    if dry_run:
                        raise _Discard
                    if after_write is not None:
                        after_write(session, report)
                        session.flush()
            except _Discard:
                pass
            finally:
                if conn.in_transaction():
                    conn.rollback()
                _sqlite_fast(conn, False, cache=cache)
    except FeedError as exc:
        if dry_run:
            return _would_fail(report, exc, started)
        _record_failure(engine, report, spec, digest, principal, now, exc, started)
        raise
    except (DBAPIError, driver_error) as exc:
        # The bulk writes go to the driver's connection: its errors arrive unwrapped.
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        reason = str(orig).strip().splitlines()[0] if orig else str(exc)
        err = FeedError(
            "store_refused", f"the store refused the feed: {reason}", detail=reason[:200]
        )
        if dry_run:
            return _would_fail(report, err, started)
        _record_failure(engine, report, spec, digest, principal, now, err, started)
        raise err from None
    except Exception as exc:  # noqa: BLE001 - a feed we did not foresee: refused, never a trace
        if not isinstance(exc, ValueError | TypeError | KeyError | OverflowError):
            log.exception("ingest of %s failed unforeseen", source_name)
        why = str(exc) or type(exc).__name__  # OverflowError() says nothing of itself
        err = FeedError("ingest_failed", f"the feed could not be processed: {why}",
                        detail=f"{type(exc).__name__}: {exc}"[:200])  # fmt: skip
        if dry_run:
            return _would_fail(report, err, started)
        _record_failure(engine, report, spec, digest, principal, now, err, started)
        raise err from exc
    return report


class _Discard(Exception):
    """Ends a dry run's transaction: everything it wrote is rolled back."""


def _would_fail(report: BatchReport, exc: FeedError, started: float) -> BatchReport:
    """A dry run's report of a batch that would fail (its counts and samples kept)."""
    report.status, report.error_code, report.error = "failed", exc.code, str(exc)
    report.batch_id = None
    report.seconds = time.perf_counter() - started
    return report


def _ingest(conn, session, report, spec, ds, source, digest, cipher, principal, now, progress,
            started, limits, accept: frozenset[str], workers: int = 0) -> None:  # fmt: skip
    same = session.scalar(
        select(m.FeedBatch.id).where(
            m.FeedBatch.city_code == report.city_code, m.FeedBatch.dataset == ds.name,
            m.FeedBatch.content_sha256 == digest, m.FeedBatch.status.in_(("done", "unchanged")),
        ).order_by(m.FeedBatch.id)
    )  # fmt: skip
    batch = m.FeedBatch(
        city_code=report.city_code, dataset=ds.name, source_name=report.source_name,
        content_sha256=digest, spec=spec.text, spec_name=spec.name, status="running",
        started_at=now,
    )  # fmt: skip
    session.add(batch)
    session.flush()
    report.batch_id, report.same_file_as = batch.id, same
    writer = _Writer(conn, session, ds, report.city_code, batch.id, cipher)
    run = _Run(
        spec,
        ds,
        report.city_code,
        cipher,
        now,
        writer,
        now,
        dry_run=report.dry_run,
        workers=workers,
    )
    chunks = read_chunks(source, spec, limits)
    first = True
    try:
        while True:
            t0 = time.perf_counter()
            chunk = next(chunks, None)
            run.tally.timings["read"] += time.perf_counter() - t0
            if chunk is None:
                break
            if first:
                rows = len(chunk.frame) + len(chunk.problems)
                writer.plan(rows / max(chunk.fraction, 1e-9))
                writer.maybe_drop_indexes(rows / max(chunk.fraction, 1e-9))
                first = False
            run.chunk(chunk)
            if progress:
                progress(chunk.fraction, run.tally.read)
        run.finish()
    finally:
        run.close()
    t0 = time.perf_counter()
    writer.rebuild_indexes()
    writer.check_foreign_keys()
    run.tally.timings["index"] += time.perf_counter() - t0
    t = run.tally
    report.rows_read, report.rows_inserted, report.rows_updated = t.read, t.inserted, t.updated
    report.rows_unchanged, report.rows_duplicate, report.rows_rejected = (
        t.unchanged,
        t.duplicate,
        t.rejected,
    )
    report.reasons = dict(t.reasons.most_common())
    report.changed_fields = dict(t.changed_fields.most_common())
    report.preview = {"changes": t.samples, "rejects": t.reject_samples}
    _judge(report, run, spec, accept)
    report.status = "done" if t.inserted + t.updated else "unchanged"
    report.seconds = time.perf_counter() - started
    report.timings = {k: round(v, 3) for k, v in t.timings.items()}
    batch.status = report.status
    batch.rows_read, batch.rows_inserted, batch.rows_updated = t.read, t.inserted, t.updated
    batch.rows_unchanged, batch.rows_duplicate, batch.rows_rejected = (
        t.unchanged,
        t.duplicate,
        t.rejected,
    )
    batch.finished_at = now + timedelta(seconds=report.seconds)
    batch.timings = json.dumps({**report.timings, "total": round(report.seconds, 3)})
    batch.stats = json.dumps({**run.stats(), "findings": report.findings}, ensure_ascii=False)
    if report.status == "unchanged":
        batch.note = "nothing changed" + (f"; same file as batch {same}" if same else "")
    session.flush()
    _audit(session, principal, report, now, report.source_name)
    if not report.adds_up:  # a bug, never a feed problem: refuse rather than mis-count
        raise FeedError("store_refused", "row counts do not add up", detail=asdict(report))


def _judge(report: BatchReport, run: _Run, spec: Spec, accept: frozenset[str]) -> None:
    """The guardrails over the whole batch: a finding not accepted fails it."""
    t = run.tally
    findings = [
        *guardrails.time_findings(run.guard, spec.local_zone),
        *guardrails.position_findings(run.guard),
        *guardrails.loss_findings(run.guard),
        *guardrails.encoding_findings(run.guard, spec.encoding),
        *guardrails.reject_findings(
            t.read, t.duplicate, t.rejected, spec.max_reject_share, report.reasons
        ),  # fmt: skip
    ]
    report.findings = [{**f.as_dict(), "accepted": f.code in accept} for f in findings]
    refused = [f for f in findings if f.code not in accept]
    if refused:
        raise FeedError(
            refused[0].code, "; ".join(f.message for f in refused),
            findings=", ".join(f.code for f in refused), field=refused[0].field,
            rows=refused[0].rows,
        )  # fmt: skip


def _record_failure(engine, report, spec, digest, principal, now, exc: FeedError, started) -> None:
    from hub.store import transaction

    report.status, report.error_code, report.error = "failed", exc.code, str(exc)
    would = {k: getattr(report, f"rows_{k}") for k in
             ("read", "inserted", "updated", "unchanged", "duplicate", "rejected")}  # fmt: skip
    stats = {"findings": report.findings, "would": would, "reasons": report.reasons}
    report.rows_inserted = report.rows_updated = report.rows_unchanged = 0
    report.rows_duplicate = report.rows_rejected = report.rows_read = 0
    report.seconds = time.perf_counter() - started
    with transaction(engine) as session:
        batch = m.FeedBatch(
            city_code=report.city_code, dataset=report.dataset, source_name=report.source_name,
            content_sha256=digest, spec=spec.text, spec_name=spec.name, status="failed",
            started_at=now, finished_at=now + timedelta(seconds=report.seconds),
            error_code=exc.code[:40], note=str(exc)[:2000],
            stats=json.dumps(stats, ensure_ascii=False, default=str),
        )  # fmt: skip
        session.add(batch)
        session.flush()
        report.batch_id = batch.id
        _audit(session, principal, report, now, report.source_name)


def ingest_file(engine: Engine, path, **kw) -> BatchReport:
    """`ingest` for a file on disk (the command line)."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise FeedError("no_file", f"no file {str(path)!r}", file=str(path))
    with p.open("rb") as fh:
        return ingest(engine, source=fh, source_name=p.name, **kw)
