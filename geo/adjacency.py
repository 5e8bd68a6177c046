"""Neighbourhood relations between cities.

All distances are evaluated in the cities' UTM zone (metres): the boundary
file was simplified per feature, so neighbouring cities can be separated by
gaps of tens of metres and "touches" alone would miss real neighbours.
"""

from __future__ import annotations

from functools import lru_cache

import shapely
from shapely.geometry.base import BaseGeometry

from geo.boundaries import Boundaries, load_boundaries
from geo.distance import WGS84_EPSG, to_metric, transform_geometry


@lru_cache(maxsize=4)
def _metric_index(
    boundaries: Boundaries,
) -> tuple[tuple[str, ...], shapely.STRtree, int]:
    # Reprojecting the cities dominates the cost of both queries, so keep the
    # projected index per Boundaries object (identity-keyed, see Boundaries).
    cities = to_metric(boundaries.cities)
    return (
        tuple(cities["adcode"]),
        shapely.STRtree(cities.geometry.values),
        cities.crs.to_epsg(),
    )


def _metric_cities(
    boundaries: Boundaries | None,
) -> tuple[tuple[str, ...], shapely.STRtree, int]:
    return _metric_index(load_boundaries() if boundaries is None else boundaries)


def city_adjacency(
    boundaries: Boundaries | None = None, tolerance_m: float = 200.0
) -> dict[str, frozenset[str]]:
    """Neighbouring cities of every city.

    Parameters
    ----------
    boundaries : Boundaries, optional
        Defaults to :func:`geo.boundaries.load_boundaries`.
    tolerance_m : float, default 200
        Two cities are neighbours if their boundaries touch, overlap or come
        within this many metres; it bridges simplification gaps.

    Returns
    -------
    dict of str to frozenset of str
        Every city adcode mapped to its neighbours' adcodes (never itself); the
        relation is symmetric.

    Raises
    ------
    ValueError
        If ``tolerance_m`` is negative.
    """
    if tolerance_m < 0:
        raise ValueError(f"tolerance_m must be >= 0, got {tolerance_m}")
    codes, tree, _ = _metric_cities(boundaries)
    left, right = tree.query(tree.geometries, predicate="dwithin", distance=tolerance_m)
    neighbours: dict[str, set[str]] = {code: set() for code in codes}
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i != j:
            neighbours[codes[i]].add(codes[j])
    return {code: frozenset(found) for code, found in neighbours.items()}


def cities_within(
    geometry_wgs84: BaseGeometry,
    distance_m: float,
    boundaries: Boundaries | None = None,
) -> list[str]:
    """Cities within a distance of a geometry.

    Equivalent to intersecting the cities with a ``distance_m`` buffer of the
    geometry, but computed as an exact distance test in metres (no polygonised
    buffer arcs).

    Parameters
    ----------
    geometry_wgs84 : shapely geometry
        Any geometry in EPSG:4326 (point, route, area).
    distance_m : float
        Search distance in metres; 0 means "intersecting".
    boundaries : Boundaries, optional
        Defaults to :func:`geo.boundaries.load_boundaries`.

    Returns
    -------
    list of str
        Matching city adcodes in ascending order; empty if none.

    Raises
    ------
    ValueError
        If ``distance_m`` is negative or the geometry is empty.
    """
    if distance_m < 0:
        raise ValueError(f"distance_m must be >= 0, got {distance_m}")
    if geometry_wgs84.is_empty:
        raise ValueError("geometry is empty")
    codes, tree, epsg = _metric_cities(boundaries)
    metric = transform_geometry(geometry_wgs84, WGS84_EPSG, epsg)
    found = tree.query(metric, predicate="dwithin", distance=distance_m)
    return sorted(codes[i] for i in found)
