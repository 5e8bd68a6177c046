"""Distances and metric projections.

Data is stored and exchanged in EPSG:4326; anything measured in metres
(buffers, nearest neighbours, tolerances) is done in a UTM zone and converted
back. Anhui lies in UTM zone 50N (EPSG:32650); its eastern edge is close to
zone 51N (EPSG:32651).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:  # geopandas and PROJ are loaded where something is projected
    import geopandas as gpd
    from pyproj import Transformer

# IUGG mean Earth radius: the least-biased sphere for haversine distances.
EARTH_RADIUS_M = 6_371_008.8
WGS84_EPSG = 4326


def haversine_m(
    lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike
) -> float | NDArray[np.float64]:
    """Great-circle distance on a spherical Earth.

    Accurate to about 0.5 % against the ellipsoid, which is plenty for
    tolerances and ranking; use a projected CRS for exact metric geometry.

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : float or array_like
        Coordinates in degrees (WGS84); arrays broadcast together.

    Returns
    -------
    float or numpy.ndarray
        Distance in metres; a numpy float scalar for scalar input.
    """
    lam1, phi1, lam2, phi2 = (
        np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2)
    )
    h = (
        np.sin((phi2 - phi1) / 2.0) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2.0) ** 2
    )
    # Clip: rounding can push h a hair above 1 for antipodal points.
    return (2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))[()]


def utm_crs_for(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone containing a point.

    Uses the regular 6-degree zones (the Norway/Svalbard exceptions do not
    matter for China).

    Parameters
    ----------
    lon, lat : float
        Coordinates in degrees.

    Returns
    -------
    int
        326zz for the northern hemisphere, 327zz for the southern one; 32650
        or 32651 for Anhui.

    Raises
    ------
    ValueError
        If the coordinates are not finite or out of range.
    """
    if not (
        np.isfinite(lon) and np.isfinite(lat) and -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0
    ):
        raise ValueError(f"invalid lon/lat: ({lon}, {lat})")
    # lon = 180 belongs to zone 60, not a non-existent zone 61.
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0.0 else 32700) + zone


@lru_cache(maxsize=32)
def _transformer(src_epsg: int, dst_epsg: int) -> Transformer:
    # Building a Transformer costs milliseconds (PROJ database lookups); callers
    # project in tight loops, so keep one per CRS pair. always_xy keeps lon/lat
    # order regardless of the CRS's declared axis order.
    from pyproj import Transformer

    return Transformer.from_crs(src_epsg, dst_epsg, always_xy=True)


def project_xy(
    lon: ArrayLike, lat: ArrayLike, epsg: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Project WGS84 coordinates to another CRS.

    Parameters
    ----------
    lon, lat : array_like
        WGS84 longitude and latitude in degrees.
    epsg : int
        Target CRS, typically a UTM zone from :func:`utm_crs_for`.

    Returns
    -------
    tuple of numpy.ndarray
        ``(x, y)`` in the target CRS's units (metres for UTM).
    """
    x, y = _transformer(WGS84_EPSG, int(epsg)).transform(
        np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    )
    return np.asarray(x), np.asarray(y)


def to_metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reproject a GeoDataFrame to its best-fitting UTM zone.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Data with a CRS set (normally EPSG:4326).

    Returns
    -------
    geopandas.GeoDataFrame
        A reprojected copy in metres.

    Raises
    ------
    ValueError
        If ``gdf`` has no CRS (reprojecting would silently guess).
    """
    if gdf.crs is None:
        raise ValueError("GeoDataFrame has no CRS; set it (EPSG:4326) before converting to metres")
    return gdf.to_crs(gdf.estimate_utm_crs())


def from_metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reproject a GeoDataFrame back to EPSG:4326 for storage or display.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Data in any CRS (normally the output of :func:`to_metric`).

    Returns
    -------
    geopandas.GeoDataFrame
        A reprojected copy in EPSG:4326.

    Raises
    ------
    ValueError
        If ``gdf`` has no CRS.
    """
    if gdf.crs is None:
        raise ValueError("GeoDataFrame has no CRS; cannot convert back to EPSG:4326")
    return gdf.to_crs(WGS84_EPSG)


def transform_geometry(geometry: BaseGeometry, src_epsg: int, dst_epsg: int) -> BaseGeometry:
    """Reproject a single shapely geometry between two EPSG codes.

    Parameters
    ----------
    geometry : shapely geometry
        Geometry in ``src_epsg``.
    src_epsg, dst_epsg : int
        Source and target CRS.

    Returns
    -------
    shapely geometry
        The same geometry type in ``dst_epsg``.
    """
    transformer = _transformer(int(src_epsg), int(dst_epsg))
    return shapely.transform(
        geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )


def buffer_m(geometry_wgs84: BaseGeometry, metres: float) -> BaseGeometry:
    """Buffer a WGS84 geometry by a distance in metres.

    The buffer is computed in the UTM zone of the geometry's centroid, so it
    is a true metric buffer (not an ellipse in degrees).

    Parameters
    ----------
    geometry_wgs84 : shapely geometry
        Geometry in EPSG:4326.
    metres : float
        Buffer distance; negative values shrink polygons.

    Returns
    -------
    shapely geometry
        The buffered geometry in EPSG:4326.

    Raises
    ------
    ValueError
        If the geometry is empty.
    """
    if geometry_wgs84.is_empty:
        raise ValueError("cannot buffer an empty geometry")
    centre = geometry_wgs84.centroid
    epsg = utm_crs_for(centre.x, centre.y)
    metric = transform_geometry(geometry_wgs84, WGS84_EPSG, epsg)
    return transform_geometry(metric.buffer(metres), epsg, WGS84_EPSG)
