"""One plate's trajectory across cities: its sightings in a time window as a path.

No new access path: the sightings come from `records.lookup` (row filter, pointers,
masks and audit in the caller's transaction); everything here is computed from the
rows the viewer may open. Sightings hidden from the viewer stay pointers to their
owning city, so a path through a neighbour's sensitive cameras shows a gap and a
"request access" item, never a guessed line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from geo.distance import haversine_m
from hub import partitions, records
from hub.models import Camera, Sighting
from hub.security.crypto import FieldCipher
from hub.security.errors import InputError
from hub.security.policy import GrantScope, Principal
from hub.security.reasons import Reason
from hub.validate import is_valid_plate, normalize_plate

MAX_WINDOW = timedelta(days=31)
# Above this a section between two reads is not a drive but two cars (a cloned plate,
# 套牌) or a misread: the straight line between the cameras is the shortest road there
# is, so the real speed was at least the one implied. Two reads at the same moment
# further apart than one camera's reach (a few hundred metres) are the same case.
MAX_PLAUSIBLE_KMH = 250.0
SAME_PLACE_KM = 0.5


@dataclass(frozen=True)
class Trajectory:
    plate: str
    start: datetime
    end: datetime
    points: list[dict]  # visible sightings in time order, with camera name and speed
    crossings: list[dict]  # consecutive visible sightings in different cities
    pointers: list[records.Pointer]  # sightings the viewer may not open, by city and level
    # Sections no car can drive (implied speed above MAX_PLAUSIBLE_KMH): a possible
    # cloned plate, shown as a warning and never as a crossing or a path.
    suspect: list[dict] = field(default_factory=list)
    grants_used: tuple[int, ...] = field(default_factory=tuple)
    truncated: bool = False


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InputError("bad_window", "the time window needs time-zone aware bounds", field=name)
    return value.astimezone(UTC)


def check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window in UTC; refused if reversed or longer than 31 days."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if start > end:
        raise InputError("bad_window", "the window starts after it ends", days=MAX_WINDOW.days)
    if end - start > MAX_WINDOW:
        raise InputError("bad_window", "the window is too long", days=MAX_WINDOW.days)
    return start, end


def _speeds(points: list[dict]) -> list[dict]:
    """Average speed from the previous visible sighting (haversine / elapsed time); each
    point's `implausible` says whether the section ending there is impossible to drive.
    Returns those sections (from, to, km, minutes, implied speed; None when no time
    passed at all)."""
    prev, suspect = None, []
    for p in points:
        p["speed_kmh"], p["implausible"] = None, False
        if prev is not None:
            hours = (p["ts"] - prev["ts"]).total_seconds() / 3600
            km = float(haversine_m(prev["lon"], prev["lat"], p["lon"], p["lat"])) / 1000
            if hours > 0:
                p["speed_kmh"] = round(km / hours, 1)
            if (p["speed_kmh"] or 0) > MAX_PLAUSIBLE_KMH or (hours <= 0 and km > SAME_PLACE_KM):
                p["implausible"] = True
                suspect.append({
                    "from_id": prev["id"], "to_id": p["id"], "from_ts": prev["ts"], "to_ts": p["ts"],
                    "from_city": prev["city_code"], "to_city": p["city_code"],
                    "from_camera": prev["camera"], "to_camera": p["camera"], "km": round(km, 1),
                    "minutes": round(hours * 60, 1), "speed_kmh": p["speed_kmh"],
                    "from_lon": prev["lon"], "from_lat": prev["lat"], "to_lon": p["lon"], "to_lat": p["lat"],
                })  # fmt: skip
        prev = p
    return suspect


def _crossings(points: list[dict]) -> list[dict]:
    """Consecutive reads in different cities; an impossible section is no crossing."""
    out = []
    for a, b in zip(points, points[1:], strict=False):
        if a["city_code"] != b["city_code"] and not b["implausible"]:
            out.append(
                {
                    "from_city": a["city_code"],
                    "to_city": b["city_code"],
                    "left_at": a["ts"],
                    "entered_at": b["ts"],
                    "from_camera": a["camera"],
                    "to_camera": b["camera"],
                    "lon": (a["lon"] + b["lon"]) / 2,
                    "lat": (a["lat"] + b["lat"]) / 2,
                }
            )
    return out


def plate_trajectory(
    session: Session,
    principal: Principal,
    plate: str,
    *,
    start: datetime,
    end: datetime,
    reason: Reason,
    grants: Sequence[GrantScope],
    cipher: FieldCipher,
    now: datetime,
) -> Trajectory:
    """The plate's sightings between `start` and `end` the viewer may open, with speeds and
    border crossings; the rest as pointers. Audited as one sightings search."""
    value = normalize_plate(records._bounded(plate, "plate"))
    if not is_valid_plate(value):
        raise InputError("bad_plate", "not a valid plate number", value=plate.strip()[:20])
    start, end = check_window(start, end)
    where = and_(Sighting.plate == value, Sighting.ts >= start, Sighting.ts <= end)
    where = records.bound_to_plate_days(
        session, where, partitions.plate_days.c.plate == value, start=start, end=end
    )
    query = {"kind": "plate", "value": value, "start": start.isoformat(), "end": end.isoformat()}
    result = records.lookup(
        session, principal, "sightings", where, reason=reason, query=query, grants=grants,
        cipher=cipher, now=now, order_by=Sighting.ts,
    )  # fmt: skip
    points = sorted((dict(r) for r in result.rows), key=lambda r: (r["ts"], r["id"]))
    ids = sorted({p["camera_id"] for p in points})
    # Camera names through the session: the backstop filters this read like any other.
    names = (
        dict(session.execute(select(Camera.id, Camera.name).where(Camera.id.in_(ids))).all())
        if ids
        else {}
    )
    for p in points:
        p["camera"] = names.get(p["camera_id"])
        p["camera_speed_kmh"] = p.pop("speed_kmh", None)
    suspect = _speeds(points)
    return Trajectory(
        plate=value,
        start=start,
        end=end,
        points=points,
        crossings=_crossings(points),
        suspect=suspect,
        pointers=list(result.pointers),
        grants_used=result.grants_used,
        truncated=result.truncated,
    )
