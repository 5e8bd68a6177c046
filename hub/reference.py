"""Reference data every store carries: cities, districts and the code tables."""

from __future__ import annotations

import json

import shapely
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from geo.boundaries import load_boundaries
from hub.codes import code_tables
from hub.models import City, CodeValue, District


def _place(row) -> dict[str, object]:
    """Label point (inside the polygon) and GeoJSON geometry of a boundary row."""
    point = row.geometry.representative_point()
    return {"lon": point.x, "lat": point.y, "geometry": shapely.to_geojson(row.geometry)}


def load_reference(*, session: Session) -> dict[str, int]:
    """Write cities, districts and code tables; safe to run on every `init`.

    Rows are merged by key, so an upgraded store keeps its records and references.
    """
    b = load_boundaries()
    for row in b.cities.itertuples():
        session.merge(City(adcode=row.adcode, name=row.name, name_en=row.name_en, **_place(row)))
    session.flush()
    for row in b.districts.itertuples():
        session.merge(
            District(adcode=row.adcode, city_code=row.parent_adcode, name=row.name, **_place(row))
        )
    tables = code_tables()
    session.execute(delete(CodeValue).where(CodeValue.table_name.not_in(list(tables))))
    for table, entries in tables.items():
        session.execute(
            delete(CodeValue).where(
                CodeValue.table_name == table, CodeValue.code.not_in([c.code for c in entries])
            )
        )
        for position, c in enumerate(entries):
            session.merge(
                CodeValue(
                    table_name=table,
                    code=c.code,
                    zh=c.zh,
                    en=c.en,
                    position=position,
                    attrs=json.dumps(c.attrs, ensure_ascii=False, sort_keys=True),
                )
            )
    session.flush()
    return {
        "cities": len(session.scalars(select(City.adcode)).all()),
        "districts": len(session.scalars(select(District.adcode)).all()),
        "codes": sum(len(v) for v in tables.values()),
    }
