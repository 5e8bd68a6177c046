"""Administrative boundaries of the province (province, cities, districts).

The source file is a WGS84 GeoJSON FeatureCollection whose features carry
``adcode``, ``name``, ``level`` (province | city | district) and
``parent_adcode`` (``name_en`` on cities). Boundaries were simplified per
feature upstream, so neighbours do not share vertices exactly: districts stick
out of their city by up to a few hundred metres and overlap each other in thin
slivers. Consumers that need one answer per point (see :mod:`geo.assign`) must
therefore break ties deterministically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

# geopandas (with pyogrio, pyproj: geo.distance) loads with the first full read: the
# display shapes of the default file come from a cache without it.
if TYPE_CHECKING:
    import geopandas as gpd

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "anhui.geojson"
# Display shapes of the default file, kept across restarts (see `display_features`).
CACHE_DIR = DEFAULT_PATH.parent / "cache"
_DISPLAY_FORMAT = "display-1"  # bump when `_display_json`'s output changes
LEVELS = ("province", "city", "district")
_REQUIRED_COLUMNS = ("adcode", "name", "level", "parent_adcode")


@dataclass(frozen=True, eq=False)
class Boundaries:
    """Validated boundaries, all in EPSG:4326.

    Instances are shared through a cache: treat the frames as read-only.
    ``eq=False`` keeps identity hashing so a ``Boundaries`` can key caches.

    Attributes
    ----------
    province : shapely geometry
        Outline of the province.
    cities : geopandas.GeoDataFrame
        Columns ``adcode``, ``name``, ``name_en``, ``geometry``; sorted by adcode.
    districts : geopandas.GeoDataFrame
        Columns ``adcode``, ``name``, ``parent_adcode``, ``geometry``; sorted by
        adcode.
    province_adcode, province_name : str or None
        Properties of the province feature.
    """

    province: BaseGeometry
    cities: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    province_adcode: str | None = None
    province_name: str | None = None

    def level(self, level: str) -> gpd.GeoDataFrame:
        """Features of one level as a GeoDataFrame.

        Parameters
        ----------
        level : str
            ``"province"``, ``"city"`` or ``"district"``.

        Returns
        -------
        geopandas.GeoDataFrame
            The cities or districts frame, or a one-row frame (adcode, name,
            geometry) for the province.

        Raises
        ------
        ValueError
            If ``level`` is unknown.
        """
        if level == "city":
            return self.cities
        if level == "district":
            return self.districts
        if level == "province":
            import geopandas as gpd

            from geo.distance import WGS84_EPSG

            return gpd.GeoDataFrame(
                {"adcode": [self.province_adcode], "name": [self.province_name]},
                geometry=[self.province],
                crs=WGS84_EPSG,
            )
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def _polygonal(geometry: BaseGeometry | None, label: str) -> BaseGeometry:
    # Repair invalid rings but keep only the areal part: "structure" make_valid
    # drops collapsed parts instead of returning stray lines and points.
    if geometry is None or geometry.is_empty:
        raise ValueError(f"{label}: empty geometry")
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry, method="structure", keep_collapsed=False)
    if geometry.geom_type not in ("Polygon", "MultiPolygon") or geometry.is_empty:
        raise ValueError(f"{label}: expected a polygon, got {geometry.geom_type}")
    return geometry


def _read(path: Path) -> gpd.GeoDataFrame:
    import geopandas as gpd

    from geo.distance import WGS84_EPSG

    if not path.is_file():
        raise FileNotFoundError(f"boundary file not found: {path}")
    frame = gpd.read_file(path)
    missing = [c for c in _REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing properties {missing}")
    # GeoJSON is WGS84 by definition (RFC 7946); reproject anything else.
    frame = frame.set_crs(WGS84_EPSG) if frame.crs is None else frame.to_crs(WGS84_EPSG)
    for level in LEVELS:
        if not (frame["level"] == level).any():
            raise ValueError(
                f"{path}: no features with level {level!r}; need province, city and district"
            )
    if (frame["level"] == "province").sum() != 1:
        raise ValueError(f"{path}: expected exactly one province feature")
    repaired = [
        _polygonal(geom, f"{path}: {level} {code}")
        for geom, level, code in zip(frame.geometry, frame["level"], frame["adcode"], strict=True)
    ]
    return frame.set_geometry(gpd.GeoSeries(repaired, index=frame.index, crs=WGS84_EPSG))


def _level_frame(
    frame: gpd.GeoDataFrame, level: str, columns: list[str], path: Path
) -> gpd.GeoDataFrame:
    part = frame.loc[frame["level"] == level, [*columns, "geometry"]]
    duplicated = part["adcode"][part["adcode"].duplicated()]
    if not duplicated.empty:
        raise ValueError(f"{path}: duplicate {level} adcodes {sorted(duplicated)}")
    return part.sort_values("adcode").reset_index(drop=True)


@lru_cache(maxsize=8)
def _load(path: Path) -> Boundaries:
    frame = _read(path)
    if "name_en" not in frame.columns:
        frame["name_en"] = None
    cities = _level_frame(frame, "city", ["adcode", "name", "name_en"], path)
    districts = _level_frame(frame, "district", ["adcode", "name", "parent_adcode"], path)
    orphans = sorted(set(districts["parent_adcode"]) - set(cities["adcode"]))
    if orphans:
        raise ValueError(f"{path}: districts refer to unknown parent cities {orphans}")
    province = frame.loc[frame["level"] == "province"].iloc[0]
    return Boundaries(
        province=province.geometry,
        cities=cities,
        districts=districts,
        province_adcode=province["adcode"],
        province_name=province["name"],
    )


def load_boundaries(path: Path | None = None) -> Boundaries:
    """Load and validate the boundary file (cached per resolved path).

    Parameters
    ----------
    path : pathlib.Path, optional
        GeoJSON file; defaults to the repository's ``data/anhui.geojson``.

    Returns
    -------
    Boundaries
        Province outline, cities and districts in EPSG:4326. The same object
        is returned on every call for the same file.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If properties or whole levels are missing, a geometry is empty or not
        polygonal, adcodes repeat, or a district's parent city is absent.
    """
    return _load(Path(path or DEFAULT_PATH).resolve())


def _resolve(boundaries: Boundaries | None) -> Boundaries:
    return load_boundaries() if boundaries is None else boundaries


def display_features(
    level: str, tolerance_deg: float = 0.005, boundaries: Boundaries | None = None
) -> dict:
    """Simplified GeoJSON of one level, small enough to ship to a browser map.

    Geometries are simplified with topology preserved (no self-intersections)
    and coordinates rounded to 1e-5 degrees (about 1 m), which is what keeps
    the payload small: full float precision roughly doubles it.

    Parameters
    ----------
    level : str
        ``"province"``, ``"city"`` or ``"district"``.
    tolerance_deg : float, default 0.005
        Douglas-Peucker tolerance in degrees (0.005 is about 500 m).
    boundaries : Boundaries, optional
        Defaults to :func:`load_boundaries`.

    Returns
    -------
    dict
        A GeoJSON FeatureCollection; each feature's properties hold ``adcode``,
        ``name`` and, where present, ``name_en``.

    Raises
    ------
    ValueError
        If ``level`` is unknown or ``tolerance_deg`` is negative.
    """
    if tolerance_deg < 0:
        raise ValueError(f"tolerance_deg must be >= 0, got {tolerance_deg}")
    # Simplifying takes 5-30 ms a level and every map rerun draws one: done once, kept
    # as text, and each caller gets its own copy to decorate. For the default file the
    # text is also kept on disk, so a restarted process reads it instead of loading the
    # boundaries (geopandas, the file, the repairs) and simplifying again.
    if boundaries is None:
        return json.loads(_stored_display_json(level, float(tolerance_deg)))
    return json.loads(_display_json(level, tolerance_deg, boundaries))


@lru_cache(maxsize=32)
def _stored_display_json(level: str, tolerance_deg: float) -> str:
    """`_display_json` of the default file, through a cache file named by everything the
    text depends on: the source's bytes, level, tolerance, this code's format and the
    shapely/GEOS versions that simplify. A changed source or library is a new name."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    source = Path(DEFAULT_PATH).resolve()
    if not source.is_file():
        raise FileNotFoundError(f"boundary file not found: {source}")
    key = hashlib.sha256(source.read_bytes())
    for part in (level, repr(tolerance_deg), _DISPLAY_FORMAT, shapely.__version__,
                 shapely.geos_version_string):  # fmt: skip
        key.update(b"\0" + part.encode())
    cached = CACHE_DIR / f"{source.stem}-{level}-{key.hexdigest()[:24]}.json"
    try:
        return cached.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    text = _display_json(level, tolerance_deg, load_boundaries(source))
    _store(cached, text)
    return text


def _store(path: Path, text: str) -> None:
    """Write atomically (a reader sees the whole file or none); a read-only checkout
    just goes without the cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = path.parent / ".gitignore"
        if not ignore.exists():  # generated files: never committed
            ignore.write_text("*\n", encoding="utf-8")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    except OSError:
        return
    try:
        os.chmod(tmp, 0o644)  # as any file the app writes, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


@lru_cache(maxsize=32)
def _display_json(level: str, tolerance_deg: float, boundaries: Boundaries) -> str:
    frame = boundaries.level(level)
    simplified = shapely.set_precision(
        shapely.simplify(frame.geometry.values, tolerance_deg, preserve_topology=True),
        grid_size=1e-5,
    )
    features = []
    for row, geometry in zip(frame.itertuples(index=False), simplified, strict=True):
        properties = {"adcode": row.adcode, "name": row.name}
        name_en = getattr(row, "name_en", None)
        if isinstance(name_en, str) and name_en:
            properties["name_en"] = name_en
        features.append(
            {
                "type": "Feature",
                "properties": properties,
                "geometry": json.loads(shapely.to_geojson(geometry)),
            }
        )
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)


def label_points(level: str, boundaries: Boundaries | None = None) -> pd.DataFrame:
    """Label anchor points guaranteed to lie inside each polygon.

    Centroids can fall outside concave or multi-part areas (and into a
    neighbour), so labels use shapely's ``representative_point``.

    Parameters
    ----------
    level : str
        ``"province"``, ``"city"`` or ``"district"``.
    boundaries : Boundaries, optional
        Defaults to :func:`load_boundaries`.

    Returns
    -------
    pandas.DataFrame
        Columns ``adcode``, ``name``, ``lon``, ``lat``.

    Raises
    ------
    ValueError
        If ``level`` is unknown.
    """
    frame = _resolve(boundaries).level(level)
    points = shapely.point_on_surface(frame.geometry.values)
    return pd.DataFrame(
        {
            "adcode": frame["adcode"].to_numpy(),
            "name": frame["name"].to_numpy(),
            "lon": shapely.get_x(points),
            "lat": shapely.get_y(points),
        }
    )
