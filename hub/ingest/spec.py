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
    header_row = 1                 # csv/xlsx: the line of the header (title rows above it)
    max_reject_share = 0.2         # a batch rejecting more than this share fails whole

    [columns]                      # standard field = source column (or [columns, joined])
    type_code = "警情类别"
    ts = ["日期", "时间"]

    [values.type_code]             # source value = code of the standard's code table
    "盗窃" = "theft"

    [else]                         # code for a value the [values.*] table does not list
    type_code = "other"

    [datetime_formats]             # strptime format per field, "ISO8601" (default),
    ts = "%Y-%m-%d %H:%M:%S"       # "epoch_s" or "epoch_ms"

    [constants]                    # fields with one value for the whole feed
    status = "open"

A bad spec is refused as a whole with a message that names the problem, and the valid
fields or codes where a name is wrong. New specs are checked strictly: a time zone and a
coordinate system must be stated where they matter, and a time format may not mix 24-hour
and AM/PM fields (`docs/feeds.md`). Specs kept with old batches are read leniently.
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
    "datetime_formats", "constants", "description", "header_row", "else", "max_reject_share",
}  # fmt: skip
MAX_HEADER_ROW = 100
EPOCH_FORMATS = ("epoch_s", "epoch_ms")  # times as seconds or milliseconds since 1970, UTC
SPECIAL_FORMATS = ("ISO8601", *EPOCH_FORMATS)
# Values the store allows for coded fields without a code table (their status).
STATUS_CODES = {
    ("incidents", "status"): ("open", "handling", "closed"),
    ("help_requests", "status"): ("open", "handling", "closed"),
    ("cases", "status"): ("open", "closed"),
    ("cameras", "status"): ("online", "offline"),
}


class FeedError(HubError):
    """A feed or spec the hub cannot take: nothing of it was stored. `code` names why."""


ZONE_REQUIRED = "required"  # `timezone` of a feed whose every time carries its zone
LOCAL_ZONE = "Asia/Shanghai"


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
    header_row: int = 1  # csv/xlsx: rows above it (titles) are skipped
    else_values: dict[str, str] = field(default_factory=dict)  # field -> code for the rest
    max_reject_share: float = 0.2  # over this share of rejected rows the batch fails
    text: str = ""  # the TOML as given, kept with each batch for lineage

    @property
    def zone_required(self) -> bool:
        """Every time must carry its zone (`timezone = "required"`: the bus's contract)."""
        return self.timezone == ZONE_REQUIRED

    @property
    def local_zone(self) -> str:
        """The zone times without one are read in, and dates and findings are told in."""
        return LOCAL_ZONE if self.zone_required else self.timezone

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


def _field_of(ds, name: str, where: str) -> None:
    if name not in ds.fields:
        valid = ", ".join(n for n in ds.fields if n != "source_id")
        raise _bad(f"{where} names {name!r}, not a field of {ds.name}; its fields: {valid}",
                   field=name)  # fmt: skip


def allowed_codes(ds, name: str) -> tuple[str, ...] | None:
    """The codes a coded field of `ds` accepts (its code table or the store's check), or
    None for a field that is not coded."""
    f = ds.fields[name]
    if f.code_table:
        return tuple(c.code for c in code_tables()[f.code_table])
    return STATUS_CODES.get((ds.name, name))


def _check_codes(ds, name: str, values: set[str], where: str) -> None:
    allowed = allowed_codes(ds, name)
    if allowed is None:
        return
    wrong = sorted(values - set(allowed))
    if wrong:
        table = ds.fields[name].code_table or f"{ds.name}.{name}"
        raise _bad(f"{where} maps onto {', '.join(wrong)}, not codes of {table}; "
                   f"valid: {', '.join(allowed)}", field=name)  # fmt: skip


def _check_time_format(name: str, fmt: str) -> None:
    """Refuse a format whose fields contradict each other: `%H` (24-hour) with `%p` (the
    AM/PM marker strptime then ignores: 2 PM is read as 02:00), or `%I` (12-hour)
    without `%p` (every afternoon is read as the morning)."""
    if fmt in SPECIAL_FORMATS:
        return
    if "%H" in fmt and "%p" in fmt:
        raise _bad(f"[datetime_formats] {name} = {fmt!r} mixes %H (24-hour) with %p (AM/PM): "
                   "use %I with %p, or %H alone", field=name)  # fmt: skip
    if "%I" in fmt and "%p" not in fmt:
        raise _bad(f"[datetime_formats] {name} = {fmt!r} has %I (12-hour) without %p (AM/PM)",
                   field=name)  # fmt: skip


def parse_spec(text: str, *, origin: str = "spec", strict: bool = True) -> Spec:
    """Parse and validate a spec's TOML text.

    Parameters
    ----------
    strict
        Also require what a new spec must state (time zone, coordinate system, time
        formats that cannot misread); False reads specs kept with old batches.

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
        raise _bad(f"unknown setting(s) {', '.join(sorted(unknown))}; "
                   f"valid: {', '.join(sorted(_KEYS))}")  # fmt: skip
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
    tz = str(raw.get("timezone", LOCAL_ZONE))
    try:
        if tz != ZONE_REQUIRED:
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
        _field_of(ds, name, "[columns]")
        cols = (src,) if isinstance(src, str) else tuple(src) if isinstance(src, list) else ()
        if not cols or not all(isinstance(c, str) and c for c in cols):
            raise _bad(f"[columns] {name} must be a column name or a list of them")
        columns[name] = cols
    constants = _str_map(raw.get("constants", {}), "constants")
    for name, value in constants.items():
        _field_of(ds, name, "[constants]")
        _check_codes(ds, name, {value}, f"[constants] {name}")
    point_from_geometry = fmt == "geojson" and ds.has_point
    for f in ds.required:
        if f == "source_id" or (point_from_geometry and f in ("lon", "lat")):
            continue
        if f not in columns and f not in constants:
            raise _bad(f"required field {f!r} of {ds.name} is neither mapped nor constant",
                       field=f)  # fmt: skip
    values = raw.get("values", {})
    if not isinstance(values, dict):
        raise _bad("[values] must hold one table per field")
    value_maps = {}
    for name, mapping in values.items():
        _field_of(ds, name, f"[values.{name}]")
        value_maps[name] = _str_map(mapping, f"values.{name}")
        _check_codes(ds, name, set(value_maps[name].values()), f"[values.{name}]")
    else_values = _str_map(raw.get("else", {}), "else")
    for name, value in else_values.items():
        _field_of(ds, name, "[else]")
        if name not in value_maps:
            raise _bad(f"[else] {name}: there is no [values.{name}] table it completes",
                       field=name)  # fmt: skip
        _check_codes(ds, name, {value}, f"[else] {name}")
    formats = _str_map(raw.get("datetime_formats", {}), "datetime_formats")
    for name, fmt_ in formats.items():
        if name not in ds.fields or ds.fields[name].kind not in ("datetime", "date"):
            valid = [n for n, f in ds.fields.items() if f.kind in ("datetime", "date")]
            raise _bad(f"[datetime_formats] {name!r} is not a date or time field of {ds.name}; "
                       f"its date and time fields: {', '.join(valid)}", field=name)  # fmt: skip
        if fmt_ not in SPECIAL_FORMATS and "%" not in fmt_:
            raise _bad(f"[datetime_formats] {name} = {fmt_!r} has no % directive; use a "
                       f"strptime format or one of {', '.join(SPECIAL_FORMATS)}")  # fmt: skip
        if strict:
            _check_time_format(name, fmt_)
    key = raw.get("key", [])
    key = (key,) if isinstance(key, str) else key
    if not isinstance(key, list | tuple) or not all(isinstance(k, str) and k for k in key):
        raise _bad("key must be a list of source column names ([] hashes the row)")
    if "source_id" in columns:
        raise _bad("source_id comes from 'key'; do not map it in [columns]")
    try:
        tolerance = float(raw.get("city_tolerance_km", 2.0))
        max_age = int(raw.get("max_age_days", 3650))
        header_row = int(raw.get("header_row", 1))
        max_reject = float(raw.get("max_reject_share", 0.2))
    except (TypeError, ValueError):
        raise _bad("city_tolerance_km, max_age_days, header_row and max_reject_share must be "
                   "numbers") from None  # fmt: skip
    if not 0 <= tolerance <= 50 or max_age < 1:
        raise _bad("city_tolerance_km must lie in 0..50 and max_age_days be at least 1")
    if not 1 <= header_row <= MAX_HEADER_ROW or (header_row > 1 and fmt not in ("csv", "xlsx")):
        raise _bad(f"header_row must lie in 1..{MAX_HEADER_ROW}, and only csv and xlsx have one")
    if not 0 <= max_reject <= 1:
        raise _bad("max_reject_share must lie in 0..1 (1 = never fail on rejects)")
    if strict:
        _explicit(raw, ds, columns, formats, point_from_geometry)
    return Spec(
        name=str(raw["name"])[:80], dataset=ds.name, format=fmt, encoding=encoding,
        delimiter=delimiter, sheet=raw.get("sheet"), crs=crs, timezone=tz,
        classification=classification, key=tuple(key), city_tolerance_km=tolerance,
        max_age_days=max_age, columns=columns, values=value_maps, datetime_formats=formats,
        constants=constants, description=str(raw.get("description", "")), header_row=header_row,
        else_values=else_values, max_reject_share=max_reject, text=text,
    )  # fmt: skip


def _explicit(raw: dict, ds, columns: dict, formats: dict, point_from_geometry: bool) -> None:
    """A new spec states its time zone where a time could be read in one, and its
    coordinate system where it maps points: a default silently taken is how a feed's
    times move by eight hours and its points by half a kilometre."""
    zoned = [n for n in columns if ds.fields[n].kind == "datetime"
             and formats.get(n, "ISO8601") not in EPOCH_FORMATS]  # fmt: skip
    if zoned and "timezone" not in raw:
        raise _bad(f"no timezone: the times of {', '.join(zoned)} need one (e.g. timezone = "
                   '"Asia/Shanghai", or "UTC" for times that carry their zone)',
                   problem_code="no_timezone")  # fmt: skip
    if ds.has_point and ("lon" in columns or point_from_geometry) and "crs" not in raw:
        raise _bad(f"no crs: say which coordinate system the points are in "
                   f"({', '.join(SYSTEMS)})", problem_code="no_crs")  # fmt: skip


def load_spec(path: Path | str, *, strict: bool = True) -> Spec:
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
    return parse_spec(text, origin=p.name, strict=strict)


def shipped_specs() -> dict[str, Spec]:
    """The specs of `data/specs/` by name (stem of the file)."""
    return {p.stem: load_spec(p) for p in sorted(SPECS_DIR.glob("*.toml"))}
