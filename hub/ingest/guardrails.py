"""Guardrails: the plausible mistakes of a spec that every row check lets through.

A spec that reads times in the wrong zone, with a 12-hour clock, or day-first, still
yields valid times; a file in the wrong encoding still yields text; points in another
datum still lie inside the city. Row by row each looks right. Together they show a
pattern, and a batch showing one fails before anything is stored:

- an update that moves existing records' times by one constant offset, by twelve hours
  (AM/PM lost), or swaps their day and month;
- an update that moves many positions by nearly the same vector (a datum mistake: GCJ-02
  read as WGS84 lies about half a kilometre off);
- text in the wrong script: Chinese fields decoded as Latin-1 (mojibake);
- more rejected rows than the spec allows (`max_reject_share`).

Each finding names the pattern, the field and the figures an operator needs to fix the
spec. An operator who means the change (a city correcting its own clock) accepts the
finding by its code (`hub ingest --accept time_offset`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# A pattern needs this many changed records and this share of them to count as one.
MIN_ROWS = 5
MIN_SHARE = 0.8
# A batch this small is not judged by its share of rejected rows.
MIN_ROWS_FOR_REJECT_SHARE = 20
# Moves shorter than this are rounding, not moves; a common vector needs this length.
MIN_MOVE_M = 1.0
MIN_SHIFT_M = 20.0
# Letters of Latin-1's upper half and C1 controls: what GBK or UTF-8 bytes look like when
# decoded as Latin-1 or cp1252.
_MOJIBAKE = re.compile("[\u0080-\u00ff]")
_CJK = re.compile("[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
MOJIBAKE_SHARE = 0.3
TEXT_SAMPLE = 20_000  # values of a field looked at per chunk: a wrong encoding is everywhere

FINDING_CODES = (
    "time_offset", "time_shift_12h", "time_day_month_swap", "position_shift",
    "probable_encoding_error", "too_many_rejects",
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """A pattern found in a batch: `code` (one of `FINDING_CODES`), the field, the number
    of records showing it, and a sentence for the operator."""

    code: str
    field: str
    rows: int
    message: str
    params: dict = field(default_factory=dict, compare=False, hash=False)

    def as_dict(self) -> dict:
        return {"code": self.code, "field": self.field, "rows": self.rows,
                "message": self.message, **self.params}  # fmt: skip


@dataclass
class Watch:
    """What a batch accumulates over its chunks for the guardrails."""

    times: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    moves: list[np.ndarray] = field(default_factory=list)  # (old lon, old lat, new lon, new lat)
    text_seen: dict[str, int] = field(default_factory=dict)
    text_bad: dict[str, int] = field(default_factory=dict)
    text_sample: dict[str, str] = field(default_factory=dict)
    compared: int = 0  # stored records the batch compared with (its keys were known)
    emptied: dict[str, int] = field(default_factory=dict)  # had a value, would have none
    to_default: dict[str, tuple[int, str]] = field(default_factory=dict)  # (rows, default)

    def lost(self, name: str, before: pd.Series, after: pd.Series, differs: np.ndarray,
             default: object = None) -> None:  # fmt: skip
        """Count the compared records whose `name` would lose its value, or go back to the
        column's default (a blank source column filled with it), in aligned rows."""
        had = (before.notna() & (before.astype(str) != "")).to_numpy()
        gone = (after.isna() | (after.astype(str) == "")).to_numpy()
        n = int((differs & had & gone).sum())
        if n:
            self.emptied[name] = self.emptied.get(name, 0) + n
        if default is not None:
            back = (after.astype(str) == str(default)).to_numpy() & differs & had
            k = int(back.sum())
            if k:
                rows, _ = self.to_default.get(name, (0, ""))
                self.to_default[name] = (rows + k, str(default))

    def text(self, name: str, s: pd.Series) -> None:
        """Count values of a text field that look like mojibake (Latin-1 letters, no CJK)."""
        present = s.iloc[:TEXT_SAMPLE]
        present = present[present != ""]
        if not len(present):
            return
        self.text_seen[name] = self.text_seen.get(name, 0) + len(present)
        if "".join(present.dropna().tolist()).isascii():  # no Latin-1 letter: nothing garbled
            return
        odd = present[present.str.contains(_MOJIBAKE, na=False)]
        bad = odd[~odd.str.contains(_CJK, na=False)]
        if len(bad):
            self.text_bad[name] = self.text_bad.get(name, 0) + len(bad)
            self.text_sample.setdefault(name, str(bad.iloc[0])[:40])

    def merge_text(self, other: Watch) -> None:
        """Add the text counts of a chunk checked elsewhere (a worker process)."""
        for name, n in other.text_seen.items():
            self.text_seen[name] = self.text_seen.get(name, 0) + n
        for name, n in other.text_bad.items():
            self.text_bad[name] = self.text_bad.get(name, 0) + n
        for name, sample in other.text_sample.items():
            self.text_sample.setdefault(name, sample)

    def changed(self, old: pd.DataFrame, new: pd.DataFrame, time_fields: list[str]) -> None:
        """Old and new values of updated records (aligned rows)."""
        for name in time_fields:
            if name in old and name in new:
                a = pd.to_datetime(old[name], utc=True).reset_index(drop=True)
                b = pd.to_datetime(new[name], utc=True).reset_index(drop=True)
                both = (a.notna() & b.notna()).to_numpy()
                if both.any():
                    self.times.setdefault(name, []).append((_us(a[both]), _us(b[both])))
        if {"lon", "lat"} <= set(old.columns) and {"lon", "lat"} <= set(new.columns):
            arr = np.column_stack([
                pd.to_numeric(old["lon"]).to_numpy(float), pd.to_numeric(old["lat"]).to_numpy(float),
                pd.to_numeric(new["lon"]).to_numpy(float), pd.to_numeric(new["lat"]).to_numpy(float),
            ])  # fmt: skip
            self.moves.append(arr[~np.isnan(arr).any(axis=1)])


def _us(s: pd.Series) -> np.ndarray:
    return s.dt.tz_convert("UTC").dt.as_unit("us").astype("int64").to_numpy()


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:+.2f}".rstrip("0").rstrip(".") + " h"


def time_findings(watch: Watch, tz: str) -> list[Finding]:
    """Systematic moves of stored times: 12-hour flips, day/month swaps, one offset."""
    out = []
    for name, parts in watch.times.items():
        old = np.concatenate([p[0] for p in parts])
        new = np.concatenate([p[1] for p in parts])
        moved = old != new
        n = int(moved.sum())
        if n < MIN_ROWS:
            continue
        delta = (new[moved] - old[moved]) / 1e6
        flip = int((np.abs(delta) == 12 * 3600).sum())
        if flip >= MIN_SHARE * n:
            out.append(Finding(
                "time_shift_12h", name, flip,
                f"{flip} of {n} changed {name} values move by exactly 12 hours: an AM/PM "
                "marker is read wrong (%H with %p, or %I without %p); fix datetime_formats",
            ))  # fmt: skip
            continue
        a = pd.to_datetime(old[moved], unit="us", utc=True).tz_convert(tz)
        b = pd.to_datetime(new[moved], unit="us", utc=True).tz_convert(tz)
        swapped = int(((a.day == b.month) & (a.month == b.day) & (a.day != a.month)
                       & (a.year == b.year) & (a.time == b.time)).sum())  # fmt: skip
        if swapped >= MIN_SHARE * n:
            out.append(Finding(
                "time_day_month_swap", name, swapped,
                f"{swapped} of {n} changed {name} values have day and month swapped: the "
                "format reads day-first dates month-first or the other way; fix "
                "datetime_formats (%d/%m or %m/%d)",
            ))  # fmt: skip
            continue
        landed, landed_n = np.unique(new[moved], return_counts=True)
        if int(landed_n.max()) >= MIN_SHARE * n:  # many times become one: an exporter's stamp
            same = int(landed_n.max())
            out.append(Finding(
                "time_collapse", name, same,
                f"{same} of {n} changed {name} values would all become one and the same time: "
                "the export probably wrote one time (its own) for every record",
            ))  # fmt: skip
            continue
        values, counts = np.unique(delta, return_counts=True)
        top = int(counts.max())
        if top >= MIN_SHARE * n:
            shift = float(values[counts.argmax()])
            out.append(Finding(
                "time_offset", name, top,
                f"{top} of {n} changed {name} values move by the same {_hours(shift)}: a "
                "time zone read wrong (check timezone, and whether the times carry their "
                "zone)", {"hours": round(shift / 3600, 2)},
            ))  # fmt: skip
    return out


def position_findings(watch: Watch) -> list[Finding]:
    """Many stored points moved by nearly one vector: a coordinate system read wrong."""
    if not watch.moves:
        return []
    arr = np.concatenate(watch.moves)
    if not len(arr):
        return []
    k = np.cos(np.radians(arr[:, 1]))
    dx = (arr[:, 2] - arr[:, 0]) * 111_320 * k
    dy = (arr[:, 3] - arr[:, 1]) * 110_574
    dist = np.hypot(dx, dy)
    moved = dist > MIN_MOVE_M
    n = int(moved.sum())
    if n < MIN_ROWS:
        return []
    spots, spot_n = np.unique(np.round(arr[moved][:, 2:4], 5), axis=0, return_counts=True)
    if int(spot_n.max()) >= MIN_SHARE * n:  # many points become one: a default position
        same = int(spot_n.max())
        lon, lat = (float(v) for v in spots[spot_n.argmax()])
        return [Finding(
            "position_collapse", "lon,lat", same,
            f"{same} of {n} moved points would all land on one spot ({lon:.5f}, {lat:.5f}): "
            "the export probably wrote a default position (a city centre) for every record",
            {"lon": round(lon, 5), "lat": round(lat, 5)},
        )]  # fmt: skip
    mx, my = float(np.median(dx[moved])), float(np.median(dy[moved]))
    length = float(np.hypot(mx, my))
    if length < MIN_SHIFT_M:
        return []
    near = np.hypot(dx[moved] - mx, dy[moved] - my) <= max(25.0, 0.25 * length)
    same = int(near.sum())
    if same < MIN_SHARE * n:
        return []
    bearing = (np.degrees(np.arctan2(mx, my)) + 360) % 360
    return [Finding(
        "position_shift", "lon,lat", same,
        f"{same} of {n} moved points move by about {length:.0f} m toward {bearing:.0f}°: "
        "the coordinate system is probably wrong (crs: wgs84, gcj02 or bd09)",
        {"metres": round(length), "bearing": round(bearing)},
    )]  # fmt: skip


def loss_findings(watch: Watch) -> list[Finding]:
    """A field most compared records would lose, or see go back to its default: a column
    left empty or out of the file, overwriting what the store holds."""
    out, n = [], watch.compared
    for name, lost in watch.emptied.items():
        if lost >= MIN_ROWS and lost >= MIN_SHARE * n:
            out.append(Finding(
                "field_emptied", name, lost,
                f"{lost} of {n} stored records would lose their {name}: the column is "
                "probably empty or missing in this file", {"compared": n},
            ))  # fmt: skip
    for name, (back, default) in watch.to_default.items():
        if back >= MIN_ROWS and back >= MIN_SHARE * n:
            out.append(Finding(
                "field_reset", name, back,
                f"{back} of {n} stored records would have their {name} set back to the "
                f"default {default!r}: the column is probably empty or missing in this file",
                {"compared": n, "value": default},
            ))  # fmt: skip
    return out


def encoding_findings(watch: Watch, encoding: str) -> list[Finding]:
    """Text fields full of Latin-1 letters and no Chinese: the file's encoding is wrong."""
    out = []
    for name, bad in watch.text_bad.items():
        seen = watch.text_seen.get(name, 0)
        if bad >= 3 and bad >= MOJIBAKE_SHARE * seen:
            out.append(Finding(
                "probable_encoding_error", name, bad,
                f"{bad} of {seen} {name} values decode as {encoding} into Latin accents with "
                f"no Chinese (e.g. {watch.text_sample[name]!r}): the file is probably in "
                "another encoding (gbk, gb18030 or utf-8)", {"encoding": encoding},
            ))  # fmt: skip
    return out


def reject_findings(read: int, duplicate: int, rejected: int, limit: float,
                    reasons: dict[str, int]) -> list[Finding]:  # fmt: skip
    """More rejected rows than the spec allows."""
    considered = read - duplicate
    if read < MIN_ROWS_FOR_REJECT_SHARE or not considered or rejected <= limit * considered:
        return []
    share = rejected / considered
    top = ", ".join(f"{k} {v}" for k, v in list(reasons.items())[:3])
    return [Finding(
        "too_many_rejects", "", rejected,
        f"{rejected} of {considered} rows ({share:.0%}) would be rejected, over the spec's "
        f"max_reject_share {limit:.0%} (most: {top}); check the spec with a dry run",
        {"share": round(share, 4), "limit": limit},
    )]  # fmt: skip
