"""pydeck layer builders for the offline map: boundaries as the base layer, labels.

No basemap tiles are needed: city and district outlines are drawn from the shipped
boundaries, so the map works on a network without internet.
"""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pydeck as pdk

from geo.boundaries import display_features, label_points, load_boundaries

# Province-wide view centred on the demo province.
PROVINCE_VIEW = pdk.ViewState(longitude=117.3, latitude=31.75, zoom=5.9, pitch=0)


def fill_colors(values: pd.Series, base: tuple[int, int, int] = (30, 90, 160)) -> list[list[int]]:
    """RGBA per value, more opaque for larger values (a simple choropleth ramp)."""
    top = float(values.max()) if len(values) and values.max() > 0 else 1.0
    return [[*base, int(40 + 170 * float(v) / top)] for v in values]


def city_layer(
    fill: dict[str, list[int]] | None = None,
    extra: dict[str, dict[str, object]] | None = None,
    *,
    layer_id: str = "cities",
    pickable: bool = True,
) -> pdk.Layer:
    """City polygons, optionally filled per adcode and carrying extra tooltip properties.

    Parameters
    ----------
    fill
        RGBA per city adcode; cities not listed are drawn with a faint fill.
    extra
        Properties merged into each feature (e.g. counts for the tooltip), by adcode.
    """
    geojson = display_features("city")
    for feature in geojson["features"]:
        code = feature["properties"]["adcode"]
        feature["properties"]["fill"] = (fill or {}).get(code, [200, 200, 200, 40])
        feature["properties"].update((extra or {}).get(code, {}))
    return pdk.Layer(
        "GeoJsonLayer",
        data=geojson,
        id=layer_id,
        stroked=True,
        filled=True,
        get_fill_color="properties.fill",
        get_line_color=[40, 40, 40, 220],
        line_width_min_pixels=1.5,
        pickable=pickable,
        auto_highlight=pickable,
    )


def district_layer(*, layer_id: str = "districts") -> pdk.Layer:
    """District outlines only, thin and light, above the city fill."""
    return pdk.Layer(
        "GeoJsonLayer",
        data=display_features("district", tolerance_deg=0.003),
        id=layer_id,
        stroked=True,
        filled=False,
        get_line_color=[90, 90, 90, 120],
        line_width_min_pixels=0.5,
        pickable=False,
    )


def district_fill_layer(
    fill: dict[str, list[int]], extra: dict[str, dict[str, object]] | None = None,
    *, layer_id: str = "district-fill",
) -> pdk.Layer:  # fmt: skip
    """District polygons filled per adcode (a choropleth), with tooltip properties."""
    geojson = display_features("district", tolerance_deg=0.003)
    for feature in geojson["features"]:
        code = feature["properties"]["adcode"]
        feature["properties"]["fill"] = fill.get(code, [220, 220, 220, 40])
        feature["properties"].update((extra or {}).get(code, {}))
    return pdk.Layer(
        "GeoJsonLayer", data=geojson, id=layer_id, stroked=True, filled=True,
        get_fill_color="properties.fill", get_line_color=[90, 90, 90, 140],
        line_width_min_pixels=0.5, pickable=True, auto_highlight=True,
    )  # fmt: skip


def label_layer(
    level: str = "city",
    *,
    names: dict[str, str] | None = None,
    size: int = 14,
    layer_id: str | None = None,
) -> pdk.Layer:
    """Chinese names at a point inside each polygon.

    pydeck reads a plain string argument as a JavaScript accessor expression, so the
    literals `'auto'` (needed for CJK glyphs) and the font list must be passed quoted,
    as one quoted string each.

    Parameters
    ----------
    names
        Text per adcode to show instead of the Chinese name (e.g. English names).
    """
    labels = label_points(level)
    if names:
        labels = labels.assign(name=labels["adcode"].map(names).fillna(labels["name"]))
    return pdk.Layer(
        "TextLayer",
        data=labels[["name", "lon", "lat"]],
        id=layer_id or f"{level}-labels",
        get_position=["lon", "lat"],
        get_text="name",
        get_size=size,
        get_color=[20, 20, 20, 255],
        character_set="'auto'",
        font_family="'Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif'",
        outline_width=2,
        outline_color=[255, 255, 255, 220],
        font_settings={"sdf": True},
        pickable=False,
    )


# --- trajectories -------------------------------------------------------------------------

TRAJECTORY_COLOR = [200, 30, 30, 230]


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Layer data the browser can read: timestamps as ISO text (JSON has no datetime)."""
    out = frame.copy()
    for col in out.columns:
        if (
            pd.api.types.is_datetime64_any_dtype(out[col])
            or out[col].map(lambda v: hasattr(v, "isoformat")).any()
        ):
            out[col] = out[col].map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v)
    return out


def path_segments(
    points_df: pd.DataFrame, color_by_city: dict[str, list[int]] | None = None
) -> pd.DataFrame:
    """One path per run of consecutive points in the same city, in the given (time) order.

    Each run is extended to the first point of the next run, so the path is unbroken and
    the segment that crosses a border takes the colour of the city it starts in.
    """
    colors = color_by_city or {}
    pts = points_df[["lon", "lat", "city_code"]].reset_index(drop=True)
    run = (pts["city_code"] != pts["city_code"].shift()).cumsum()
    rows = []
    starts = list(pts.groupby(run, sort=True).groups.values())
    for i, idx in enumerate(starts):
        coords = [[float(pts.lon[j]), float(pts.lat[j])] for j in idx]
        if i + 1 < len(starts):
            j = starts[i + 1][0]
            coords.append([float(pts.lon[j]), float(pts.lat[j])])
        if len(coords) < 2:
            continue
        city = pts.city_code[idx[0]]
        rows.append(
            {"path": coords, "city_code": city, "color": colors.get(city, TRAJECTORY_COLOR)}
        )
    return pd.DataFrame(rows, columns=["path", "city_code", "color"])


def path_layer(
    points_df: pd.DataFrame,
    color_by_city: dict[str, list[int]] | None = None,
    *,
    layer_id: str = "trajectory-path",
) -> pdk.Layer:
    """The trajectory as a line, coloured by the city each stretch starts in.

    `points_df` needs `lon`, `lat` and `city_code`, in time order.
    """
    return pdk.Layer(
        "PathLayer",
        data=path_segments(points_df, color_by_city),
        id=layer_id,
        get_path="path",
        get_color="color",
        get_width=4,
        width_units="'pixels'",
        width_min_pixels=3,
        joint_rounded=True,
        cap_rounded=True,
        pickable=False,
    )


def points_layer(
    points_df: pd.DataFrame, *, layer_id: str = "trajectory-points", radius_px: int = 6
) -> pdk.Layer:
    """Sightings as dots; every column (e.g. time, camera, city, speed) is a tooltip field.

    A `color` column (RGBA per point) is used when present.
    """
    data = _plain(points_df)
    if "color" not in data:
        data = data.assign(color=[TRAJECTORY_COLOR] * len(data))
    return pdk.Layer(
        "ScatterplotLayer",
        data=data,
        id=layer_id,
        get_position=["lon", "lat"],
        get_fill_color="color",
        get_line_color=[255, 255, 255, 255],
        stroked=True,
        line_width_min_pixels=1.5,
        radius_units="'pixels'",
        get_radius=radius_px,
        pickable=True,
        auto_highlight=True,
    )


def crossing_layer(
    crossings_df: pd.DataFrame, *, layer_id: str = "trajectory-crossings"
) -> pdk.Layer:
    """Border crossings (midpoint of the two sightings either side) as hollow rings."""
    return pdk.Layer(
        "ScatterplotLayer",
        data=_plain(crossings_df),
        id=layer_id,
        get_position=["lon", "lat"],
        filled=False,
        stroked=True,
        get_line_color=[255, 140, 0, 255],
        line_width_min_pixels=3,
        radius_units="'pixels'",
        get_radius=12,
        pickable=True,
    )


# --- the situation map --------------------------------------------------------------------

# Yellow to dark red by relative count; severity 1 (minor) to 4 (critical).
_RAMP = np.array([[254, 204, 92], [253, 141, 60], [227, 26, 28], [128, 0, 38]], dtype=float)
SEVERITY_COLORS = {1: [66, 146, 198, 220], 2: [254, 178, 76, 230], 3: [240, 59, 32, 235],
                   4: [150, 0, 38, 240]}  # fmt: skip
CAMERA_COLORS = {"checkpoint": [120, 60, 200, 230], "alpr": [30, 120, 200, 230],
                 "panoramic": [0, 150, 120, 230], "face": [200, 80, 160, 230]}  # fmt: skip
OFFLINE_COLOR = [150, 150, 150, 200]
RISK_COLORS = {"low": [255, 220, 0, 50], "medium": [255, 140, 0, 70], "high": [220, 20, 20, 90]}
HELP_COLOR = [0, 170, 80, 235]
UNIT_COLOR = [20, 60, 140, 235]
STALE_COLOR = [255, 120, 0, 255]


def ramp_colors(counts: pd.Series, alpha: int = 190) -> list[list[int]]:
    """RGBA per count on an orange→dark-red ramp, on a log scale against the largest
    count (a few busy cells must not wash every other cell out)."""
    values = counts.to_numpy(dtype=float)
    if not len(values):
        return []
    top = max(values.max(), 1.0)
    pos = np.log1p(values) / np.log1p(top) * (len(_RAMP) - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, len(_RAMP) - 2)
    frac = (pos - lo)[:, None]
    rgb = (_RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac).round().astype(int)
    return np.column_stack([rgb, np.full(len(rgb), alpha)]).tolist()


def hex_layer(cells: pd.DataFrame, *, layer_id: str = "incident-hexes") -> pdk.Layer:
    """H3 cells filled by count. `cells` needs `h3` and `count`; `tip` is shown on hover.

    Only cell ids travel to the browser (deck.gl draws the hexagons), so a province of
    cells stays small on the wire.
    """
    data = cells[[c for c in ("h3", "count", "tip") if c in cells]].copy()
    data["color"] = ramp_colors(data["count"])
    return pdk.Layer(
        "H3HexagonLayer",
        data=data,
        id=layer_id,
        get_hexagon="h3",
        get_fill_color="color",
        filled=True,
        stroked=False,
        extruded=False,
        pickable=True,
        auto_highlight=True,
    )


def heat_layer(cells: pd.DataFrame, *, layer_id: str = "incident-heat") -> pdk.Layer:
    """A heat map from weighted points (`lon`, `lat`, `count`), e.g. cell centres: the
    weights carry the counts, so no single incident is sent."""
    return pdk.Layer(
        "HeatmapLayer",
        data=cells[["lon", "lat", "count"]],
        id=layer_id,
        get_position=["lon", "lat"],
        get_weight="count",
        radius_pixels=40,
        intensity=1,
        threshold=0.03,
        pickable=False,
    )


def scatter_layer(
    frame: pd.DataFrame,
    *,
    layer_id: str,
    color: list[int] | None = None,
    radius_px: float = 5,
    line_color: list[int] | None = None,
    pickable: bool = True,
) -> pdk.Layer:
    """Dots at `lon`/`lat`, coloured by a `color` column or one `color`; `id` and `tip`
    columns are kept for clicks and hovers, nothing else is sent."""
    keep = [c for c in ("id", "lon", "lat", "tip", "color") if c in frame]
    data = frame[keep].copy()
    data["lon"], data["lat"] = data["lon"].round(5), data["lat"].round(5)  # ~1 m
    if "color" not in data:
        data["color"] = [color or TRAJECTORY_COLOR] * len(data)
    return pdk.Layer(
        "ScatterplotLayer",
        data=data,
        id=layer_id,
        get_position=["lon", "lat"],
        get_fill_color="color",
        get_line_color=line_color or [255, 255, 255, 230],
        stroked=True,
        line_width_min_pixels=1,
        radius_units="'pixels'",
        get_radius=radius_px,
        pickable=pickable,
        auto_highlight=pickable,
    )


def ring_layer(
    frame: pd.DataFrame, *, layer_id: str, color: list[int], radius_px: float = 9
) -> pdk.Layer:
    """Hollow rings at `lon`/`lat` (e.g. border checkpoints), not pickable."""
    return pdk.Layer(
        "ScatterplotLayer",
        data=frame[["lon", "lat"]].round(5),
        id=layer_id,
        get_position=["lon", "lat"],
        filled=False,
        stroked=True,
        get_line_color=color,
        line_width_min_pixels=2,
        radius_units="'pixels'",
        get_radius=radius_px,
        pickable=False,
    )


def polygon_layer(
    features: list[dict], *, layer_id: str, line_color: list[int] | None = None
) -> pdk.Layer:
    """GeoJSON features whose properties carry `fill` (RGBA) and `tip`."""
    return pdk.Layer(
        "GeoJsonLayer",
        data={"type": "FeatureCollection", "features": features},
        id=layer_id,
        stroked=True,
        filled=True,
        get_fill_color="properties.fill",
        get_line_color=line_color or [120, 0, 0, 200],
        line_width_min_pixels=1.5,
        pickable=True,
        auto_highlight=True,
    )


def stale_layer(city_codes: list[str], *, layer_id: str = "stale-cities") -> pdk.Layer:
    """Thick orange outlines around the cities whose feeds are stale."""
    wanted = set(city_codes)
    geojson = display_features("city")
    features = [f for f in geojson["features"] if f["properties"]["adcode"] in wanted]
    return pdk.Layer(
        "GeoJsonLayer",
        data={"type": "FeatureCollection", "features": features},
        id=layer_id,
        stroked=True,
        filled=False,
        get_line_color=STALE_COLOR,
        line_width_min_pixels=4,
        pickable=False,
    )


def view_for(
    cities: list[str] | tuple[str, ...] = (),
    districts: list[str] | tuple[str, ...] = (),
    *,
    width_px: int = 760,
    height_px: int = 640,
) -> pdk.ViewState:
    """The view that fits the selected districts, else cities, else the province.

    Web Mercator as deck.gl draws it: at zoom z the world is 512·2^z pixels wide, so a span
    of `dx` degrees of longitude needs 2^z = width·360 / (512·dx); latitude spans are
    stretched by 1/cos(lat).
    """
    b = load_boundaries()
    if districts:
        shapes = b.districts[b.districts.adcode.isin(districts)]
    elif cities:
        shapes = b.cities[b.cities.adcode.isin(cities)]
    else:
        shapes = b.cities
    if shapes.empty:
        return PROVINCE_VIEW
    x0, y0, x1, y1 = shapes.total_bounds
    lat = (y0 + y1) / 2
    dx, dy = max(x1 - x0, 1e-3), max((y1 - y0) / np.cos(np.radians(lat)), 1e-3)
    zoom = float(np.log2(min(width_px * 360 / (512 * dx), height_px * 360 / (512 * dy))))
    return pdk.ViewState(
        longitude=float((x0 + x1) / 2), latitude=float(lat), zoom=round(zoom - 0.2, 2), pitch=0
    )


def cell_centres(cells: pd.DataFrame) -> pd.DataFrame:
    """`cells` (`h3`, `count`) with the `lon`/`lat` of each cell's centre added."""
    centres = [h3.cell_to_latlng(c) for c in cells["h3"]]
    out = cells.copy()
    out["lat"] = [round(c[0], 5) for c in centres]
    out["lon"] = [round(c[1], 5) for c in centres]
    return out


# --- joint response --------------------------------------------------------------------------

# Units by status (Resgrid-style): green ready, amber committed, red on scene, grey out.
UNIT_STATUS_COLORS = {
    "available": [30, 160, 80, 235],
    "dispatched": [250, 170, 20, 235],
    "en_route": [240, 120, 0, 235],
    "on_scene": [200, 30, 30, 235],
    "out_of_service": [150, 150, 150, 200],
}
INCIDENT_MARKER_COLOR = [120, 0, 160, 240]


def incident_marker_layer(frame: pd.DataFrame, *, layer_id: str = "incident") -> pdk.Layer:
    """One large, ringed marker per row at `lon`/`lat` (an operation's incident)."""
    return scatter_layer(
        frame, layer_id=layer_id, color=INCIDENT_MARKER_COLOR, radius_px=11,
        line_color=[255, 255, 255, 255],
    )  # fmt: skip


def view_around(lon: float, lat: float, radius_m: float, *, width_px: int = 760,
                height_px: int = 560) -> pdk.ViewState:  # fmt: skip
    """The view that fits a circle of `radius_m` around a point (Web Mercator, as
    `view_for`: 2^z = width·360 / (512·dx))."""
    dlat = 2 * radius_m / 111_320
    dlon = dlat / max(np.cos(np.radians(lat)), 0.2)
    dy = dlat / np.cos(np.radians(lat))
    zoom = float(np.log2(min(width_px * 360 / (512 * dlon), height_px * 360 / (512 * dy))))
    return pdk.ViewState(longitude=float(lon), latitude=float(lat), zoom=round(zoom, 2), pitch=0)


# --- the common operating picture's overlays --------------------------------------------

OPERATION_COLOR = [120, 0, 160, 45]
OPERATION_LINE = [120, 0, 160, 230]
ALERT_LINE = {"low": [200, 170, 0, 255], "medium": [230, 110, 0, 255], "high": [200, 0, 0, 255]}
HIT_COLOR = [230, 0, 120, 245]
TRACKED_COLOR = [20, 20, 20, 250]
LIVE_COLOR = [0, 190, 255, 250]


def area_layer(
    frame: pd.DataFrame, *, layer_id: str, fill: list[int], line: list[int] | None = None
) -> pdk.Layer:
    """Circles of `radius_m` metres at `lon`/`lat` (an operation's area, an alert's area);
    a `line` column, when present, colours each outline. `id` and `tip` are kept."""
    keep = [c for c in ("id", "lon", "lat", "radius_m", "tip", "line") if c in frame]
    data = frame[keep].copy()
    data["lon"], data["lat"] = data["lon"].round(5), data["lat"].round(5)
    if "line" not in data:
        data["line"] = [line or [0, 0, 0, 255]] * len(data)
    return pdk.Layer(
        "ScatterplotLayer",
        data=data,
        id=layer_id,
        get_position=["lon", "lat"],
        get_radius="radius_m",
        radius_units="'meters'",
        radius_min_pixels=6,
        get_fill_color=fill,
        get_line_color="line",
        stroked=True,
        line_width_min_pixels=2.5,
        pickable=True,
        auto_highlight=True,
    )
