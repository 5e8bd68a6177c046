"""Exchange formats: EIDO-like incidents (round trip, rejection) and CAP 1.2 alerts."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hub.exchange import alert_to_cap, incident_from_eido, incident_to_eido
from hub.security.errors import InputError

INCIDENT = {
    "source_id": "HF-2026-000123",
    "city_code": "340100",
    "district_code": "340104",
    "classification": "internal",
    "type_code": "robbery",
    "severity": 3,
    "status": "handling",
    "ts": datetime(2026, 11, 22, 7, 41, 5, 250_000, tzinfo=UTC),
    "reported_at": datetime(2026, 11, 22, 7, 44, 0, tzinfo=UTC),
    "lon": 117.283042,
    "lat": 31.861190,
    "address": "蜀山区长江西路 100 号",
    "summary": "两名嫌疑人驾驶白色轿车逃离, 向滁州方向",
}
ALERT = {
    "source_id": "A-77",
    "city_code": "340100",
    "kind": "hotspot",
    "level": "high",
    "title": "蜀山区盗窃警情异常升高",
    "body": "过去 24 小时 14 起, 基线日均 2 起",
    "ts": datetime(2026, 11, 22, 8, 0, tzinfo=UTC),
    "lon": 117.25,
    "lat": 31.85,
    "radius_m": 1500.0,
}


def through_json(obj: dict) -> dict:
    return json.loads(json.dumps(obj, ensure_ascii=False))


def test_round_trip_through_json():
    eido = through_json(incident_to_eido(INCIDENT))
    assert incident_from_eido(eido) == INCIDENT


def test_round_trip_without_optional_fields():
    bare = {**INCIDENT, "district_code": None, "address": None, "summary": None}
    eido = incident_to_eido(bare)
    assert eido["notesComponent"] == []
    assert "civicAddressText" not in eido["locationComponent"][0]
    assert incident_from_eido(through_json(eido)) == bare


def test_eido_shape():
    eido = incident_to_eido(INCIDENT)
    component = eido["incidentComponent"][0]
    assert component["incidentTrackingIdentifier"] == "340100:HF-2026-000123"
    assert component["incidentTypeCommonRegistryText"] == "Robbery"
    assert component["incidentCommonPriorityNumber"] == 2  # severity 3 of 4
    assert component["incidentStatusCommonRegistryText"] == "Active"
    assert eido["lastUpdateTimeStamp"] == "2026-11-22T15:44:00+08:00"
    assert eido["locationComponent"][0]["locationByValue"]["point"] == {
        "latitude": 31.86119,
        "longitude": 117.283042,
    }
    # Same state, same message id; a new update, a new id.
    assert incident_to_eido(INCIDENT)["eidoMessageIdentifier"] == eido["eidoMessageIdentifier"]
    later = {**INCIDENT, "reported_at": INCIDENT["reported_at"] + timedelta(minutes=5)}
    assert incident_to_eido(later)["eidoMessageIdentifier"] != eido["eidoMessageIdentifier"]


def test_foreign_sender_without_internal_code_maps_by_label():
    eido = through_json(incident_to_eido(INCIDENT))
    del eido["incidentComponent"][0]["incidentTypeInternalCode"]
    eido["incidentComponent"][0]["incidentTypeCommonRegistryText"] = "robbery"
    assert incident_from_eido(eido)["type_code"] == "robbery"


def test_timestamps_in_other_offsets_are_the_same_instants():
    eido = through_json(incident_to_eido(INCIDENT))
    eido["hubExtension"]["occurredAt"] = "2026-11-22T07:41:05.250000Z"
    assert incident_from_eido(eido)["ts"] == INCIDENT["ts"]


def _break(path: list, value: object = "__delete__"):
    def apply(eido: dict) -> dict:
        target = eido
        for key in path[:-1]:
            target = target[key]
        if value == "__delete__":
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return eido

    return apply


MALFORMED = {
    "no message id": (_break(["eidoMessageIdentifier"]), "bad_eido", "eidoMessageIdentifier"),
    "naive stamp": (
        _break(["lastUpdateTimeStamp"], "2026-11-22T15:44:00"),
        "bad_eido",
        "lastUpdateTimeStamp",
    ),
    "garbage stamp": (_break(["hubExtension", "occurredAt"], "yesterday"), "bad_eido", None),
    "two incidents": (
        lambda e: {**e, "incidentComponent": e["incidentComponent"] * 2},
        "bad_eido",
        "incidentComponent",
    ),
    "no incident": (_break(["incidentComponent"], []), "bad_eido", "incidentComponent"),
    "bad tracking id": (
        _break(["incidentComponent", 0, "incidentTrackingIdentifier"], "HF-123"),
        "bad_eido",
        "incidentTrackingIdentifier",
    ),
    "dangling location": (
        _break(["incidentComponent", 0, "locationReference"], [{"$ref": "#nowhere"}]),
        "bad_eido",
        "locationReference",
    ),
    "agency mismatch": (
        _break(["agencyComponent", 0, "agencyIdentifier"], "341100"),
        "bad_eido",
        "agencyIdentifier",
    ),
    "latitude out of range": (
        _break(["locationComponent", 0, "locationByValue", "point", "latitude"], 131.8),
        "bad_incident",
        "lat",
    ),
    "latitude as text": (
        _break(["locationComponent", 0, "locationByValue", "point", "latitude"], "31.8"),
        "bad_incident",
        "lat",
    ),
    "unknown type": (
        _break(["incidentComponent", 0, "incidentTypeInternalCode"], "piracy"),
        "bad_eido",
        "incidentTypeInternalCode",
    ),
    "unknown status": (
        _break(["incidentComponent", 0, "incidentStatusCommonRegistryText"], "Open"),
        "bad_eido",
        "incidentStatusCommonRegistryText",
    ),
    "priority zero": (
        _break(["incidentComponent", 0, "incidentCommonPriorityNumber"], 0),
        "bad_eido",
        "incidentCommonPriorityNumber",
    ),
    "no classification": (
        _break(["hubExtension", "classification"]),
        "bad_incident",
        "classification",
    ),
    "district of another city": (
        _break(["hubExtension", "districtCode"], "341102"),
        "bad_incident",
        "district_code",
    ),
    "no extension": (_break(["hubExtension"]), "bad_eido", "hubExtension"),
    "NUL in note": (
        _break(["notesComponent", 0, "noteText"], "a\x00b"),
        "bad_incident",
        "summary",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_eido_is_refused(case):
    breaker, code, field = MALFORMED[case]
    eido = breaker(copy.deepcopy(through_json(incident_to_eido(INCIDENT))))
    with pytest.raises(InputError) as refused:
        incident_from_eido(eido)
    assert refused.value.code == code
    if field is not None:
        assert refused.value.params["field"] == field


@pytest.mark.parametrize("not_an_object", [None, [], "eido", 3])
def test_non_objects_are_refused(not_an_object):
    with pytest.raises(InputError):
        incident_from_eido(not_an_object)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ts", datetime(2026, 11, 22, 7, 41)),  # naive
        ("severity", 5),
        ("severity", True),
        ("type_code", "piracy"),
        ("city_code", "3401"),
        ("source_id", ""),
        ("lon", float("nan")),
    ],
)
def test_export_refuses_invalid_incidents(field, value):
    with pytest.raises(InputError) as refused:
        incident_to_eido({**INCIDENT, field: value})
    assert refused.value.code == "bad_incident"
    assert refused.value.params["field"] == field


def test_cap_message():
    cap = through_json(alert_to_cap(ALERT))
    assert cap == {
        "identifier": "340100-alert-A-77",
        "sender": "urn:anhui-hub:340100",
        "sent": "2026-11-22T16:00:00+08:00",
        "status": "Actual",
        "msgType": "Alert",
        "scope": "Restricted",
        "restriction": "公安内部 / police internal",
        "info": {
            "language": "zh-CN",
            "category": ["Security"],
            "event": "警情热点",
            "urgency": "Immediate",
            "severity": "Severe",
            "certainty": "Likely",
            "headline": "蜀山区盗窃警情异常升高",
            "description": "过去 24 小时 14 起, 基线日均 2 起",
            "area": {"areaDesc": "340100", "circle": "31.850000,117.250000 1.500"},
        },
    }


def test_cap_variants():
    manual = alert_to_cap(
        {**ALERT, "kind": "manual", "level": "low", "body": None, "area_desc": "合肥市蜀山区"},
        exercise=True,
    )
    assert manual["status"] == "Exercise"
    assert (manual["info"]["urgency"], manual["info"]["severity"]) == ("Future", "Minor")
    assert manual["info"]["certainty"] == "Observed"
    assert "description" not in manual["info"]
    assert manual["info"]["area"]["areaDesc"] == "合肥市蜀山区"
    nowhere = alert_to_cap({**ALERT, "lon": None, "lat": None, "radius_m": None})
    assert "circle" not in nowhere["info"]["area"]
    point = alert_to_cap({**ALERT, "radius_m": None})
    assert point["info"]["area"]["circle"].endswith(" 0.000")
    other_zone = {**ALERT, "ts": datetime(2026, 11, 22, 3, 0, tzinfo=timezone(timedelta(hours=-5)))}
    assert alert_to_cap(other_zone)["sent"] == "2026-11-22T16:00:00+08:00"
    ref = "urn:anhui-hub:340100,340100-alert-A-77,2026-11-22T16:00:00+08:00"
    cancel = alert_to_cap(ALERT, msg_type="Cancel", references=ref)
    assert (cancel["msgType"], cancel["references"]) == ("Cancel", ref)


@pytest.mark.parametrize(
    ("change", "kwargs", "field"),
    [
        ({"level": "extreme"}, {}, "level"),
        ({"ts": datetime(2026, 11, 22, 8, 0)}, {}, "ts"),
        ({"source_id": "A 77"}, {}, "source_id"),
        ({"source_id": "A,77"}, {}, "source_id"),
        ({"lat": 95.0}, {}, "lat"),
        ({"radius_m": -5.0}, {}, "radius_m"),
        ({"title": ""}, {}, "title"),
        ({}, {"msg_type": "Cancel"}, "references"),
        ({}, {"references": "x,y,z"}, "references"),
        ({}, {"msg_type": "Ack"}, "msg_type"),
    ],
)
def test_cap_refuses_malformed_alerts(change, kwargs, field):
    with pytest.raises(InputError) as refused:
        alert_to_cap({**ALERT, **change}, **kwargs)
    assert refused.value.code == "bad_alert"
    assert refused.value.params["field"] == field
