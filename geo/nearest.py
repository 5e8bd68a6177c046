"""Nearest response units to an incident, with an estimated time of arrival.

Units are projected once to UTM zone 50N (EPSG:32650), which covers the whole
province (114.9-119.7 E lies inside the zone's 114-120 E), so a query is plain
Euclidean arithmetic in metres: vectorised squared distances and
``numpy.argpartition``. For the few thousand units of a province this beats
building and querying a tree, and it needs no extra dependency (see
:func:`bench_nearest` for the figures).

ETA model (an estimate for ranking and briefing, not routing)::

    eta_min = distance_m * road_factor / speed(kind) + turnout_min

- ``distance_m``: straight line in the projected CRS.
- ``road_factor`` (default :data:`ROAD_FACTOR` = 1.3): road distance over
  straight-line distance. Circuity studies of road networks put the ratio at
  about 1.2-1.4 for cities and main roads; 1.3 is the usual middle value.
- ``speed(kind)``: ``speed_kmh`` of the unit kind in ``data/codes.toml``, the
  single source shared with the published standard. The values there are
  assumptions for average speeds with lights and siren on mixed urban and
  suburban roads: patrol car and traffic police 60 km/h, SWAT and ambulance
  55 km/h (heavier vehicles, crew kit), fire engine 45 km/h (heavy, slow to
  accelerate). Kinds that do not move (``mobile = false``, a hospital) get no
  ETA (NaN): they are destinations, not responders.
- ``turnout_min`` (default :data:`TURNOUT_MIN` = 1.0): the minute between the
  call and the wheels rolling.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from geo.distance import project_xy

METRIC_EPSG = 32650
ROAD_FACTOR = 1.3
TURNOUT_MIN = 1.0
CODES_PATH = Path(__file__).resolve().parents[1] / "data" / "codes.toml"

# UTM 50N is exact enough within one zone either side of its 117 E central
# meridian (scale error < 0.3 %); anything further is a data error, most often
# swapped lon/lat or a GCJ-02/BD-09 mix-up far worse than a few metres.
_LON_RANGE = (111.0, 123.0)
_LAT_RANGE = (0.0, 84.0)
# Queries are processed in blocks so the (queries x units) distance matrix
# stays around 16 MB whatever the batch size.
_BLOCK_CELLS = 2_000_000

RESULT_COLUMNS = ("id", "kind", "distance_m", "eta_min")
MANY_COLUMNS = ("query", "rank", *RESULT_COLUMNS)
_EMPTY_DTYPES = {"query": "int64", "rank": "int64", "distance_m": "float64", "eta_min": "float64"}


@lru_cache(maxsize=4)
def _speeds(path: Path) -> Mapping[str, float]:
    with path.open("rb") as fh:
        entries = tomllib.load(fh)["unit_kind"]
    speeds = {}
    for entry in entries:
        mobile = bool(entry.get("mobile", True))
        speeds[str(entry["code"])] = float(entry["speed_kmh"]) if mobile else 0.0
    return MappingProxyType(speeds)


def unit_speeds_kmh(path: Path | None = None) -> Mapping[str, float]:
    """Assumed average speed of every unit kind, from the code table.

    Parameters
    ----------
    path : pathlib.Path, optional
        TOML file with a ``unit_kind`` table; defaults to ``data/codes.toml``.

    Returns
    -------
    Mapping of str to float
        Unit kind code to km/h (read-only); 0 for kinds that do not move.
    """
    return _speeds(Path(path or CODES_PATH).resolve())


def _check_coords(lon: NDArray[np.float64], lat: NDArray[np.float64], what: str) -> None:
    if lon.shape != lat.shape or lon.ndim != 1:
        raise ValueError(f"{what}: lon and lat must be 1-D arrays of equal length")
    bad = ~(
        np.isfinite(lon)
        & np.isfinite(lat)
        & (lon >= _LON_RANGE[0])
        & (lon <= _LON_RANGE[1])
        & (lat >= _LAT_RANGE[0])
        & (lat <= _LAT_RANGE[1])
    )
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what}: {int(bad.sum())} coordinate(s) outside lon {_LON_RANGE}, lat "
            f"{_LAT_RANGE} (first at position {i}: lon={lon[i]}, lat={lat[i]}); "
            "expected WGS84 degrees in or near the province (swapped lon/lat?)"
        )


class UnitIndex:
    """Units projected once to EPSG:32650 for repeated nearest-unit queries.

    Build a new index when units move; the index is immutable after creation.

    Parameters
    ----------
    ids : array_like
        Unit identifiers, unique (returned as given).
    lon, lat : array_like of float
        WGS84 positions in degrees.
    kind : array_like of str
        Unit kind codes (``unit_kind`` in ``data/codes.toml``).
    speeds_kmh : Mapping of str to float, optional
        Speed per kind; defaults to :func:`unit_speeds_kmh`. Kinds with speed 0
        get no ETA.
    road_factor : float, default :data:`ROAD_FACTOR`
        Road over straight-line distance, at least 1.
    turnout_min : float, default :data:`TURNOUT_MIN`
        Minutes added to every ETA, at least 0.

    Raises
    ------
    ValueError
        If the arrays differ in length, ids repeat, a coordinate is not finite
        or far outside the projection's zone, a kind has no speed, or
        ``road_factor`` / ``turnout_min`` are out of range.
    """

    def __init__(
        self,
        ids: ArrayLike,
        lon: ArrayLike,
        lat: ArrayLike,
        kind: ArrayLike,
        *,
        speeds_kmh: Mapping[str, float] | None = None,
        road_factor: float = ROAD_FACTOR,
        turnout_min: float = TURNOUT_MIN,
    ) -> None:
        ids_arr = np.asarray(ids)
        lon_arr = np.asarray(lon, dtype=np.float64)
        lat_arr = np.asarray(lat, dtype=np.float64)
        kind_arr = np.asarray(kind, dtype=object)
        n = len(ids_arr)
        if ids_arr.ndim != 1 or kind_arr.ndim != 1 or len(kind_arr) != n or len(lon_arr) != n:
            raise ValueError("ids, lon, lat and kind must be 1-D arrays of equal length")
        _check_coords(lon_arr, lat_arr, "units")
        if len(pd.unique(ids_arr)) != n:
            raise ValueError("unit ids must be unique")
        if not (np.isfinite(road_factor) and road_factor >= 1.0):
            raise ValueError(f"road_factor must be >= 1, got {road_factor}")
        if not (np.isfinite(turnout_min) and turnout_min >= 0.0):
            raise ValueError(f"turnout_min must be >= 0, got {turnout_min}")
        speeds = unit_speeds_kmh() if speeds_kmh is None else speeds_kmh
        unknown = sorted({str(k) for k in kind_arr} - set(speeds))
        if unknown:
            raise ValueError(f"unknown unit kinds {unknown}; known: {sorted(speeds)}")

        self._ids = ids_arr
        self._kind = kind_arr
        self._x, self._y = project_xy(lon_arr, lat_arr, METRIC_EPSG)
        kmh = np.array([float(speeds[str(k)]) for k in kind_arr], dtype=np.float64)
        # Minutes per metre, NaN for kinds that do not move, so one multiply
        # gives the ETA and immobile kinds propagate NaN without a branch.
        with np.errstate(divide="ignore"):
            self._min_per_m = np.where(kmh > 0, road_factor * 60.0 / (kmh * 1000.0), np.nan)
        self._turnout = float(turnout_min)
        self._known_kinds = frozenset(speeds)
        self._by_kinds: dict[frozenset[str], NDArray[np.intp]] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def _candidates(self, kinds: str | Iterable[str] | None) -> NDArray[np.intp] | None:
        # None means "every unit" and skips a gather on the common path.
        if kinds is None:
            return None
        key = frozenset([kinds] if isinstance(kinds, str) else kinds)
        unknown = sorted(key - self._known_kinds)
        if unknown:
            # A misspelt kind would otherwise look like "no unit within reach".
            raise ValueError(f"unknown unit kinds {unknown}; known: {sorted(self._known_kinds)}")
        if key not in self._by_kinds:
            self._by_kinds[key] = np.flatnonzero(np.isin(self._kind, list(key)))
        return self._by_kinds[key]

    def _query_xy(
        self, lons: ArrayLike, lats: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        lon_arr = np.atleast_1d(np.asarray(lons, dtype=np.float64))
        lat_arr = np.atleast_1d(np.asarray(lats, dtype=np.float64))
        _check_coords(lon_arr, lat_arr, "query")
        return project_xy(lon_arr, lat_arr, METRIC_EPSG)

    def _nearest_block(
        self,
        qx: NDArray[np.float64],
        qy: NDArray[np.float64],
        k: int,
        candidates: NDArray[np.intp] | None,
    ) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        ux = self._x if candidates is None else self._x[candidates]
        uy = self._y if candidates is None else self._y[candidates]
        if len(qx) == 1:
            # One incident (the board's case): 1-D arrays halve the numpy overhead.
            d2_row = (ux - qx[0]) ** 2 + (uy - qy[0]) ** 2
            top = np.argpartition(d2_row, k - 1)[:k] if k < len(d2_row) else np.arange(k)
            top = top[np.argsort(d2_row[top], kind="stable")]
            pos_row = top if candidates is None else candidates[top]
            return pos_row[None, :], np.sqrt(d2_row[top])[None, :]
        d2 = (qx[:, None] - ux[None, :]) ** 2 + (qy[:, None] - uy[None, :]) ** 2
        m = d2.shape[1]
        if k < m:
            part = np.argpartition(d2, k - 1, axis=1)[:, :k]
            part_d2 = np.take_along_axis(d2, part, axis=1)
        else:
            part, part_d2 = np.broadcast_to(np.arange(m), d2.shape), d2
        order = np.argsort(part_d2, axis=1, kind="stable")
        pos = np.take_along_axis(part, order, axis=1)
        dist = np.sqrt(np.take_along_axis(part_d2, order, axis=1))
        return (pos if candidates is None else candidates[pos]), dist

    def _search(
        self,
        lons: ArrayLike,
        lats: ArrayLike,
        k: int,
        kinds: str | Iterable[str] | None,
        max_km: float | None,
    ) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
        # (query, rank, unit position, distance) as flat arrays: the two public
        # methods only differ in the frame they build from them.
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if max_km is not None and not max_km >= 0:
            raise ValueError(f"max_km must be >= 0, got {max_km}")
        qx, qy = self._query_xy(lons, lats)
        candidates = self._candidates(kinds)
        m = len(self) if candidates is None else len(candidates)
        if m == 0 or len(qx) == 0:
            none = np.empty(0, dtype=np.intp)
            return none, none, none, np.empty(0)
        k = min(k, m)
        block = max(1, _BLOCK_CELLS // m)
        found = [
            self._nearest_block(qx[start : start + block], qy[start : start + block], k, candidates)
            for start in range(0, len(qx), block)
        ]
        pos = np.concatenate([p for p, _ in found]).ravel()
        dist = np.concatenate([d for _, d in found]).ravel()
        query = np.repeat(np.arange(len(qx)), k)
        rank = np.tile(np.arange(k), len(qx))
        if max_km is not None:
            keep = dist <= max_km * 1000.0
            pos, dist, query, rank = pos[keep], dist[keep], query[keep], rank[keep]
        return query, rank, pos, dist

    def _columns(self, pos: NDArray[np.intp], dist: NDArray[np.float64]) -> dict[str, object]:
        return {
            "id": self._ids[pos],
            "kind": self._kind[pos],
            "distance_m": dist,
            "eta_min": dist * self._min_per_m[pos] + self._turnout,
        }

    def nearest_many(
        self,
        lons: ArrayLike,
        lats: ArrayLike,
        k: int = 5,
        kinds: str | Iterable[str] | None = None,
        max_km: float | None = None,
    ) -> pd.DataFrame:
        """The ``k`` nearest units of each of many query points.

        Parameters
        ----------
        lons, lats : array_like of float
            WGS84 query positions in degrees.
        k : int, default 5
            Units per query, at most; fewer if the index (or filter) has fewer
            or ``max_km`` cuts them off.
        kinds : str or iterable of str, optional
            Only units of these kinds.
        max_km : float, optional
            Only units within this straight-line distance.

        Returns
        -------
        pandas.DataFrame
            Columns ``query`` (position of the query point), ``rank`` (0 =
            nearest), ``id``, ``kind``, ``distance_m``, ``eta_min``; ordered by
            query then rank.

        Raises
        ------
        ValueError
            If ``k`` < 1, ``max_km`` is negative, a kind is unknown or a query
            coordinate is invalid.
        """
        query, rank, pos, dist = self._search(lons, lats, k, kinds, max_km)
        if len(pos) == 0:
            return _empty(MANY_COLUMNS)
        return pd.DataFrame({"query": query, "rank": rank, **self._columns(pos, dist)})

    def nearest(
        self,
        lon: float,
        lat: float,
        k: int = 5,
        kinds: str | Iterable[str] | None = None,
        max_km: float | None = None,
    ) -> pd.DataFrame:
        """The ``k`` nearest units to one point.

        Parameters
        ----------
        lon, lat : float
            WGS84 position of the incident in degrees.
        k : int, default 5
            Units to return at most.
        kinds : str or iterable of str, optional
            Only units of these kinds.
        max_km : float, optional
            Only units within this straight-line distance.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``kind``, ``distance_m``, ``eta_min``, nearest
            first; empty (same columns) when nothing qualifies.

        Raises
        ------
        ValueError
            If ``k`` < 1, ``max_km`` is negative, a kind is unknown or the point
            is invalid.
        """
        _, _, pos, dist = self._search([lon], [lat], k, kinds, max_km)
        if len(pos) == 0:
            return _empty(RESULT_COLUMNS)
        return pd.DataFrame(self._columns(pos, dist))


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=_EMPTY_DTYPES.get(c, "object")) for c in columns})


def bench_nearest(
    n_units: int = 5_000, n_queries: int = 2_000, k: int = 5, seed: int = 0
) -> dict[str, float]:
    """Time the index on random units and incidents over the province's extent.

    Parameters
    ----------
    n_units, n_queries, k : int
        Index size, number of incidents, units per incident.
    seed : int, default 0
        Random seed, so runs are comparable.

    Returns
    -------
    dict of str to float
        ``build_ms`` (index construction), ``single_us_per_query`` (one
        :meth:`UnitIndex.nearest` call per incident, DataFrame included),
        ``single_search_us_per_query`` (the same search without building the
        DataFrame, which is what pandas' fixed cost hides) and
        ``many_us_per_query`` (one :meth:`UnitIndex.nearest_many` call for all
        incidents, amortised); each figure is also printed.
    """
    rng = np.random.default_rng(seed)
    kinds = np.array([k for k, v in unit_speeds_kmh().items() if v > 0])
    lon = rng.uniform(114.9, 119.6, n_units)
    lat = rng.uniform(29.4, 34.6, n_units)
    qlon = rng.uniform(114.9, 119.6, n_queries)
    qlat = rng.uniform(29.4, 34.6, n_queries)

    t0 = time.perf_counter()
    index = UnitIndex(np.arange(n_units), lon, lat, rng.choice(kinds, n_units))
    t1 = time.perf_counter()
    singles = min(n_queries, 500)
    for i in range(singles):
        index.nearest(qlon[i], qlat[i], k)
    t2 = time.perf_counter()
    for i in range(singles):
        index._search(qlon[i : i + 1], qlat[i : i + 1], k, None, None)
    t3 = time.perf_counter()
    index.nearest_many(qlon, qlat, k)
    t4 = time.perf_counter()

    figures = {
        "build_ms": (t1 - t0) * 1e3,
        "single_us_per_query": (t2 - t1) / singles * 1e6,
        "single_search_us_per_query": (t3 - t2) / singles * 1e6,
        "many_us_per_query": (t4 - t3) / n_queries * 1e6,
    }
    for name, value in figures.items():
        print(f"nearest {n_units} units, k={k}: {name} = {value:.1f}")
    return figures
