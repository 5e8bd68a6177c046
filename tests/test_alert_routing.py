"""Alert recipients from the real boundaries of data/anhui.geojson."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import LineString, Point, Polygon

from geo.adjacency import city_adjacency
from geo.boundaries import load_boundaries
from geo.distance import buffer_m
from hub.alert_routing import BORDER_TOLERANCE_M, alert_recipients

HEFEI, HUAINAN, CHUZHOU, LUAN = "340100", "340400", "341100", "341500"

# Points hand-checked against the boundary file (distances from the point to each city
# polygon in EPSG:32650, rounded):
# - ON_BORDER lies on the 合肥/滁州 boundary (肥东 / 定远); 淮南 49.3 km, 马鞍山 50.0 km,
#   蚌埠 66.5 km away.
# - NORTH_BORDER lies on the same boundary further north-west; 淮南 23.8 km, 蚌埠 42.9 km.
# - HEFEI_CENTRE is central 合肥; the nearest other city, 淮南, is 29.4 km away.
ON_BORDER = (117.5889, 32.2414)
NORTH_BORDER = (117.3724, 32.382)
HEFEI_CENTRE = (117.2833, 31.8617)


def circle(lonlat: tuple[float, float], radius_m: float):
    return buffer_m(Point(*lonlat), radius_m)


def expected_by_geopandas(origin: str, area, within_km: float) -> list[str]:
    """The rule recomputed without geo.adjacency: plain GeoSeries distances in UTM 50N."""
    cities = load_boundaries().cities.to_crs(32650)
    area_m = gpd.GeoSeries([area], crs=4326).to_crs(32650).iloc[0]
    reach = max(within_km * 1000, BORDER_TOLERANCE_M)
    near = cities.loc[cities.geometry.distance(area_m) <= reach, "adcode"]
    return sorted({origin, *near})


def test_border_alert_reaches_exactly_hefei_and_chuzhou():
    area = circle(ON_BORDER, 3_000)
    got = alert_recipients(HEFEI, area, within_km=10)
    assert got == [HEFEI, CHUZHOU]
    # They are real neighbours, and the alert does not spill to 合肥's other neighbours.
    assert CHUZHOU in city_adjacency()[HEFEI]
    assert len(city_adjacency()[HEFEI]) == 7
    assert got == expected_by_geopandas(HEFEI, area, 10)
    # Raised by the other side of the border, the same two cities.
    assert alert_recipients(CHUZHOU, area, within_km=10) == [HEFEI, CHUZHOU]


def test_configured_distance_adds_a_city_beyond_the_border():
    area = circle(NORTH_BORDER, 3_000)
    assert alert_recipients(HEFEI, area, within_km=10) == [HEFEI, CHUZHOU]
    # 淮南 is ~21 km from the circle's edge: inside 25 km, outside 20 km.
    assert alert_recipients(HEFEI, area, within_km=25) == [HEFEI, HUAINAN, CHUZHOU]
    assert alert_recipients(HEFEI, area, within_km=20) == [HEFEI, CHUZHOU]


def test_alert_deep_inside_a_city_reaches_only_that_city():
    area = circle(HEFEI_CENTRE, 2_000)
    assert alert_recipients(HEFEI, area, within_km=1) == [HEFEI]
    assert alert_recipients(HEFEI, area, within_km=0) == [HEFEI]


def test_origin_is_always_a_recipient():
    area = circle(HEFEI_CENTRE, 2_000)
    assert alert_recipients(LUAN, area, within_km=1) == [HEFEI, LUAN]


def test_border_tolerance_bridges_simplification_gaps():
    # A line along the border, no extent: with within_km = 0 both sides still receive it.
    line = LineString([ON_BORDER, (ON_BORDER[0] + 0.001, ON_BORDER[1] + 0.001)])
    assert alert_recipients(HEFEI, line, within_km=0) == [HEFEI, CHUZHOU]


@pytest.mark.parametrize(
    ("lonlat", "radius_m", "within_km"),
    [
        (ON_BORDER, 3_000, 10),
        (ON_BORDER, 20_000, 40),
        (NORTH_BORDER, 5_000, 30),
        (HEFEI_CENTRE, 10_000, 50),
        ((116.5, 31.7), 2_000, 15),  # 六安
        ((118.4, 31.3), 5_000, 25),  # 芜湖/马鞍山/宣城 area
    ],
)
def test_matches_an_independent_computation(lonlat, radius_m, within_km):
    area = circle(lonlat, radius_m)
    assert alert_recipients(HEFEI, area, within_km=within_km) == expected_by_geopandas(
        HEFEI, area, within_km
    )


def test_bad_input_is_refused():
    area = circle(HEFEI_CENTRE, 1_000)
    with pytest.raises(ValueError, match="unknown origin"):
        alert_recipients("999999", area)
    with pytest.raises(ValueError, match="within_km"):
        alert_recipients(HEFEI, area, within_km=-1)
    with pytest.raises(ValueError, match="empty"):
        alert_recipients(HEFEI, Polygon())
    bowtie = Polygon([(117.2, 31.8), (117.3, 31.9), (117.3, 31.8), (117.2, 31.9)])
    with pytest.raises(ValueError, match="valid"):
        alert_recipients(HEFEI, bowtie)
