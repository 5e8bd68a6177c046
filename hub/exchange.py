"""Documented JSON exchange formats: incidents as EIDO-like objects, alerts as CAP 1.2.

Both functions take and return plain dicts (``json.dumps``-ready), so the same
objects serve a download button, an API and a test. Access control and masking
happen before: a service passes only what the viewer may share.

Incident dict (our side; the columns of ``hub.models.Incident`` that travel)
----------------------------------------------------------------------------
``source_id`` str, ``city_code`` str (6 digits), ``district_code`` str or None,
``classification`` (``classification`` code), ``type_code`` (``incident_type``
code), ``severity`` int 1-4, ``status`` (``open`` | ``handling`` | ``closed``),
``ts`` and ``reported_at`` timezone-aware datetimes, ``lon``/``lat`` WGS84 floats,
``address`` and ``summary`` str or None.

EIDO subset (inspired by NENA-STA-024 EIDO; not a conformant EIDO)
------------------------------------------------------------------
::

    {
      "eidoMessageIdentifier": "urn:uuid:...",   # uuid5 of the incident and its update time
      "lastUpdateTimeStamp": "2026-11-22T16:00:00+08:00",
      "sendingSystemIdentifier": "urn:anhui-hub:340100",
      "messageKind": "Report",
      "incidentComponent": [{                    # exactly one
        "componentIdentifier": "incident-1",
        "incidentTrackingIdentifier": "340100:SRC-1",   # city_code:source_id
        "lastUpdateTimeStamp": ...,
        "incidentTypeCommonRegistryText": "Theft",      # English label of type_code
        "incidentTypeInternalCode": "theft",
        "incidentStatusCommonRegistryText": "Pending" | "Active" | "Closed",
        "incidentCommonPriorityNumber": 1..4,            # 1 = most urgent = severity 4
        "locationReference": [{"$ref": "#location-1"}],
        "updatedByAgencyReference": {"$ref": "#agency-1"},
        "notesReference": [{"$ref": "#note-1"}]          # only with a summary
      }],
      "locationComponent": [{"$id": "location-1", "componentIdentifier": "location-1",
        "locationByValue": {"point": {"latitude": 31.8, "longitude": 117.2}},
        "civicAddressText": "..."}],                     # only with an address
      "agencyComponent": [{"$id": "agency-1", "componentIdentifier": "agency-1",
        "agencyIdentifier": "340100"}],
      "notesComponent": [{"$id": "note-1", "componentIdentifier": "note-1",
        "noteDateTimeStamp": ..., "noteText": "..."}],
      "hubExtension": {"classification": ..., "districtCode": ...,
        "occurredAt": ..., "reportedAt": ...}
    }

Deviations from EIDO, on purpose: the location is a JSON point instead of a PIDF-LO
document; status and type registry texts are ours (the NENA registries are not
checked); what EIDO has no field for (classification, district, the two times)
sits in ``hubExtension``. Unknown keys are ignored on import, so later versions may
add fields. Timestamps are RFC 3339 with an offset (Asia/Shanghai); naive ones are
refused.

Alert dict (our side; ``hub.models.Alert``)
-------------------------------------------
``source_id``, ``city_code``, ``kind`` (``hotspot``, ``fraud_wave``, ``manual``,
...), ``level`` (``risk_level`` code), ``title``, ``body`` (or None), ``ts``
(aware datetime), ``lon``/``lat``/``radius_m`` (or None for an alert without a
place), optional ``area_desc``.

CAP 1.2 as JSON: the element names of OASIS CAP 1.2 with ``info`` and ``area`` as
objects (one each); see :func:`alert_to_cap` for the mapping.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from hub.codes import CLASSIFICATIONS, code_values, codes
from hub.security.errors import InputError

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
EIDO_NAMESPACE = uuid.UUID("7d1c9b52-3f0e-4d55-9a51-2f4a0c6e8b10")
SYSTEM_URN = "urn:anhui-hub"
INCIDENT_STATUSES = ("open", "handling", "closed")
_STATUS_TEXT = {"open": "Pending", "handling": "Active", "closed": "Closed"}
_STATUS_CODE = {text: code for code, text in _STATUS_TEXT.items()}
_ADCODE = re.compile(r"^\d{6}$")
_TRACKING = re.compile(r"^(\d{6}):(.{1,64})$")
# CAP 1.2 forbids spaces, commas and the XML-reserved < and & in identifier and sender.
_CAP_TOKEN = re.compile(r"^[^\s,<&]+$")
_ADDRESS_MAX = 200
_TEXT_MAX = 10_000

# CAP mapping of our risk levels: (urgency, severity).
_CAP_LEVEL = {
    "high": ("Immediate", "Severe"),
    "medium": ("Expected", "Moderate"),
    "low": ("Future", "Minor"),
}
_CAP_EVENT = {"hotspot": "警情热点", "fraud_wave": "诈骗高发", "manual": "风险预警"}
CAP_MSG_TYPES = ("Alert", "Update", "Cancel")


def _bad(fmt: str, field: str, problem: str) -> InputError:
    return InputError(
        f"bad_{fmt}", f"{fmt.upper()} {field}: {problem}", field=field, problem=problem
    )


# --- shared field checks ---------------------------------------------------------------


def _text(value: object, fmt: str, field: str, limit: int, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(fmt, field, "must be a non-empty string")
    if "\x00" in value:
        raise _bad(fmt, field, "contains a NUL character")
    if len(value) > limit:
        raise _bad(fmt, field, f"longer than {limit} characters")
    return value


def _aware(value: object, fmt: str, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise _bad(fmt, field, "must be a timezone-aware datetime")
    return value


def _stamp(value: datetime) -> str:
    return value.astimezone(LOCAL_TZ).isoformat()


def _parse_stamp(value: object, fmt: str, field: str) -> datetime:
    if not isinstance(value, str):
        raise _bad(fmt, field, "must be an RFC 3339 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(fmt, field, f"not an RFC 3339 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise _bad(fmt, field, "timestamp without a UTC offset")
    return parsed


def _number(value: object, fmt: str, field: str, low: float, high: float) -> float:
    # bool is an int subclass: True must not pass as a coordinate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(fmt, field, "must be a number")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise _bad(fmt, field, f"must be between {low} and {high}")
    return value


def _adcode(value: object, fmt: str, field: str) -> str:
    if not isinstance(value, str) or not _ADCODE.match(value):
        raise _bad(fmt, field, "must be a 6-digit GB/T 2260 code")
    return value


def _one_of(value: object, allowed: tuple[str, ...], fmt: str, field: str) -> str:
    if value not in allowed:
        raise _bad(fmt, field, f"must be one of {', '.join(allowed)}")
    return str(value)


# --- incidents <-> EIDO ------------------------------------------------------------------


def _checked_incident(incident: dict) -> dict:
    fmt = "incident"
    if not isinstance(incident, dict):
        raise _bad(fmt, "incident", "must be an object")
    city = _adcode(incident.get("city_code"), fmt, "city_code")
    district = incident.get("district_code")
    if district is not None:
        _adcode(district, fmt, "district_code")
        # GB/T 2260: a district's code starts with its city's first four digits.
        if district[:4] != city[:4]:
            raise _bad(fmt, "district_code", f"{district} is not a district of {city}")
    severity = incident.get("severity")
    if isinstance(severity, bool) or not isinstance(severity, int) or not 1 <= severity <= 4:
        raise _bad(fmt, "severity", "must be an integer from 1 to 4")
    return {
        "source_id": _text(incident.get("source_id"), fmt, "source_id", 64),
        "city_code": city,
        "district_code": district,
        "classification": _one_of(
            incident.get("classification"), CLASSIFICATIONS, fmt, "classification"
        ),
        "type_code": _one_of(
            incident.get("type_code"), code_values("incident_type"), fmt, "type_code"
        ),
        "severity": severity,
        "status": _one_of(incident.get("status"), INCIDENT_STATUSES, fmt, "status"),
        "ts": _aware(incident.get("ts"), fmt, "ts"),
        "reported_at": _aware(incident.get("reported_at"), fmt, "reported_at"),
        "lon": _number(incident.get("lon"), fmt, "lon", -180.0, 180.0),
        "lat": _number(incident.get("lat"), fmt, "lat", -90.0, 90.0),
        "address": _text(incident.get("address"), fmt, "address", _ADDRESS_MAX, optional=True),
        "summary": _text(incident.get("summary"), fmt, "summary", _TEXT_MAX, optional=True),
    }


def incident_to_eido(incident: dict) -> dict:
    """An incident as an EIDO-like JSON object (see the module notes for the format).

    Parameters
    ----------
    incident : dict
        The incident fields listed in the module notes.

    Returns
    -------
    dict
        The EIDO-like object; JSON-serialisable. Its message identifier is derived
        from the incident and ``reported_at``/``ts``, so exporting the same state
        twice gives the same identifier.

    Raises
    ------
    InputError
        Code ``bad_incident`` (params ``field``, ``problem``) if a field is missing
        or invalid; nothing malformed is ever exported.
    """
    inc = _checked_incident(incident)
    tracking = f"{inc['city_code']}:{inc['source_id']}"
    updated = max(inc["ts"], inc["reported_at"])
    english = {c.code: c.en for c in codes("incident_type")}
    component = {
        "componentIdentifier": "incident-1",
        "incidentTrackingIdentifier": tracking,
        "lastUpdateTimeStamp": _stamp(updated),
        "incidentTypeCommonRegistryText": english[inc["type_code"]],
        "incidentTypeInternalCode": inc["type_code"],
        "incidentStatusCommonRegistryText": _STATUS_TEXT[inc["status"]],
        "incidentCommonPriorityNumber": 5 - inc["severity"],
        "locationReference": [{"$ref": "#location-1"}],
        "updatedByAgencyReference": {"$ref": "#agency-1"},
    }
    location = {
        "$id": "location-1",
        "componentIdentifier": "location-1",
        "locationByValue": {"point": {"latitude": inc["lat"], "longitude": inc["lon"]}},
    }
    if inc["address"] is not None:
        location["civicAddressText"] = inc["address"]
    eido = {
        "eidoMessageIdentifier": "urn:uuid:"
        + str(uuid.uuid5(EIDO_NAMESPACE, f"{tracking}@{updated.isoformat()}")),
        "lastUpdateTimeStamp": _stamp(updated),
        "sendingSystemIdentifier": f"{SYSTEM_URN}:{inc['city_code']}",
        "messageKind": "Report",
        "incidentComponent": [component],
        "locationComponent": [location],
        "agencyComponent": [
            {
                "$id": "agency-1",
                "componentIdentifier": "agency-1",
                "agencyIdentifier": inc["city_code"],
            }
        ],
        "notesComponent": [],
        "hubExtension": {
            "classification": inc["classification"],
            "districtCode": inc["district_code"],
            "occurredAt": _stamp(inc["ts"]),
            "reportedAt": _stamp(inc["reported_at"]),
        },
    }
    if inc["summary"] is not None:
        component["notesReference"] = [{"$ref": "#note-1"}]
        eido["notesComponent"].append(
            {
                "$id": "note-1",
                "componentIdentifier": "note-1",
                "noteDateTimeStamp": _stamp(inc["reported_at"]),
                "noteText": inc["summary"],
            }
        )
    return eido


def _object(value: object, field: str) -> dict:
    if not isinstance(value, dict):
        raise _bad("eido", field, "must be an object")
    return value


def _components(eido: dict, name: str) -> dict[str, dict]:
    found = eido.get(name, [])
    if not isinstance(found, list):
        raise _bad("eido", name, "must be a list")
    by_id: dict[str, dict] = {}
    for i, component in enumerate(found):
        component = _object(component, f"{name}[{i}]")
        key = component.get("$id", component.get("componentIdentifier"))
        if not isinstance(key, str):
            raise _bad("eido", f"{name}[{i}]", "has no $id")
        by_id[key] = component
    return by_id


def _resolve(ref: object, pool: dict[str, dict], field: str) -> dict:
    if isinstance(ref, list):
        if len(ref) != 1:
            raise _bad("eido", field, "must reference exactly one component")
        ref = ref[0]
    target = _object(ref, field).get("$ref")
    if not isinstance(target, str) or target.removeprefix("#") not in pool:
        raise _bad("eido", field, f"reference {target!r} does not resolve")
    return pool[target.removeprefix("#")]


def _eido_type(component: dict) -> str:
    internal = component.get("incidentTypeInternalCode")
    if internal is not None:
        return _one_of(internal, code_values("incident_type"), "eido", "incidentTypeInternalCode")
    # A sender without our internal code: match the registry text to an English label.
    text = component.get("incidentTypeCommonRegistryText")
    by_label = {c.en.casefold(): c.code for c in codes("incident_type")}
    if isinstance(text, str) and text.casefold() in by_label:
        return by_label[text.casefold()]
    raise _bad("eido", "incidentTypeCommonRegistryText", f"unknown incident type {text!r}")


def incident_from_eido(eido: dict) -> dict:
    """Read an EIDO-like object (the module's format) back into an incident dict.

    Parameters
    ----------
    eido : dict
        A parsed JSON object.

    Returns
    -------
    dict
        The incident fields listed in the module notes, validated; timestamps are
        timezone-aware datetimes.

    Raises
    ------
    InputError
        Code ``bad_eido`` (params ``field``, ``problem``) for a structural problem
        (missing component, dangling reference, malformed timestamp, ...), or
        ``bad_incident`` when the values it carries are invalid.
    """
    eido = _object(eido, "message")
    _text(eido.get("eidoMessageIdentifier"), "eido", "eidoMessageIdentifier", 200)
    _parse_stamp(eido.get("lastUpdateTimeStamp"), "eido", "lastUpdateTimeStamp")
    incidents = eido.get("incidentComponent")
    if not isinstance(incidents, list) or len(incidents) != 1:
        raise _bad("eido", "incidentComponent", "must be a list with exactly one incident")
    component = _object(incidents[0], "incidentComponent[0]")
    tracking = component.get("incidentTrackingIdentifier")
    match = _TRACKING.match(tracking) if isinstance(tracking, str) else None
    if match is None:
        raise _bad("eido", "incidentTrackingIdentifier", "must be '<city_code>:<source_id>'")
    city, source_id = match.groups()
    agency = _resolve(
        component.get("updatedByAgencyReference"),
        _components(eido, "agencyComponent"),
        "updatedByAgencyReference",
    )
    if agency.get("agencyIdentifier") != city:
        raise _bad("eido", "agencyIdentifier", f"does not match the tracking identifier's {city}")
    location = _resolve(
        component.get("locationReference"),
        _components(eido, "locationComponent"),
        "locationReference",
    )
    point = _object(
        _object(location.get("locationByValue"), "locationByValue").get("point"), "point"
    )
    status_text = component.get("incidentStatusCommonRegistryText")
    if status_text not in _STATUS_CODE:
        raise _bad(
            "eido", "incidentStatusCommonRegistryText", f"must be one of {', '.join(_STATUS_CODE)}"
        )
    priority = component.get("incidentCommonPriorityNumber")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 4:
        raise _bad("eido", "incidentCommonPriorityNumber", "must be an integer from 1 to 4")
    summary = None
    if "notesReference" in component:
        note = _resolve(
            component["notesReference"], _components(eido, "notesComponent"), "notesReference"
        )
        summary = note.get("noteText")
    ext = _object(eido.get("hubExtension"), "hubExtension")
    return _checked_incident(
        {
            "source_id": source_id,
            "city_code": city,
            "district_code": ext.get("districtCode"),
            "classification": ext.get("classification"),
            "type_code": _eido_type(component),
            "severity": 5 - priority,
            "status": _STATUS_CODE[status_text],
            "ts": _parse_stamp(ext.get("occurredAt"), "eido", "hubExtension.occurredAt"),
            "reported_at": _parse_stamp(ext.get("reportedAt"), "eido", "hubExtension.reportedAt"),
            "lon": point.get("longitude"),
            "lat": point.get("latitude"),
            "address": location.get("civicAddressText"),
            "summary": summary,
        }
    )


# --- alerts -> CAP 1.2 -------------------------------------------------------------------


def alert_to_cap(
    alert: dict,
    *,
    msg_type: str = "Alert",
    references: str | None = None,
    exercise: bool = False,
) -> dict:
    """An alert as a CAP 1.2 message in JSON form.

    Mapping: ``identifier`` = ``<city_code>-alert-<source_id>``; ``sender`` =
    ``urn:anhui-hub:<city_code>``; ``sent`` = ``ts`` in Asia/Shanghai with its offset
    (CAP forbids ``Z``); ``status`` = ``Exercise`` in exercise mode, else ``Actual``;
    ``scope`` = ``Restricted`` (police-internal, ``restriction`` says so);
    ``info.category`` = ``["Security"]``; ``info.event`` = the kind in Chinese;
    ``urgency``/``severity`` from the risk level (high: Immediate/Severe, medium:
    Expected/Moderate, low: Future/Minor); ``certainty`` = ``Likely`` for a
    statistical ``hotspot``, ``Observed`` otherwise; ``headline`` = title,
    ``description`` = body; ``area.circle`` = ``"lat,lon radius_km"`` when the alert
    has a place.

    Parameters
    ----------
    alert : dict
        The alert fields listed in the module notes.
    msg_type : str, default "Alert"
        ``Alert``, ``Update`` or ``Cancel``.
    references : str, optional
        Required for ``Update``/``Cancel``: ``"sender,identifier,sent"`` of the
        message it replaces, as CAP defines.
    exercise : bool, default False
        Mark the message as an exercise (exercise mode).

    Returns
    -------
    dict
        The CAP message; JSON-serialisable.

    Raises
    ------
    InputError
        Code ``bad_alert`` (params ``field``, ``problem``) if a field is missing or
        invalid, or ``msg_type``/``references`` do not fit together.
    """
    fmt = "alert"
    if not isinstance(alert, dict):
        raise _bad(fmt, "alert", "must be an object")
    city = _adcode(alert.get("city_code"), fmt, "city_code")
    source_id = _text(alert.get("source_id"), fmt, "source_id", 64)
    identifier = f"{city}-alert-{source_id}"
    if not _CAP_TOKEN.match(identifier):
        raise _bad(fmt, "source_id", "must not contain spaces, commas, < or &")
    level = _one_of(alert.get("level"), code_values("risk_level"), fmt, "level")
    kind = _text(alert.get("kind"), fmt, "kind", 20)
    title = _text(alert.get("title"), fmt, "title", 200)
    body = _text(alert.get("body"), fmt, "body", _TEXT_MAX, optional=True)
    sent = _aware(alert.get("ts"), fmt, "ts")
    _one_of(msg_type, CAP_MSG_TYPES, fmt, "msg_type")
    if (msg_type == "Alert") != (references is None):
        raise _bad(fmt, "references", "required for Update and Cancel, and only for them")
    urgency, severity = _CAP_LEVEL[level]
    info = {
        "language": "zh-CN",
        "category": ["Security"],
        "event": _CAP_EVENT.get(kind, kind),
        "urgency": urgency,
        "severity": severity,
        "certainty": "Likely" if kind == "hotspot" else "Observed",
        "headline": title,
    }
    if body is not None:
        info["description"] = body
    area_desc = _text(alert.get("area_desc"), fmt, "area_desc", 200, optional=True)
    area = {"areaDesc": area_desc or city}
    place = [alert.get(k) for k in ("lon", "lat", "radius_m")]
    if any(v is not None for v in place[:2]):
        lon = _number(place[0], fmt, "lon", -180.0, 180.0)
        lat = _number(place[1], fmt, "lat", -90.0, 90.0)
        radius_m = 0.0 if place[2] is None else _number(place[2], fmt, "radius_m", 0.0, 1e7)
        area["circle"] = f"{lat:.6f},{lon:.6f} {radius_m / 1000.0:.3f}"
    info["area"] = area
    message = {
        "identifier": identifier,
        "sender": f"{SYSTEM_URN}:{city}",
        "sent": sent.astimezone(LOCAL_TZ).isoformat(timespec="seconds"),
        "status": "Exercise" if exercise else "Actual",
        "msgType": msg_type,
        "scope": "Restricted",
        "restriction": "公安内部 / police internal",
        "info": info,
    }
    if references is not None:
        message["references"] = _text(references, fmt, "references", 1000)
    return message
