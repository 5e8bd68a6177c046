"""Conversions between WGS84, GCJ-02 (China "Mars" coordinates) and BD-09 (Baidu).

Chinese web maps (AMap, Tencent) publish GCJ-02 coordinates and Baidu publishes
BD-09; GPS devices and our database use WGS84. The formulas are the published
ones shared by eviltransform, gcoord, coordtransform and hutool, so results
match those libraries (see ``shared/testdata/peer/coords.json``).

Every function accepts Python scalars or numpy arrays (broadcast together) and
returns ``(lon, lat)``: numpy float64 scalars for scalar input, float arrays
otherwise. Inputs are never modified.

Outside China (the published rectangle of :func:`out_of_china`) WGS84 and GCJ-02
coincide, exactly as in the reference libraries. The GCJ-02 <-> BD-09 step is
applied everywhere, also as in those libraries.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Krasovsky 1940 ellipsoid, as hard-coded in the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
# Baidu's angular scale factor (pi * 3000 / 180).
_X_PI = np.pi * 3000.0 / 180.0

# Iterative inverse: stop once the forward transform reproduces the input to
# 1e-10 degrees (~0.01 mm), far below the required 0.01 m. The offset's
# derivatives are below 1e-2, so the fixed-point iteration shrinks the error
# ~150-fold per step (measured) and 5 steps suffice; the cap is only a guard.
_INVERSE_TOL_DEG = 1e-10
_INVERSE_MAX_ITER = 30

SYSTEMS = ("wgs84", "gcj02", "bd09", "cgcs2000")

Coord = tuple[np.floating | NDArray[np.float64], np.floating | NDArray[np.float64]]


def _as_float_arrays(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    # Broadcast up front so every branch below works element-wise; copy so the
    # caller's arrays are never written to.
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return x.copy(), y.copy()


def _result(x: NDArray[np.float64], y: NDArray[np.float64]) -> Coord:
    # ``a[()]`` turns a 0-d array into a numpy scalar (a float subclass) and
    # leaves real arrays untouched.
    return x[()], y[()]


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> bool | NDArray[np.bool_]:
    """Tell whether points fall outside the rectangle where GCJ-02 applies.

    This is the coarse rectangle used by the standard algorithm (lon 72.004 to
    137.8347, lat 0.8293 to 55.8271); it includes some neighbouring countries,
    which is what the reference implementations do too.

    Parameters
    ----------
    lon, lat : float or array_like
        Coordinates in degrees.

    Returns
    -------
    bool or numpy.ndarray of bool
        True where the point is outside the rectangle; a Python bool for scalar
        input.
    """
    x, y = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    outside = (x < 72.004) | (x > 137.8347) | (y < 0.8293) | (y > 55.8271)
    return bool(outside) if outside.ndim == 0 else outside


def _gcj_delta(
    x: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    # GCJ-02 offset in degrees for WGS84 input, without the out-of-China check
    # (callers apply it) so the inverse iteration sees a smooth function.
    dx, dy = x - 105.0, y - 35.0
    common = (20.0 * np.sin(6.0 * dx * np.pi) + 20.0 * np.sin(2.0 * dx * np.pi)) * 2.0 / 3.0
    d_lat = -100.0 + 2.0 * dx + 3.0 * dy + 0.2 * dy * dy + 0.1 * dx * dy + 0.2 * np.sqrt(np.abs(dx))
    d_lat += common
    d_lat += (20.0 * np.sin(dy * np.pi) + 40.0 * np.sin(dy / 3.0 * np.pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(dy / 12.0 * np.pi) + 320.0 * np.sin(dy * np.pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + dx + 2.0 * dy + 0.1 * dx * dx + 0.1 * dx * dy + 0.1 * np.sqrt(np.abs(dx))
    d_lon += common
    d_lon += (20.0 * np.sin(dx * np.pi) + 40.0 * np.sin(dx / 3.0 * np.pi)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(dx / 12.0 * np.pi) + 300.0 * np.sin(dx / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return d_lon, d_lat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coord:
    """Convert WGS84 coordinates to GCJ-02 (closed form).

    Parameters
    ----------
    lon, lat : float or array_like
        WGS84 longitude and latitude in degrees.

    Returns
    -------
    tuple
        ``(lon, lat)`` in GCJ-02; unchanged where :func:`out_of_china`.
    """
    x, y = _as_float_arrays(lon, lat)
    inside = ~np.asarray(out_of_china(x, y))
    d_lon, d_lat = _gcj_delta(x[inside], y[inside])
    x[inside] += d_lon
    y[inside] += d_lat
    return _result(x, y)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coord:
    """Convert GCJ-02 coordinates to WGS84 with an exact (iterative) inverse.

    Fixed-point iteration on the forward transform until it reproduces the
    input to 1e-10 degrees, so the result is exact to well under 0.01 m. This is
    more accurate than the one-step approximation many libraries use (up to
    about 2 m off).

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    tuple
        ``(lon, lat)`` in WGS84; unchanged where :func:`out_of_china`.
    """
    x, y = _as_float_arrays(lon, lat)
    inside = ~np.asarray(out_of_china(x, y))
    gx, gy = x[inside], y[inside]
    wx, wy = gx.copy(), gy.copy()
    for _ in range(_INVERSE_MAX_ITER):
        d_lon, d_lat = _gcj_delta(wx, wy)
        err_x, err_y = wx + d_lon - gx, wy + d_lat - gy
        wx -= err_x
        wy -= err_y
        # nanmax: NaN inputs must not keep the loop spinning until the cap.
        if (
            wx.size == 0
            or np.nanmax(np.maximum(np.abs(err_x), np.abs(err_y)), initial=0.0) < _INVERSE_TOL_DEG
        ):
            break
    x[inside] = wx
    y[inside] = wy
    return _result(x, y)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coord:
    """Convert GCJ-02 coordinates to BD-09 (Baidu's published closed form).

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    tuple
        ``(lon, lat)`` in BD-09.
    """
    x, y = _as_float_arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return _result(z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coord:
    """Convert BD-09 coordinates to GCJ-02 (Baidu's published closed form).

    This is the formula every reference library uses; it is only an
    approximate inverse of :func:`gcj02_to_bd09` (sub-metre), but the peer test
    vectors expect exactly it, so it is not refined by iteration.

    Parameters
    ----------
    lon, lat : float or array_like
        BD-09 longitude and latitude in degrees.

    Returns
    -------
    tuple
        ``(lon, lat)`` in GCJ-02.
    """
    x, y = _as_float_arrays(lon, lat)
    x -= 0.0065
    y -= 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _result(z * np.cos(theta), z * np.sin(theta))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coord:
    """Convert WGS84 coordinates to BD-09 (via GCJ-02).

    Parameters
    ----------
    lon, lat : float or array_like
        WGS84 longitude and latitude in degrees.

    Returns
    -------
    tuple
        ``(lon, lat)`` in BD-09.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coord:
    """Convert BD-09 coordinates to WGS84 (via GCJ-02, exact GCJ-02 inverse).

    Parameters
    ----------
    lon, lat : float or array_like
        BD-09 longitude and latitude in degrees.

    Returns
    -------
    tuple
        ``(lon, lat)`` in WGS84.
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _identity(lon: ArrayLike, lat: ArrayLike) -> Coord:
    return _result(*_as_float_arrays(lon, lat))


_CONVERTERS: dict[tuple[str, str], Callable[[ArrayLike, ArrayLike], Coord]] = {
    ("wgs84", "gcj02"): wgs84_to_gcj02,
    ("gcj02", "wgs84"): gcj02_to_wgs84,
    ("gcj02", "bd09"): gcj02_to_bd09,
    ("bd09", "gcj02"): bd09_to_gcj02,
    ("wgs84", "bd09"): wgs84_to_bd09,
    ("bd09", "wgs84"): bd09_to_wgs84,
}


def _canonical(system: str) -> str:
    name = system.strip().lower() if isinstance(system, str) else system
    if name not in SYSTEMS:
        raise ValueError(
            f"unknown coordinate system {system!r}; expected one of {', '.join(SYSTEMS)}"
        )
    # CGCS2000 differs from WGS84 by centimetres, below the accuracy of anything
    # we ingest, so it is handled as WGS84.
    return "wgs84" if name == "cgcs2000" else name


def convert(lon: ArrayLike, lat: ArrayLike, src: str, dst: str) -> Coord:
    """Convert coordinates between any two supported systems.

    Parameters
    ----------
    lon, lat : float or array_like
        Longitude and latitude in degrees, in system ``src``.
    src, dst : str
        One of ``"wgs84"``, ``"gcj02"``, ``"bd09"``, ``"cgcs2000"``
        (case-insensitive; CGCS2000 is treated as WGS84).

    Returns
    -------
    tuple
        ``(lon, lat)`` in system ``dst`` (a copy when ``src == dst``).

    Raises
    ------
    ValueError
        If ``src`` or ``dst`` is not a supported system; the message names it.
    """
    source, target = _canonical(src), _canonical(dst)
    # Every pair of distinct systems is in the table; only src == dst falls back.
    return _CONVERTERS.get((source, target), _identity)(lon, lat)
