"""Which cities an alert is pushed to, computed from the real city boundaries.

DESIGN §5: an alert goes "to the origin city and to every city that borders the alert
area or lies within a configured distance". The rule, exactly:

    recipients = {origin_city}
               | {city C : distance(C, area) <= max(within_km * 1000, BORDER_TOLERANCE_M)}

with distances measured in metres in UTM (via :func:`geo.adjacency.cities_within`):

- A city "borders the alert area" when its boundary touches or overlaps the area. The
  boundary file was simplified per feature, so neighbouring cities are separated by
  gaps of up to tens of metres; :data:`BORDER_TOLERANCE_M` (200 m, the same tolerance
  as :func:`geo.adjacency.city_adjacency`) bridges them, so ``within_km = 0`` still
  reaches the city on the other side of a border the area runs up against.
- "Lies within a configured distance": ``within_km`` (default
  :data:`DEFAULT_WITHIN_KM` = 10 km, about a quarter hour's drive, the reach of a
  fleeing vehicle before roadblocks go up).
- The origin is always included, even when the area lies in another city (a manual
  alert about a neighbour's area).

Deliberately *not* included: every neighbour of the origin city just because the area
is near some border. An alert on the 合肥/滁州 line concerns 滁州, not 安庆 150 km
away on 合肥's far side; pushing it there would teach command rooms to ignore alerts.
"""

from __future__ import annotations

from shapely.geometry.base import BaseGeometry

from geo.adjacency import cities_within
from geo.boundaries import Boundaries, load_boundaries

BORDER_TOLERANCE_M = 200.0
DEFAULT_WITHIN_KM = 10.0


def alert_recipients(
    origin_city: str,
    area_geometry_wgs84: BaseGeometry,
    boundaries: Boundaries | None = None,
    within_km: float = DEFAULT_WITHIN_KM,
) -> list[str]:
    """Cities that receive an alert.

    Parameters
    ----------
    origin_city : str
        Adcode of the city that raised the alert.
    area_geometry_wgs84 : shapely geometry
        The alert area in EPSG:4326 (a polygon, or a point or line for an alert
        without extent; a circle alert is ``geo.distance.buffer_m(point, radius)``).
    boundaries : Boundaries, optional
        Defaults to :func:`geo.boundaries.load_boundaries`.
    within_km : float, default :data:`DEFAULT_WITHIN_KM`
        Cities whose boundary comes this close to the area also receive it.

    Returns
    -------
    list of str
        Recipient city adcodes, ascending; always contains ``origin_city``.

    Raises
    ------
    ValueError
        If ``origin_city`` is not a city of the boundaries, ``within_km`` is
        negative or not finite, or the geometry is empty or invalid.
    """
    bounds = load_boundaries() if boundaries is None else boundaries
    if origin_city not in set(bounds.cities["adcode"]):
        raise ValueError(f"unknown origin city {origin_city!r}")
    if not (within_km >= 0 and within_km != float("inf")):
        raise ValueError(f"within_km must be a finite number >= 0, got {within_km}")
    if area_geometry_wgs84.is_empty:
        raise ValueError("alert area is empty")
    if not area_geometry_wgs84.is_valid:
        raise ValueError("alert area is not a valid geometry")
    distance_m = max(within_km * 1000.0, BORDER_TOLERANCE_M)
    return sorted({origin_city, *cities_within(area_geometry_wgs84, distance_m, bounds)})
