"""The datasets a feed may fill, described from the models so they cannot drift.

Each field a feed can supply has a kind (text, int, float, datetime, date, bool) taken
from its model column, whether it is required, an optional code table, and for a few
"virtual" fields a special meaning: personal identifiers (validated, then stored
SM4-encrypted with a blind index), plates, and a camera named by its source id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Boolean, Date, Float, Integer, SmallInteger, String, Table

from hub import models as m

# Envelope columns the pipeline sets itself; a spec never maps them.
_ENVELOPE = {"id", "created_at", "updated_at", "city_code", "source_batch_id"}
# Free-text columns that repeat identifiers ("caller 138..."): sealed before they are
# stored (hub.security.narrative). Names, codes and keys are not narratives.
NARRATIVES = frozenset({"summary", "note", "address", "title"})
# Rejection reasons whose value is a line number of the file, not a fragment of the row:
# kept in clear where other values are stored encrypted and withheld from the admin.
LINE_VALUES = frozenset({"conflicting_duplicate"})


@dataclass(frozen=True)
class Field:
    """One standard field a feed can supply."""

    name: str
    kind: str  # text, int, float, datetime, date, bool
    required: bool = False
    max_len: int | None = None
    code_table: str | None = None
    check: str | None = None  # id_number, phone, plate: validated by hub.validate
    doc: str = ""
    narrative: bool = False  # free text: identifiers in it are stored encrypted


@dataclass(frozen=True)
class Dataset:
    """A target table of the standard and the fields a feed fills it with."""

    name: str
    model: type[m.Base]
    fields: dict[str, Field]
    has_point: bool = False  # lon/lat: converted to WGS84, city and district assigned
    time_field: str | None = None  # the event time (timeliness, retention)
    # model column -> the virtual field it is derived from (encryption, camera lookup)
    derived: dict[str, str] = field(default_factory=dict)

    @property
    def table(self) -> Table:
        return self.model.__table__  # type: ignore[return-value]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.required]


def _kind(column) -> str:
    from hub.models import UTCDateTime

    t = column.type
    if isinstance(t, UTCDateTime):
        return "datetime"
    if isinstance(t, Date):
        return "date"
    if isinstance(t, Boolean):
        return "bool"
    if isinstance(t, Integer | SmallInteger):
        return "int"
    if isinstance(t, Float):
        return "float"
    return "text"


def _from_model(
    model: type[m.Base],
    *,
    skip: set[str] = frozenset(),
    optional: set[str] = frozenset(),
    codes: dict[str, str] | None = None,
) -> dict[str, Field]:
    """Fields for the model's own columns: required when NOT NULL without a default."""
    out = {}
    for col in model.__table__.columns:
        if col.name in _ENVELOPE or col.name in skip:
            continue
        required = not col.nullable and col.default is None and col.name not in optional
        max_len = col.type.length if isinstance(col.type, String) else None
        out[col.name] = Field(
            col.name, _kind(col), required, max_len, (codes or {}).get(col.name),
            doc=col.doc or "", narrative=col.name in NARRATIVES and _kind(col) == "text",
        )  # fmt: skip
    return out


def _pid(name: str, check: str, doc: str) -> Field:
    return Field(name, "text", False, 40, check=check, doc=doc)


def _datasets() -> dict[str, Dataset]:
    incidents = _from_model(
        m.Incident,
        skip={"h3_r7", "h3_r8", "case_id"},
        optional={"reported_at", "district_code"},
        codes={"type_code": "incident_type", "severity": "severity", "classification": "classification"},
    )  # fmt: skip
    sightings = _from_model(
        m.Sighting, skip={"camera_id"}, optional={"district_code"},
        codes={"classification": "classification"},
    )  # fmt: skip
    sightings["plate"] = Field("plate", "text", True, 12, check="plate", doc="licence plate")
    sightings["camera"] = Field("camera", "text", True, 64, doc="the camera's source_id")
    cases = _from_model(
        m.Case, codes={"case_type": "case_type", "classification": "classification"}
    )
    persons = _from_model(
        m.Person,
        skip={"id_enc", "id_bidx", "phone_enc", "phone_bidx", "key_id"},
        codes={"classification": "classification"},
    )
    persons["id_number"] = _pid("id_number", "id_number", "resident ID number (GB 11643)")
    persons["phone"] = _pid("phone", "phone", "phone number")
    help_requests = _from_model(
        m.HelpRequest,
        skip={"caller_phone_enc", "caller_phone_bidx", "key_id"},
        optional={"district_code"},
        codes={"kind": "help_kind", "classification": "classification"},
    )
    help_requests["caller_phone"] = _pid("caller_phone", "phone", "caller's phone number")
    cameras = _from_model(
        m.Camera, optional={"district_code"},
        codes={"kind": "camera_kind", "classification": "classification"},
    )  # fmt: skip
    return {
        "incidents": Dataset("incidents", m.Incident, incidents, True, "ts"),
        "sightings": Dataset(
            "sightings", m.Sighting, sightings, True, "ts", {"camera_id": "camera"}
        ),
        "cases": Dataset("cases", m.Case, cases, False, "opened_at"),
        "persons": Dataset(
            "persons",
            m.Person,
            persons,
            derived={
                "id_enc": "id_number",
                "id_bidx": "id_number",
                "phone_enc": "phone",
                "phone_bidx": "phone",
            },
        ),  # fmt: skip
        "help_requests": Dataset(
            "help_requests",
            m.HelpRequest,
            help_requests,
            True,
            "ts",
            {"caller_phone_enc": "caller_phone", "caller_phone_bidx": "caller_phone"},
        ),  # fmt: skip
        "cameras": Dataset("cameras", m.Camera, cameras, True, "installed_at"),
    }


DATASETS: dict[str, Dataset] = _datasets()


def dataset(name: str) -> Dataset:
    """The dataset called `name`; KeyError names the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; feeds fill: {', '.join(DATASETS)}") from None
