"""pydeck layer builders for the offline map: boundaries as the base layer, labels.

No basemap tiles are needed: city and district outlines are drawn from the shipped
boundaries, so the map works on a network without internet.
"""

from __future__ import annotations

import pandas as pd
import pydeck as pdk

from geo.boundaries import display_features, label_points

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
