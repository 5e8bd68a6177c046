"""Mapping specs: how one city's feed of one dataset maps onto the standard.

A spec is a TOML file (see `data/specs/`)::

    name = "hefei_incidents_gbk"
    dataset = "incidents"          # the target table (hub.ingest.datasets)
    format = "csv"                 # csv, jsonl, geojson, xlsx
    encoding = "gbk"               # any Python codec: utf-8, gbk, gb18030, ...
    delimiter = ","                # csv only
    sheet = "案件"                  # xlsx only (default: the first sheet)
    crs = "gcj02"                  # wgs84, gcj02, bd09, cgcs2000 (treated as WGS84)
    timezone = "Asia/Shanghai"     # zone of times that carry none
    classification = "internal"    # default classification of a row
    key = ["警情编号"]              # natural key column(s); [] = a hash of the row's content
    city_tolerance_km = 2.0        # how far outside its city a point may lie
    max_age_days = 3650            # older event times are refused

    [columns]                      # standard field = source column (or [columns, joined])
    type_code = "警情类别"
    ts = ["日期", "时间"]

    [values.type_code]             # source value = code of the standard's code table
    "盗窃" = "theft"

    [datetime_formats]             # strptime format per field, "ISO8601" (default),
    ts = "%Y-%m-%d %H:%M:%S"       # "epoch_s" or "epoch_ms"

    [constants]                    # fields with one value for the whole feed
    status = "open"

A bad spec is refused as a whole with a message that names the problem.
"""

from __future__ import annotations

import codecs
import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geo.coords import SYSTEMS
from hub.codes import code_tables
from hub.ingest.datasets import DATASETS
from hub.security.errors import HubError
from hub.settings import DATA_DIR

SPECS_DIR = DATA_DIR / "specs"
FORMATS = ("csv", "jsonl", "geojson", "xlsx")
_KEYS = {
    "name", "dataset", "format", "encoding", "delimiter", "sheet", "crs", "timezone",
    "classification", "key", "city_tolerance_km", "max_age_days", "columns", "values",
    "datetime_formats", "constants", "description",
}  # fmt: skip
SPECIAL_FORMATS = ("ISO8601", "epoch_s", "epoch_ms")


class FeedError(HubError):
    """A feed or spec the hub cannot take: nothing of it was stored. `code` names why."""


def _bad(message: str, **params: object) -> FeedError:
    return FeedError("bad_spec", f"bad spec: {message}", problem=message, **params)


@dataclass(frozen=True)
class Spec:
    """A validated mapping spec (build it with `parse_spec` or `load_spec`)."""

    name: str
    dataset: str
    format: str
    encoding: str = "utf-8"
    delimiter: str = ","
    sheet: str | None = None
    crs: str = "wgs84"
    timezone: str = "Asia/Shanghai"
    classification: str = "internal"
    key: tuple[str, ...] = ()
    city_tolerance_km: float = 2.0
    max_age_days: int = 3650
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    datetime_formats: dict[str, str] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    description: str = ""
    text: str = ""  # the TOML as given, kept with each batch for lineage

    @property
    def source_columns(self) -> list[str]:
        """Every source column the spec reads, in first-use order."""
        seen: dict[str, None] = {}
        for cols in self.columns.values():
            seen.update(dict.fromkeys(cols))
        seen.update(dict.fromkeys(self.key))
        return list(seen)

    @property
    def required_columns(self) -> list[str]:
        """Source columns every row needs: the key and those of required fields."""
        required = set(DATASETS[self.dataset].required)
        cols = [c for name, cs in self.columns.items() if name in required for c in cs]
        return list(dict.fromkeys([*cols, *self.key]))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def _str_map(raw: object, what: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise _bad(f"[{what}] must be a table")
    return {str(k): str(v) for k, v in raw.items()}


def parse_spec(text: str, *, origin: str = "spec") -> Spec:
    """Parse and validate a spec's TOML text.

    Raises
    ------
    FeedError
        Code `bad_spec`, naming the first problem found.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"{origin} is not valid TOML ({exc})") from None
    unknown = set(raw) - _KEYS
    if unknown:
        raise _bad(f"unknown setting(s) {', '.join(sorted(unknown))}")
    for required in ("name", "dataset", "format", "columns"):
        if required not in raw:
            raise _bad(f"'{required}' is missing")
    if raw["dataset"] not in DATASETS:
        raise _bad(f"unknown dataset {raw['dataset']!r}; one of {', '.join(DATASETS)}")
    ds = DATASETS[raw["dataset"]]
    fmt = str(raw["format"]).lower()
    if fmt not in FORMATS:
        raise _bad(f"unknown format {raw['format']!r}; one of {', '.join(FORMATS)}")
    encoding = str(raw.get("encoding", "utf-8"))
    try:
        encoding = codecs.lookup(encoding).name
    except LookupError:
        raise _bad(f"unknown encoding {encoding!r}") from None
    delimiter = str(raw.get("delimiter", ","))
    if delimiter == "\\t":
        delimiter = "\t"
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise _bad(f"delimiter must be one character, not {delimiter!r}")
    crs = str(raw.get("crs", "wgs84")).lower()
    if crs not in SYSTEMS:
        raise _bad(f"unknown coordinate system {crs!r}; one of {', '.join(SYSTEMS)}")
    tz = str(raw.get("timezone", "Asia/Shanghai"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad(f"unknown time zone {tz!r}") from None
    classification = str(raw.get("classification", "internal"))
    levels = [c.code for c in code_tables()["classification"]]
    if classification not in levels:
        raise _bad(f"classification {classification!r} is not one of {', '.join(levels)}")

    if not isinstance(raw["columns"], dict):
        raise _bad("[columns] must be a table")
    columns: dict[str, tuple[str, ...]] = {}
    for name, src in raw["columns"].items():
        if name not in ds.fields:
            raise _bad(f"[columns] names {name!r}, not a field of {ds.name}", field=name)
        cols = (src,) if isinstance(src, str) else tuple(src) if isinstance(src, list) else ()
        if not cols or not all(isinstance(c, str) and c for c in cols):
            raise _bad(f"[columns] {name} must be a column name or a list of them")
        columns[name] = cols
    constants = _str_map(raw.get("constants", {}), "constants")
    for name in constants:
        if name not in ds.fields:
            raise _bad(f"[constants] names {name!r}, not a field of {ds.name}")
    point_from_geometry = fmt == "geojson" and ds.has_point
    for f in ds.required:
        if f == "source_id" or (point_from_geometry and f in ("lon", "lat")):
            continue
        if f not in columns and f not in constants:
            raise _bad(f"required field {f!r} of {ds.name} is neither mapped nor constant")
    values = raw.get("values", {})
    if not isinstance(values, dict):
        raise _bad("[values] must hold one table per field")
    value_maps = {}
    for name, mapping in values.items():
        if name not in ds.fields:
            raise _bad(f"[values.{name}]: not a field of {ds.name}")
        value_maps[name] = _str_map(mapping, f"values.{name}")
        table = ds.fields[name].code_table
        if table:
            allowed = {c.code for c in code_tables()[table]}
            wrong = sorted(set(value_maps[name].values()) - allowed)
            if wrong:
                raise _bad(f"[values.{name}] maps onto {', '.join(wrong)}, not codes of {table}")
    formats = _str_map(raw.get("datetime_formats", {}), "datetime_formats")
    for name, fmt_ in formats.items():
        if name not in ds.fields or ds.fields[name].kind not in ("datetime", "date"):
            raise _bad(f"[datetime_formats] {name!r} is not a date or time field of {ds.name}")
        if fmt_ not in SPECIAL_FORMATS and "%" not in fmt_:
            raise _bad(f"[datetime_formats] {name} = {fmt_!r} has no % directive")
    key = raw.get("key", [])
    key = (key,) if isinstance(key, str) else key
    if not isinstance(key, list | tuple) or not all(isinstance(k, str) and k for k in key):
        raise _bad("key must be a list of source column names ([] hashes the row)")
    if "source_id" in columns:
        raise _bad("source_id comes from 'key'; do not map it in [columns]")
    try:
        tolerance = float(raw.get("city_tolerance_km", 2.0))
        max_age = int(raw.get("max_age_days", 3650))
    except (TypeError, ValueError):
        raise _bad("city_tolerance_km and max_age_days must be numbers") from None
    if not 0 <= tolerance <= 50 or max_age < 1:
        raise _bad("city_tolerance_km must lie in 0..50 and max_age_days be at least 1")
    return Spec(
        name=str(raw["name"])[:80], dataset=ds.name, format=fmt, encoding=encoding,
        delimiter=delimiter, sheet=raw.get("sheet"), crs=crs, timezone=tz,
        classification=classification, key=tuple(key), city_tolerance_km=tolerance,
        max_age_days=max_age, columns=columns, values=value_maps, datetime_formats=formats,
        constants=constants, description=str(raw.get("description", "")), text=text,
    )  # fmt: skip


def load_spec(path: Path | str) -> Spec:
    """Read a spec file, or a spec of `data/specs/` by name (without `.toml`).

    Raises
    ------
    FeedError
        `unknown_spec` when there is no such file; `bad_spec` when it is invalid.
    """
    p = Path(path)
    if not p.suffix and not p.exists():
        p = SPECS_DIR / f"{p.name}.toml"
    if not p.is_file():
        raise FeedError("unknown_spec", f"no spec file {str(path)!r}", spec=str(path))
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _bad(f"{p.name} is not UTF-8 text") from None
    return parse_spec(text, origin=p.name)


def shipped_specs() -> dict[str, Spec]:
    """The specs of `data/specs/` by name (stem of the file)."""
    return {p.stem: load_spec(p) for p in sorted(SPECS_DIR.glob("*.toml"))}
