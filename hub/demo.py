"""The synthetic demo province: deterministic, labelled data on the real boundaries.

Everything generated here is synthetic and marked so: every record comes from a feed
batch whose source is ``demo:synthetic``. The same seed and anchor give the same data.
The anchor (the demo's "now") defaults to the current hour, so that "last hour" and
"last 24 hours" windows have data whenever the demo is seeded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, Point
from sqlalchemy import Engine, Table, delete, func, select

from geo import cells
from geo.adjacency import city_adjacency
from geo.assign import assign_city_district, random_points_in
from geo.boundaries import load_boundaries
from geo.distance import buffer_m, haversine_m
from hub import models as m
from hub.bulk import bulk_insert, reset_sequences
from hub.codes import codes
from hub.security.crypto import FieldCipher
from hub.security.narrative import seal
from hub.settings import Settings
from hub.validate import make_id_number, normalize_phone

DEMO_SOURCE = "demo:synthetic"
LOCAL_OFFSET = timedelta(hours=8)  # Asia/Shanghai has no daylight saving

# 2020 census population in 10k, rounded: weights for where incidents and units fall.
POPULATION = {
    "340100": 937, "340200": 364, "340300": 330, "340400": 303, "340500": 216,
    "340600": 197, "340700": 131, "340800": 417, "341000": 133, "341200": 820,
    "341300": 532, "341100": 399, "341500": 440, "341800": 250, "341700": 134,
    "341600": 499,
}  # fmt: skip
# Plate authority letter (发牌机关代号) of each Anhui city.
PLATE_LETTER = {
    "340100": "A", "340200": "B", "340300": "C", "340400": "D", "340500": "E",
    "340600": "F", "340700": "G", "340800": "H", "341000": "J", "341200": "K",
    "341300": "L", "341100": "M", "341500": "N", "341800": "P", "341700": "R",
    "341600": "S",
}  # fmt: skip

# The scripted pursuit: a plate tied to an open case in 合肥 crosses into 滁州.
PURSUIT_PLATE = "皖AK7P35"
PURSUIT_CASE_NO = "A340100202600001"
PURSUIT_FROM, PURSUIT_TO = "340100", "341100"
_TOWN_KMH, _ROAD_DETOUR = 60.0, 1.3


@dataclass(frozen=True)
class Size:
    incidents: int
    sightings: int
    urban_cameras_per_city: int
    road_camera_spacing_km: float
    persons: int
    cases: int
    units_per_city: int
    help_requests: int
    alerts_per_city: int
    hotspots_per_city: int
    days: int = 30


SIZES = {
    "small": Size(3_000, 20_000, 6, 20.0, 300, 96, 12, 400, 2, 3),
    "demo": Size(150_000, 600_000, 60, 6.0, 4_000, 1_600, 60, 8_000, 4, 6),
    "province": Size(1_000_000, 10_000_000, 150, 3.0, 40_000, 16_000, 150, 60_000, 5, 8),
}

# Relative weight of each local hour (00..23) for incidents, and the night profile.
_DAY_HOURS = np.array(
    [3, 2, 1.5, 1, 1, 1.5, 3, 5, 7, 8, 9, 9, 8, 8, 8, 8, 9, 10, 10, 10, 9, 8, 6, 4], float
)
_NIGHT_HOURS = np.array(
    [9, 8, 7, 6, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 5, 7, 9, 10], float
)
_WEEKDAY = np.array([1.0, 0.95, 0.95, 1.0, 1.15, 1.25, 1.1])  # Monday .. Sunday
_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭")
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华建文辉玉兰萍红鹏飞宇浩然")
_STREETS = ["长江路", "淮河路", "人民路", "解放路", "胜利路", "黄山路", "建设路", "和平路"]
_PLATE_CHARS = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))
_DIGITS = np.array(list("0123456789"))


def anchor_now() -> datetime:
    """The current hour in UTC: the default 'now' of a freshly seeded demo."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


# --- helpers ----------------------------------------------------------------------------


def _district_weights(districts: pd.DataFrame) -> np.ndarray:
    """Urban districts (区) draw more incidents than counties, scaled by city population."""
    kind = np.where(districts["name"].str.endswith("区"), 4.0, 1.0)
    per_city = districts.groupby("parent_adcode")["adcode"].transform("count").to_numpy()
    pop = districts["parent_adcode"].map(POPULATION).to_numpy(float)
    w = kind * pop / per_city
    return w / w.sum()


def _points_in_districts(
    districts: pd.DataFrame, idx: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Points inside district `idx[i]` and inside its city's outline too.

    District and city outlines were simplified separately and disagree in slivers
    along borders; a point there is drawn again.
    """
    lon = np.empty(len(idx))
    lat = np.empty(len(idx))
    for d in np.unique(idx):
        sel = np.flatnonzero(idx == d)
        code = districts["adcode"].iloc[d]
        got_lon, got_lat = [], []
        missing = len(sel)
        while missing > 0:
            x, y = random_points_in(districts.geometry.iloc[d], missing + 4, rng)
            _, district = assign_city_district(x, y, strict=True)
            ok = district == code
            got_lon.append(x[ok])
            got_lat.append(y[ok])
            missing -= int(ok.sum())
        lon[sel] = np.concatenate(got_lon)[: len(sel)]
        lat[sel] = np.concatenate(got_lat)[: len(sel)]
    return lon, lat


def _local_times(
    n: int,
    anchor: datetime,
    days: int,
    rng: np.random.Generator,
    night_share: np.ndarray | float = 0.0,
) -> pd.Series:
    """Timestamps in the `days` before `anchor` with daily and weekly rhythms (UTC)."""
    local_anchor = anchor + LOCAL_OFFSET
    start_day = (local_anchor - timedelta(days=days - 1)).date()
    weekday = np.array([(start_day + timedelta(d)).weekday() for d in range(days)])
    p_day = _WEEKDAY[weekday] / _WEEKDAY[weekday].sum()
    day = rng.choice(days, size=n, p=p_day)
    night = rng.random(n) < night_share
    hour = np.where(
        night,
        rng.choice(24, size=n, p=_NIGHT_HOURS / _NIGHT_HOURS.sum()),
        rng.choice(24, size=n, p=_DAY_HOURS / _DAY_HOURS.sum()),
    )
    secs = day * 86400 + hour * 3600 + rng.integers(0, 3600, size=n)
    base = pd.Timestamp(datetime.combine(start_day, datetime.min.time()), tz=UTC) - LOCAL_OFFSET
    ts = base + pd.to_timedelta(secs, unit="s")
    # The anchor's own day is only partly over: fold later times back one week.
    late = ts > pd.Timestamp(anchor)
    ts = ts.where(~late, ts - pd.Timedelta(days=7))
    return pd.Series(ts)


def _h3(lat: np.ndarray, lon: np.ndarray) -> tuple[list[str], list[str]]:
    r8 = cells.from_points(lat, lon, 8)
    return cells.to_text(cells.parents(r8, 7)).tolist(), cells.to_text(r8).tolist()


def _classify(n: int, p: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    levels = list(p)
    return rng.choice(levels, size=n, p=np.array([p[k] for k in levels]))


def _names(n: int, rng: np.random.Generator) -> list[str]:
    sur = rng.choice(_SURNAMES, size=n)
    g1 = rng.choice(_GIVEN, size=n)
    g2 = np.where(rng.random(n) < 0.6, rng.choice(_GIVEN, size=n), "")
    return [a + b + c for a, b, c in zip(sur, g1, g2, strict=True)]


def _phones(n: int, rng: np.random.Generator) -> list[str]:
    second = rng.choice(list("3456789"), size=n)
    rest = rng.integers(0, 10**9, size=n)
    return [f"1{s}{r:09d}" for s, r in zip(second, rest, strict=True)]


def _plates(n: int, cities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ordinary 7-character plates; one in ten is an 8-character new-energy plate."""
    letters = np.array([PLATE_LETTER[c] for c in cities])
    body = rng.choice(_PLATE_CHARS, size=(n, 5))
    body[:, :2] = np.where(rng.random((n, 2)) < 0.7, rng.choice(_DIGITS, size=(n, 2)), body[:, :2])
    ordinary = np.array(["".join(r) for r in body])
    nev = np.array(
        [
            "DF"[i] + "".join(d)
            for i, d in zip(rng.integers(0, 2, n), rng.choice(_DIGITS, size=(n, 5)), strict=True)
        ]
    )
    use_nev = rng.random(n) < 0.1
    return np.char.add(np.char.add("皖", letters), np.where(use_nev, nev, ordinary))


# --- the generator ----------------------------------------------------------------------


class DemoData(dict[str, pd.DataFrame]):
    """Table name → DataFrame, in insertion (foreign-key) order."""


def generate(size: Size, seed: int, anchor: datetime, cipher: FieldCipher) -> DemoData:
    """Build the whole demo province in memory.

    Parameters
    ----------
    size
        One of `SIZES`.
    seed
        Random seed; with the same `anchor` the output is identical.
    anchor
        The demo's "now" (UTC, aware); all times fall in the `size.days` before it.
    cipher
        Encrypts ID numbers and phones as the store keeps them.
    """
    if anchor.tzinfo is None:
        raise ValueError("anchor must be timezone-aware (UTC)")
    rng = np.random.default_rng(seed)
    b = load_boundaries()
    cities = b.cities.reset_index(drop=True)
    districts = b.districts.reset_index(drop=True)
    city_name = dict(zip(cities.adcode, cities.name, strict=True))
    district_name = dict(zip(districts.adcode, districts.name, strict=True))
    out = DemoData()

    batches = _batches(cities.adcode.tolist(), anchor)
    batch_id = {(r.city_code, r.dataset): r.id for r in batches.itertuples()}
    out["feed_batches"] = batches

    def envelope(df: pd.DataFrame, dataset: str, prefix: str) -> pd.DataFrame:
        df = df.reset_index(drop=True)
        df.insert(0, "id", np.arange(1, len(df) + 1))
        seq = df.groupby("city_code").cumcount() + 1
        df["source_id"] = prefix + df["city_code"] + "-" + seq.map("{:08d}".format)
        df["source_batch_id"] = [batch_id[(c, dataset)] for c in df["city_code"]]
        df["created_at"] = pd.Timestamp(anchor)
        df["updated_at"] = pd.Timestamp(anchor)
        return df

    hotspots = _hotspots(districts, size, rng)
    cases, persons, links, vehicles, vlinks = _cases_and_people(
        size, rng, anchor, districts, cipher
    )
    out["cases"] = envelope(cases, "cases", "AJ")
    out["persons"] = envelope(persons, "persons", "RY")
    out["person_case_links"] = links
    out["vehicles"] = envelope(vehicles, "vehicles", "CL")
    out["vehicle_case_links"] = vlinks

    cameras, roads = _cameras(cities, districts, size, rng, anchor, district_name)
    out["cameras"] = envelope(cameras, "cameras", "SXT")
    out["sightings"] = envelope(
        _sightings(out["cameras"], roads, size, rng, anchor), "sightings", "GC"
    )
    out["incidents"] = envelope(
        _incidents(districts, hotspots, size, rng, anchor, district_name, city_name, cipher),
        "incidents",
        "JQ",
    )
    out["risk_zones"] = envelope(_risk_zones(hotspots, rng, anchor, city_name), "risk_zones", "FX")
    out["units"] = envelope(_units(districts, size, rng, anchor, city_name), "units", "DW")
    out["help_requests"] = envelope(
        _help_requests(districts, size, rng, anchor, cipher), "help_requests", "QZ"
    )
    out["alerts"] = envelope(_alerts(hotspots, size, rng, anchor, city_name), "alerts", "YJ")
    _count_batches(out)
    return out


_DATASETS = (
    "cases", "persons", "vehicles", "cameras", "sightings", "incidents",
    "risk_zones", "units", "help_requests", "alerts",
)  # fmt: skip


def _batches(city_codes: list[str], anchor: datetime) -> pd.DataFrame:
    rows = [
        {
            "city_code": c,
            "dataset": d,
            "source_name": DEMO_SOURCE,
            "status": "done",
            "started_at": pd.Timestamp(anchor),
            "finished_at": pd.Timestamp(anchor),
            "note": "合成演示数据 / synthetic demo data",
        }
        for c in city_codes
        for d in _DATASETS
    ]
    df = pd.DataFrame(rows)
    df.insert(0, "id", np.arange(1, len(df) + 1))
    return df


def _count_batches(out: DemoData) -> None:
    batches = out["feed_batches"]
    counts: dict[int, int] = {}
    for name in _DATASETS:
        counts.update(out[name]["source_batch_id"].value_counts().to_dict())
    n = batches["id"].map(counts).fillna(0).astype(int)
    for col in ("rows_read", "rows_inserted"):
        batches[col] = n
    for col in ("rows_updated", "rows_unchanged", "rows_rejected"):
        batches[col] = 0


def _hotspots(districts: pd.DataFrame, size: Size, rng: np.random.Generator) -> pd.DataFrame:
    """Hotspot centres in the urban districts of each city, with a spread in km."""
    rows = []
    for city, group in districts.groupby("parent_adcode", sort=True):
        urban = group[group["name"].str.endswith("区")]
        pool = urban if len(urban) else group
        picks = rng.choice(len(pool), size=size.hotspots_per_city)
        for i in picks:
            d = pool.iloc[i]
            lon, lat = random_points_in(d.geometry, 1, rng)
            rows.append(
                {
                    "city_code": city,
                    "district_code": d.adcode,
                    "lon": float(lon[0]),
                    "lat": float(lat[0]),
                    "sigma_km": float(rng.uniform(0.5, 1.5)),
                    "intensity": float(rng.uniform(0.5, 1.5)),
                }
            )
    return pd.DataFrame(rows)


def _assign(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    city, district = assign_city_district(lon, lat, strict=True)
    ok = np.array([c is not None and d is not None for c, d in zip(city, district, strict=True)])
    return city, district, ok


def _incidents(
    districts, hotspots, size, rng, anchor, district_name, city_name, cipher
) -> pd.DataFrame:
    types = codes("incident_type")
    n = size.incidents
    n_hot = int(n * 0.55)
    # Hotspot incidents: Gaussian around a centre, weighted by city population.
    hw = hotspots["intensity"] * hotspots["city_code"].map(POPULATION)
    h = rng.choice(len(hotspots), size=n_hot, p=(hw / hw.sum()).to_numpy())
    sig = hotspots["sigma_km"].to_numpy()[h]
    lat0 = hotspots["lat"].to_numpy()[h]
    lon = hotspots["lon"].to_numpy()[h] + rng.normal(0, 1, n_hot) * sig / (
        111.32 * np.cos(np.radians(lat0))
    )
    lat = lat0 + rng.normal(0, 1, n_hot) * sig / 110.57
    city, district, ok = _assign(lon, lat)
    lon, lat, city, district = lon[ok], lat[ok], city[ok], district[ok]
    # The rest spread over districts, urban ones weighted up.
    d_idx = rng.choice(len(districts), size=n - len(lon), p=_district_weights(districts))
    lon2, lat2 = _points_in_districts(districts, d_idx, rng)
    lon = np.concatenate([lon, lon2])
    lat = np.concatenate([lat, lat2])
    city = np.concatenate([city, districts["parent_adcode"].to_numpy()[d_idx]])
    district = np.concatenate([district, districts["adcode"].to_numpy()[d_idx]])
    n = len(lon)

    weights = np.array([t.attrs["weight"] for t in types], float)
    t_idx = rng.choice(len(types), size=n, p=weights / weights.sum())
    night = np.array([t.attrs["night"] for t in types])[t_idx]
    ts = _local_times(n, anchor, size.days, rng, night)
    severity = rng.choice([1, 2, 3, 4], size=n, p=[0.68, 0.22, 0.08, 0.02])
    grave = np.isin(np.array([t.code for t in types])[t_idx], ["robbery", "assault", "fire"])
    severity = np.minimum(4, severity + (grave & (rng.random(n) < 0.35)))
    age_h = (pd.Timestamp(anchor) - ts).dt.total_seconds().to_numpy() / 3600
    status = np.where(age_h < 2, "open", np.where(age_h < 48, "handling", "closed"))
    status = np.where((status == "closed") & (rng.random(n) < 0.05), "handling", status)
    r7, r8 = _h3(lat, lon)
    type_code = np.array([t.code for t in types])[t_idx]
    type_zh = np.array([t.zh for t in types])[t_idx]
    street = rng.choice(_STREETS, size=n)
    number = rng.integers(1, 400, size=n)
    dname = np.array([district_name[d] for d in district])
    address = [f"{d}{s}{k}号" for d, s, k in zip(dname, street, number, strict=True)]
    phones = _phones(n, rng)
    with_phone = rng.random(n) < 0.15
    # The caller's phone is sealed as a feed's would be (hub.security.narrative): the
    # store never holds an identifier in clear text.
    summary = [
        f"（合成）报警人称在{a}附近发生{t}警情"
        + (f"，联系电话{seal(p, cipher)}" if wp else "")
        + "，已派员处置。"
        for a, t, p, wp in zip(address, type_zh, phones, with_phone, strict=True)
    ]
    df = pd.DataFrame(
        {
            "city_code": city,
            "district_code": district,
            "classification": _classify(
                n, {"public": 0.15, "internal": 0.72, "sensitive": 0.12, "secret": 0.01}, rng
            ),
            "type_code": type_code,
            "severity": severity,
            "status": status,
            "ts": ts,
            "reported_at": ts + pd.to_timedelta(rng.integers(30, 900, n), unit="s"),
            "lon": lon.round(6),
            "lat": lat.round(6),
            "h3_r7": r7,
            "h3_r8": r8,
            "address": address,
            "summary": summary,
        }
    )
    return df.sort_values("ts", kind="stable")


def _roads(cities: pd.DataFrame) -> list[tuple[str, str, LineString]]:
    """Straight inter-city roads between the centres of neighbouring cities."""
    adj = city_adjacency()
    centre = {r.adcode: r.geometry.representative_point() for r in cities.itertuples()}
    return [
        (a, b, LineString([centre[a], centre[b]]))
        for a in sorted(adj)
        for b in sorted(adj[a])
        if a < b
    ]


def _cameras(cities, districts, size, rng, anchor, district_name):
    """Cameras along inter-city roads (checkpoints at borders) and in urban districts."""
    city_name = dict(zip(cities.adcode, cities.name, strict=True))
    city_geom = dict(zip(cities.adcode, cities.geometry, strict=True))
    rows, roads = [], []
    for road_id, (a, b, line) in enumerate(_roads(cities)):
        length_km = haversine_m(*line.coords[0], *line.coords[-1]) / 1000
        road_name = f"{city_name[a][:2]}{city_name[b][:2]}公路"
        positions = list(
            np.arange(size.road_camera_spacing_km / 2, length_km, size.road_camera_spacing_km)
        )
        # A checkpoint 300 m each side of every point where the road crosses a border.
        crossings = line.intersection(shapely.union_all([g.boundary for g in city_geom.values()]))
        border_km = []
        for pt in getattr(crossings, "geoms", [crossings]):
            if isinstance(pt, Point):
                km = line.project(pt, normalized=True) * length_km
                border_km += [km - 0.3, km + 0.3]
        for km, at_border in [(k, False) for k in positions] + [(k, True) for k in border_km]:
            if not 0 < km < length_km:
                continue
            pt = line.interpolate(km / length_km, normalized=True)
            rows.append(
                {
                    "lon": pt.x,
                    "lat": pt.y,
                    "kind": "checkpoint"
                    if at_border
                    else ("alpr" if rng.random() < 0.8 else "panoramic"),
                    "road": road_name,
                    "road_id": road_id,
                    "road_km": km,
                    "at_border": at_border,
                }
            )
        roads.append((road_id, a, b, length_km))
    urban = districts[districts["name"].str.endswith("区")]
    for _city, group in urban.groupby("parent_adcode"):
        idx = rng.choice(len(group), size=size.urban_cameras_per_city)
        for i in idx:
            d = group.iloc[i]
            lon, lat = random_points_in(d.geometry, 1, rng)
            rows.append(
                {
                    "lon": float(lon[0]),
                    "lat": float(lat[0]),
                    "kind": str(rng.choice(["alpr", "panoramic", "face"], p=[0.6, 0.3, 0.1])),
                    "road": str(rng.choice(_STREETS)),
                    "road_id": -1,
                    "road_km": 0.0,
                    "at_border": False,
                }
            )
    df = pd.DataFrame(rows)
    city, district, ok = _assign(df["lon"].to_numpy(), df["lat"].to_numpy())
    df = df[ok].copy()
    df["city_code"], df["district_code"] = city[ok], district[ok]
    n = len(df)
    df["name"] = [
        f"{district_name[d]}{r}{f'K{k:.0f}' if rid >= 0 else ''}{'市界卡口' if bd else '监控点'}"
        for d, r, k, rid, bd in zip(
            df.district_code, df.road, df.road_km, df.road_id, df.at_border, strict=True
        )
    ]
    df["status"] = np.where(rng.random(n) < 0.93, "online", "offline")
    df["classification"] = "internal"
    df["installed_at"] = pd.Timestamp(anchor) - pd.to_timedelta(rng.integers(60, 2000, n), unit="D")
    df["lon"], df["lat"] = df["lon"].round(6), df["lat"].round(6)
    df = df.sort_values(["city_code", "road_id", "road_km"], kind="stable")
    return df, pd.DataFrame(roads, columns=["road_id", "a", "b", "length_km"])


def _group_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of the given sizes laid end to end: group index and position in group."""
    group = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return group, np.arange(counts.sum()) - starts[group]


def _sightings(cameras: pd.DataFrame, roads: pd.DataFrame, size, rng, anchor) -> pd.DataFrame:
    """Plate reads from vehicle trips along roads, plus town driving, in time order.

    Vectorised over trips: each batch lays every trip's cameras end to end, so the
    province size (10M reads) needs no Python loop per trip.
    """
    on_road = cameras[cameras["road_id"] >= 0].sort_values(["road_id", "road_km"])
    road_ids = roads["road_id"].to_numpy()
    per_road = on_road.groupby("road_id").size().reindex(road_ids, fill_value=0).to_numpy()
    road_off = np.cumsum(per_road) - per_road
    flat_cam = on_road["id"].to_numpy()
    flat_km = on_road["road_km"].to_numpy()
    road_len = roads["length_km"].to_numpy()
    usable = np.flatnonzero(per_road > 0)

    town = cameras[cameras["road_id"] < 0].sort_values("city_code")
    city_list = sorted(POPULATION)
    per_city = town.groupby("city_code").size().reindex(city_list, fill_value=0).to_numpy()
    city_off = np.cumsum(per_city) - per_city
    town_cam = town["id"].to_numpy()

    pursuit = _pursuit_sightings(cameras, anchor)
    n_target = size.sightings - len(pursuit)
    n_vehicles = max(200, n_target // 12)
    pop = np.array([POPULATION[c] for c in city_list], float)
    home = rng.choice(len(city_list), size=n_vehicles, p=pop / pop.sum())
    home = home[per_city[home] > 0] if (per_city[home] > 0).any() else home
    n_vehicles = len(home)
    plates = _plates(n_vehicles, np.array(city_list)[home], rng)

    cams, vehs, times, speeds = [], [], [], []
    made = 0
    batch = max(1000, n_target // 40)
    while made < n_target:
        # Inter-city trips: every camera on the road, each read with 90 % probability.
        r = rng.choice(usable, size=batch)
        trip, pos = _group_positions(per_road[r])
        idx = road_off[r][trip] + pos
        km = flat_km[idx]
        reverse = (rng.random(batch) < 0.5)[trip]
        dist = np.where(reverse, road_len[r][trip] - km, km)
        speed = rng.uniform(60, 110, size=batch)[trip]
        start = (
            _local_times(batch, anchor - timedelta(hours=3), size.days, rng)
            .dt.tz_localize(None)
            .to_numpy()
        )
        hit = rng.random(len(idx)) < 0.9
        cams.append(flat_cam[idx][hit])
        vehs.append(rng.integers(0, n_vehicles, size=batch)[trip][hit])
        times.append(start[trip][hit] + ((dist / speed) * 3600)[hit].astype("timedelta64[s]"))
        speeds.append(speed[hit])
        # Town driving: two to six urban cameras of the home city, minutes apart.
        v = rng.integers(0, n_vehicles, size=batch)
        v = v[per_city[home[v]] > 0]
        hops = rng.integers(2, 7, size=len(v))
        trip, _ = _group_positions(hops)
        city = home[v][trip]
        cams.append(town_cam[city_off[city] + (rng.random(len(trip)) * per_city[city]).astype(int)])
        vehs.append(v[trip])
        gap = rng.uniform(120, 1500, size=len(trip))
        elapsed = np.cumsum(gap) - np.repeat(
            np.cumsum(gap)[np.cumsum(hops) - hops] - gap[np.cumsum(hops) - hops], hops
        )
        start = _local_times(len(v), anchor, size.days, rng).dt.tz_localize(None).to_numpy()
        times.append(start[trip] + elapsed.astype("timedelta64[s]"))
        speeds.append(np.full(len(trip), np.nan))
        made += len(cams[-1]) + len(cams[-2])
    df = pd.DataFrame(
        {
            "camera_id": np.concatenate(cams),
            "plate": plates[np.concatenate(vehs)],
            "ts": pd.to_datetime(np.concatenate(times), utc=True),
            "speed_kmh": np.concatenate(speeds),
        }
    )
    df = df[df["ts"] <= pd.Timestamp(anchor)].head(n_target)
    df = pd.concat([df, pursuit], ignore_index=True)
    cam = cameras.set_index("id")
    for col in ("city_code", "district_code", "lon", "lat"):
        df[col] = cam[col].reindex(df["camera_id"]).to_numpy()
    df["speed_kmh"] = (df["speed_kmh"] + rng.normal(0, 5, len(df))).round(1)
    df["plate_color"] = np.where(df["plate"].str.len() == 8, "green", "blue")
    df["direction"] = rng.choice(["N", "S", "E", "W"], size=len(df))
    df["classification"] = "sensitive"
    return df.sort_values("ts", kind="stable")


def _pursuit_sightings(cameras: pd.DataFrame, anchor: datetime) -> pd.DataFrame:
    """The scripted pursuit: 合肥 town cameras, then the road into 滁州 within the hour."""
    pair = sorted([PURSUIT_FROM, PURSUIT_TO])
    road = cameras[(cameras["road"] == _road_name_for(pair, cameras))]
    from_city = road["city_code"] == PURSUIT_FROM
    km = road["road_km"].to_numpy()
    outbound = km if pair[0] == PURSUIT_FROM else km.max() - km
    road = road.assign(dist=outbound).sort_values("dist")
    # Keep the last few 合肥 cameras before the border and the first few in 滁州.
    seq = pd.concat(
        [road[from_city.loc[road.index]].tail(4), road[~from_city.loc[road.index]].head(4)]
    )
    town = cameras[(cameras["city_code"] == PURSUIT_FROM) & (cameras["road_id"] < 0)].head(2)
    speed = 95.0
    first = seq["dist"].iloc[0]
    t0 = pd.Timestamp(anchor) - pd.Timedelta(minutes=80)  # on the road to the border
    times = [t0 + pd.Timedelta(seconds=round((d - first) / speed * 3600)) for d in seq["dist"]]
    # The town reads before it at a town pace over the road distance (the straight line
    # times a detour factor), counted back from the road: a scripted car that drives at
    # 60 km/h, not one whose implied speed flags it as a cloned plate.
    hops = pd.concat([town, seq.head(1)])[["lon", "lat"]].to_numpy()
    for a, b in reversed(list(zip(hops, hops[1:], strict=False))):
        km = float(haversine_m(*a, *b)) / 1000 * _ROAD_DETOUR
        times.insert(0, times[0] - pd.Timedelta(seconds=round(km / _TOWN_KMH * 3600)))
    return pd.DataFrame(
        {
            "camera_id": list(town["id"]) + list(seq["id"]),
            "plate": PURSUIT_PLATE,
            "ts": times,
            "speed_kmh": [_TOWN_KMH] * len(town) + [speed] * len(seq),
        }
    )


def _road_name_for(pair: list[str], cameras: pd.DataFrame) -> str:
    names = load_boundaries().cities.set_index("adcode")["name"]
    return f"{names[pair[0]][:2]}{names[pair[1]][:2]}公路"


def _cases_and_people(size, rng, anchor, districts, cipher):
    case_types = [c.code for c in codes("case_type")]
    n = size.cases
    d_idx = rng.choice(len(districts), size=n, p=_district_weights(districts))
    city = districts["parent_adcode"].to_numpy()[d_idx]
    district = districts["adcode"].to_numpy()[d_idx]
    ctype = rng.choice(case_types, size=n)
    opened = pd.Series(
        pd.Timestamp(anchor) - pd.to_timedelta(rng.integers(3600, 180 * 86400, n), unit="s")
    )
    status = np.where(rng.random(n) < 0.6, "open", "closed")
    titles = {c.code: c.zh for c in codes("case_type")}
    cases = pd.DataFrame(
        {
            "city_code": city,
            "district_code": district,
            "classification": _classify(
                n, {"internal": 0.6, "sensitive": 0.35, "secret": 0.05}, rng
            ),
            "case_type": ctype,
            "status": status,
            "opened_at": opened,
            "closed_at": opened.where(status == "closed") + pd.Timedelta(days=20),
            "title": [
                f"（合成）{districts.name.iloc[i]}{titles[t]}"
                for i, t in zip(d_idx, ctype, strict=True)
            ],
        }
    )
    cases = cases.sort_values("opened_at", kind="stable").reset_index(drop=True)
    # The pursuit case comes first, so its id is 1 and its number is fixed.
    pursuit = pd.DataFrame(
        {
            "city_code": [PURSUIT_FROM],
            "district_code": ["340102"],
            "classification": ["internal"],
            "case_type": ["vehicle_theft"],
            "status": ["open"],
            "opened_at": [pd.Timestamp(anchor) - pd.Timedelta(hours=6)],
            "closed_at": [pd.NaT],
            "title": ["（合成）合肥市瑶海区盗抢机动车案（追逃演示）"],
        }
    )
    cases = pd.concat([pursuit, cases], ignore_index=True)
    ym = cases["opened_at"].dt.tz_convert("Asia/Shanghai").dt.strftime("%Y")
    seq = cases.groupby([cases["city_code"], ym]).cumcount() + 1
    cases["case_no"] = "A" + cases["city_code"] + ym + seq.map("{:05d}".format)
    cases["closed_at"] = pd.to_datetime(cases["closed_at"], utc=True)

    p = size.persons
    pd_idx = rng.choice(len(districts), size=p, p=_district_weights(districts))
    births = pd.to_datetime("1950-01-01") + pd.to_timedelta(rng.integers(0, 55 * 365, p), unit="D")
    seqs = rng.integers(0, 1000, size=p)
    ids = [
        make_id_number(districts.adcode.iloc[d], date(t.year, t.month, t.day), int(s))
        for d, t, s in zip(pd_idx, births, seqs, strict=True)
    ]
    phones = [normalize_phone(x) for x in _phones(p, rng)]
    persons = pd.DataFrame(
        {
            "city_code": districts["parent_adcode"].to_numpy()[pd_idx],
            "district_code": districts["adcode"].to_numpy()[pd_idx],
            "classification": _classify(
                p, {"internal": 0.25, "sensitive": 0.7, "secret": 0.05}, rng
            ),
            "name": _names(p, rng),
            "sex": ["M" if int(i[16]) % 2 else "F" for i in ids],
            "birth_date": [t.date() for t in births],
            "id_enc": [cipher.encrypt("id_number", i) for i in ids],
            "id_bidx": [cipher.blind_index("id_number", i) for i in ids],
            "phone_enc": [cipher.encrypt("phone", x) for x in phones],
            "phone_bidx": [cipher.blind_index("phone", x) for x in phones],
            "key_id": cipher.key_id,
            "address": [
                f"{districts.name.iloc[d]}{rng.choice(_STREETS)}{rng.integers(1, 300)}号"
                for d in pd_idx
            ],
        }
    )
    # Each case names one to three people; the first is a suspect.
    links = []
    for case_id in range(1, len(cases) + 1):
        k = int(rng.integers(1, 4))
        for j, person in enumerate(rng.choice(p, size=k, replace=False)):
            role = "suspect" if j == 0 else str(rng.choice(["victim", "witness"]))
            links.append((int(person) + 1, case_id, role))
    links_df = pd.DataFrame(links, columns=["person_id", "case_id", "role"]).drop_duplicates(
        ["person_id", "case_id"]
    )
    # Half the people own a car; the pursuit plate belongs to the pursuit case's suspect.
    owners = np.flatnonzero(rng.random(p) < 0.5)
    plates = _plates(len(owners), persons["city_code"].to_numpy()[owners], rng)
    vehicles = pd.DataFrame(
        {
            "city_code": persons["city_code"].to_numpy()[owners],
            "classification": "internal",
            "plate": plates,
            "make": rng.choice(
                ["大众", "丰田", "比亚迪", "吉利", "奇瑞", "江淮"], size=len(owners)
            ),
            "color": rng.choice(["白", "黑", "银", "红", "蓝"], size=len(owners)),
            "owner_person_id": owners + 1,
        }
    )
    suspect = int(
        links_df[(links_df.case_id == 1) & (links_df.role == "suspect")].person_id.iloc[0]
    )
    pursuit_car = pd.DataFrame(
        {
            "city_code": [PURSUIT_FROM],
            "classification": ["internal"],
            "plate": [PURSUIT_PLATE],
            "make": ["大众"],
            "color": ["黑"],
            "owner_person_id": [suspect],
        }
    )
    vehicles = pd.concat(
        [pursuit_car, vehicles[vehicles.plate != PURSUIT_PLATE]], ignore_index=True
    )
    vlinks = pd.DataFrame({"vehicle_id": [1], "case_id": [1], "role": ["suspect_vehicle"]})
    return cases, persons, links_df, vehicles, vlinks


def _risk_zones(hotspots, rng, anchor, city_name) -> pd.DataFrame:
    rows = []
    for h in hotspots.itertuples():
        radius = h.sigma_km * 1000 * 1.5
        level = "high" if h.intensity > 1.2 else ("medium" if h.intensity > 0.8 else "low")
        zone = buffer_m(Point(h.lon, h.lat), radius)
        rows.append(
            {
                "city_code": h.city_code,
                "district_code": h.district_code,
                "classification": "internal",
                "name": f"（合成）{city_name[h.city_code]}治安重点区域{len(rows) + 1}",
                "level": level,
                "reason": "近30天警情高发（合成演示数据）",
                "geometry": shapely.to_geojson(zone),
                "lon": round(h.lon, 6),
                "lat": round(h.lat, 6),
                "valid_from": pd.Timestamp(anchor) - pd.Timedelta(days=int(rng.integers(1, 60))),
                "valid_to": pd.NaT,
            }
        )
    df = pd.DataFrame(rows)
    df["valid_to"] = pd.to_datetime(df["valid_to"], utc=True)
    return df


_UNIT_MIX = [
    ("patrol_car", 0.55),
    ("traffic", 0.12),
    ("swat", 0.05),
    ("fire_engine", 0.1),
    ("ambulance", 0.12),
    ("hospital", 0.06),
]
_UNIT_SHORT = {
    "patrol_car": "巡",
    "traffic": "交",
    "swat": "特",
    "fire_engine": "消",
    "ambulance": "救",
    "hospital": "医院",
}


def _units(districts, size, rng, anchor, city_name) -> pd.DataFrame:
    rows = []
    kinds = [k for k, _ in _UNIT_MIX]
    probs = np.array([p for _, p in _UNIT_MIX])
    for city, group in districts.groupby("parent_adcode", sort=True):
        n = max(6, int(size.units_per_city * POPULATION[city] / 400))
        w = _district_weights(group.reset_index(drop=True))
        d_idx = rng.choice(len(group), size=n, p=w)
        lon, lat = _points_in_districts(group.reset_index(drop=True), d_idx, rng)
        kind = rng.choice(kinds, size=n, p=probs)
        for i in range(n):
            k = kind[i]
            rows.append(
                {
                    "city_code": city,
                    "district_code": group.adcode.iloc[d_idx[i]],
                    "classification": "internal",
                    "callsign": f"{city_name[city][:2]}{_UNIT_SHORT[k]}{i + 1:03d}",
                    "kind": k,
                    "status": "available"
                    if k == "hospital"
                    else str(
                        rng.choice(
                            ["available", "dispatched", "en_route", "on_scene", "out_of_service"],
                            p=[0.7, 0.08, 0.07, 0.1, 0.05],
                        )
                    ),
                    "lon": round(float(lon[i]), 6),
                    "lat": round(float(lat[i]), 6),
                    "station": f"{group.name.iloc[d_idx[i]]}{'医院' if k == 'hospital' else '站'}",
                    "capacity": int(rng.integers(100, 1500)) if k == "hospital" else None,
                    "status_at": pd.Timestamp(anchor)
                    - pd.Timedelta(minutes=int(rng.integers(0, 600))),
                }
            )
    df = pd.DataFrame(rows)
    df["capacity"] = df["capacity"].astype("Int64")
    return df


def _help_requests(districts, size, rng, anchor, cipher) -> pd.DataFrame:
    n = size.help_requests
    d_idx = rng.choice(len(districts), size=n, p=_district_weights(districts))
    lon, lat = _points_in_districts(districts, d_idx, rng)
    kinds = [c.code for c in codes("help_kind")]
    kind = rng.choice(kinds, size=n, p=[0.3, 0.1, 0.35, 0.15, 0.1])
    ts = _local_times(n, anchor, size.days, rng, 0.2)
    age_h = (pd.Timestamp(anchor) - ts).dt.total_seconds().to_numpy() / 3600
    phones = _phones(n, rng)
    labels = {c.code: c.zh for c in codes("help_kind")}
    return pd.DataFrame(
        {
            "city_code": districts["parent_adcode"].to_numpy()[d_idx],
            "district_code": districts["adcode"].to_numpy()[d_idx],
            "classification": _classify(
                n, {"public": 0.2, "internal": 0.75, "sensitive": 0.05}, rng
            ),
            "kind": kind,
            "status": np.where(age_h < 1, "open", np.where(age_h < 6, "handling", "closed")),
            "ts": ts,
            "lon": lon.round(6),
            "lat": lat.round(6),
            "summary": [f"（合成）群众{labels[k]}求助" for k in kind],
            "caller_phone_enc": [cipher.encrypt("phone", x) for x in phones],
            "caller_phone_bidx": [cipher.blind_index("phone", x) for x in phones],
            "key_id": cipher.key_id,
        }
    ).sort_values("ts", kind="stable")


def _alerts(hotspots, size, rng, anchor, city_name) -> pd.DataFrame:
    rows = []
    for city, group in hotspots.groupby("city_code", sort=True):
        for i in range(size.alerts_per_city):
            h = group.iloc[i % len(group)]
            kind = str(rng.choice(["hotspot", "fraud_wave", "manual"], p=[0.5, 0.3, 0.2]))
            title = {
                "hotspot": f"（合成）{city_name[city]}治安热点预警",
                "fraud_wave": f"（合成）{city_name[city]}电信诈骗高发预警",
                "manual": f"（合成）{city_name[city]}重点人员动向提示",
            }[kind]
            age = pd.Timedelta(hours=int(rng.integers(1, 24 * 7)))
            rows.append(
                {
                    "city_code": city,
                    "district_code": h.district_code,
                    "classification": "internal" if kind != "fraud_wave" else "public",
                    "kind": kind,
                    "level": str(rng.choice(["low", "medium", "high"], p=[0.3, 0.5, 0.2])),
                    "title": title,
                    "body": "合成演示数据：请关注该区域近期警情变化。",
                    "status": "active" if age < pd.Timedelta(days=3) else "closed",
                    "ts": pd.Timestamp(anchor) - age,
                    "lon": round(h.lon, 6),
                    "lat": round(h.lat, 6),
                    "radius_m": round(h.sigma_km * 2000),
                }
            )
    return pd.DataFrame(rows)


# --- writing it -------------------------------------------------------------------------

_RECORD_TABLES = [
    # Joint response, alert pushes and assists point at the records below.
    "timeline_entries",
    "resource_requests",
    "operation_participants",
    "operations",
    "alert_recipients",
    "assist_recipients",
    "assist_requests",
    "exercise_records",
    "exercise_runs",
    "alerts",
    "help_requests",
    "units",
    "risk_zones",
    "incidents",
    "sightings",
    "cameras",
    "vehicle_case_links",
    "vehicles",
    "person_case_links",
    "persons",
    "cases",
    "feed_rejects",
    "feed_batches",
]  # fmt: skip — children first, for deleting


@contextmanager
def progress_bar(*, disable: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A terminal progress bar (stderr) fed by `seed(progress=...)`."""
    from tqdm import tqdm

    bar = tqdm(unit=" rows", unit_scale=True, disable=disable, file=sys.stderr)

    def progress(table: str, rows: int, total: int) -> None:
        bar.set_description(table)
        bar.update(rows)

    try:
        yield progress
    finally:
        bar.close()


class AlreadySeeded(Exception):
    """The store already holds records; seeding again needs an explicit reset."""


def record_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return sum(
            conn.execute(select(func.count()).select_from(m.Base.metadata.tables[t])).scalar_one()
            for t in ("incidents", "sightings", "cases", "persons", "cameras", "feed_batches")
        )


def clear_records(engine: Engine) -> None:
    """Delete every shared record (not users, references or audit) in one transaction."""
    with engine.begin() as conn:
        for name in _RECORD_TABLES:
            conn.execute(delete(m.Base.metadata.tables[name]))


def seed(
    engine: Engine,
    settings: Settings,
    *,
    size: str = "demo",
    seed: int = 7,
    anchor: datetime | None = None,
    reset: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """Generate the demo province and bulk-load it; returns rows written per table.

    Raises
    ------
    AlreadySeeded
        The store holds records and `reset` is false.
    """
    if record_count(engine):
        if not reset:
            raise AlreadySeeded(
                "the store already holds records; pass --reset to replace them with the demo"
            )
        clear_records(engine)
    anchor = anchor or anchor_now()
    data = generate(SIZES[size], seed, anchor, FieldCipher.from_settings(settings))
    written: dict[str, int] = {}
    tables = m.Base.metadata.tables
    for name, df in data.items():
        table: Table = tables[name]
        df = df[[c for c in df.columns if c in table.c]]
        big = len(df) > 200_000
        written[name] = bulk_insert(
            engine,
            table,
            [df],
            rebuild_indexes=big,
            progress=(lambda k, name=name, total=len(df): progress(name, k, total))
            if progress
            else None,
        )
    reset_sequences(engine, [tables[n] for n in data])
    if engine.dialect.name == "postgresql":
        # Millions of rows arrived by COPY with indexes rebuilt: without statistics the
        # planner guesses, and without a visibility map no index-only scan is possible
        # (the situation map's counts read the covering time index alone only then) —
        # until autovacuum gets round to the tables. VACUUM ANALYZE does both now.
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    written["users"] = seed_users(engine, now=anchor - timedelta(days=4))
    from hub import demo_activity  # uses the services, which import this module

    written["audit_log"] = demo_activity.run(engine, settings, anchor=anchor)
    return written


# --- demo accounts ----------------------------------------------------------------------

# (username, display name, role, city, district). Every account uses the published
# DEMO_PASSWORD: demo only; `HUB_ENV=production` refuses to start while any keeps it.
DEMO_USERS: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    ("officer.hf", "王警官（合肥瑶海）", "officer", "340100", "340102"),
    ("officer.cz", "李警官（滁州琅琊）", "officer", "341100", "341102"),
    ("officer.wh", "张警官（芜湖镜湖）", "officer", "340200", "340202"),
    ("investigator.hf", "陈侦查员（合肥市局）", "investigator", "340100", None),
    ("investigator.cz", "刘侦查员（滁州市局）", "investigator", "341100", None),
    ("investigator.wh", "赵侦查员（芜湖市局）", "investigator", "340200", None),
    ("approver.hf", "周审批（合肥市局）", "city_approver", "340100", None),
    ("approver.cz", "吴审批（滁州市局）", "city_approver", "341100", None),
    ("approver.wh", "孙审批（芜湖市局）", "city_approver", "340200", None),
    ("province.approver", "郑审批（省厅）", "province_approver", "340100", None),
    ("province.approver2", "冯审批（省厅）", "province_approver", "340100", None),
    ("commander.hf", "马指挥长（合肥）", "commander", "340100", None),
    ("commander.cz", "朱指挥长（滁州）", "commander", "341100", None),
    ("commander.wh", "胡指挥长（芜湖）", "commander", "340200", None),
    ("analyst", "郭分析员（省厅）", "analyst", "340100", None),
    ("auditor", "何纪检（省厅）", "auditor", "340100", None),
    ("auditor.cz", "林纪检（滁州）", "auditor", "341100", None),
    ("leader", "罗领导（省厅）", "leader", "340100", None),
    ("admin", "高管理员", "admin", None, None),
)


def seed_users(engine: Engine, *, now: datetime) -> int:
    """Create the demo accounts that do not exist yet, through the real user service."""
    from hub.security.identity import add_demo_user
    from hub.store import transaction

    made = 0
    with transaction(engine) as session:
        existing = set(session.scalars(select(m.User.username)))
        for username, name, role, city, district in DEMO_USERS:
            if username in existing:
                continue
            add_demo_user(session, username=username, display_name=name, role=role,
                          city_code=city, district_code=district, now=now)  # fmt: skip
            made += 1
    return made
