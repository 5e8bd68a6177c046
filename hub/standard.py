"""The published standard: a JSON Schema of every entity plus the code tables, generated
from the models and `data/codes.toml` so it cannot drift from what the store holds."""

from __future__ import annotations

import json

from sqlalchemy import Boolean, Date, Float, Integer, LargeBinary, SmallInteger, String, Text

from hub import models as m
from hub.codes import code_tables
from hub.ingest.datasets import DATASETS

SCHEMA_ID = "https://hub.example/standard/v1"
# Encrypted identifiers are never exchanged as stored: a feed sends the clear value
# (the `id_number`, `phone`, `caller_phone` fields) and the hub encrypts it.
_INTERNAL = {"id_enc", "id_bidx", "phone_enc", "phone_bidx", "caller_phone_enc",
             "caller_phone_bidx", "key_id"}  # fmt: skip
_CODE_FIELDS = {
    "classification": "classification", "type_code": "incident_type", "severity": "severity",
    "case_type": "case_type",
}  # fmt: skip
_TABLE_CODES = {("cameras", "kind"): "camera_kind", ("units", "kind"): "unit_kind",
                ("units", "status"): "unit_status", ("help_requests", "kind"): "help_kind",
                ("risk_zones", "level"): "risk_level"}  # fmt: skip


def _json_type(column) -> dict:
    t = column.type
    if isinstance(t, m.UTCDateTime):
        return {"type": "string", "format": "date-time"}
    if isinstance(t, Date):
        return {"type": "string", "format": "date"}
    if isinstance(t, Boolean):
        return {"type": "boolean"}
    if isinstance(t, Integer | SmallInteger):
        return {"type": "integer"}
    if isinstance(t, Float):
        return {"type": "number"}
    if isinstance(t, LargeBinary):
        return {"type": "string", "contentEncoding": "base64"}
    if isinstance(t, String) and t.length:
        return {"type": "string", "maxLength": t.length}
    if isinstance(t, Text | String):
        return {"type": "string"}
    return {}


def entity_schema(model: type[m.Base]) -> dict:
    """JSON Schema (2020-12) of one entity of the standard."""
    table = model.__table__
    props, required = {}, []
    for col in table.columns:
        if col.name in _INTERNAL:
            continue
        prop = _json_type(col)
        if col.doc:
            prop["description"] = col.doc
        table_code = _TABLE_CODES.get((table.name, col.name)) or _CODE_FIELDS.get(col.name)
        if table_code in code_tables():
            values = [c.code for c in code_tables()[table_code]]
            prop["enum"] = [int(v) for v in values] if prop.get("type") == "integer" else values
            prop["x-code-table"] = table_code
        if col.foreign_keys:
            prop["x-references"] = ", ".join(sorted(fk.target_fullname for fk in col.foreign_keys))
        props[col.name] = prop
        if not col.nullable and col.default is None and not col.primary_key:
            required.append(col.name)
    ds = DATASETS.get(table.name)
    if ds is not None:  # what a city must send: the feed's required fields (the hub fills the rest)
        required = [name for name in required if name in ds.required or name == "source_id"]
    if ds is not None:  # clear-text identifiers a feed sends instead of the stored form
        for f in ds.fields.values():
            if f.check in ("id_number", "phone") or f.name == "camera":
                props[f.name] = {"type": "string", "maxLength": f.max_len or 64,
                                 "description": f.doc, "x-feed-only": True}  # fmt: skip
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID}/{table.name}.json",
        "title": table.name,
        "description": (model.__doc__ or "").strip().splitlines()[0]
        if model.__doc__
        else table.name,
        "type": "object",
        "properties": props,
        "required": required,
    }
    uniques = [ix for ix in table.indexes if ix.unique]
    if uniques:
        # A record is identified by its city and source id; the store's unique index also
        # carries the time where the table is partitioned by day (PostgreSQL needs the
        # partition key in it), which is storage, not identity.
        key = [c.name for c in uniques[0].columns]
        schema["x-natural-key"] = key[:-1] if key[-2:] == ["source_id", "ts"] else key
    return schema


def standard() -> dict:
    """The whole standard: every record entity, the feed batch, and the code tables."""
    entities = {mdl.__tablename__: entity_schema(mdl) for mdl in (*m.RECORD_MODELS, m.FeedBatch)}
    tables = {
        name: [{"code": c.code, "zh": c.zh, "en": c.en} for c in entries]
        for name, entries in code_tables().items()
    }
    return {
        "$id": f"{SCHEMA_ID}/standard.json",
        "title": "Provincial public-safety data standard",
        "conventions": {
            "city_code": "GB/T 2260 adcode of the owning city (the distribution key)",
            "timestamps": "UTC, ISO 8601 with zone; shown in Asia/Shanghai",
            "coordinates": "WGS84 longitude/latitude (feeds may send GCJ-02 or BD-09; "
            "the hub converts; CGCS2000 is taken as WGS84)",
            "natural_key": "(city_code, source_id): re-sending a record updates it",
            "personal_identifiers": "sent in clear over the feed, stored SM4-encrypted "
            "with a keyed blind index",
        },
        "entities": entities,
        "code_tables": tables,
        "message_bus": message_contract(),
    }


def message_contract() -> dict:
    """How a city's systems stream records to the hub over NATS JetStream."""
    from hub.live import bus

    return {
        "transport": "NATS JetStream (any NATS client library)",
        "stream": bus.STREAM,
        "subject": f"{bus.FEED_PREFIX}.<adcode>.<dataset>",
        "payload": "one UTF-8 JSON object per message; keys are the entity's field names "
        "(source_id is the natural key; times ISO 8601 with zone; WGS84)",
        "datasets": {
            ds: {
                "subject": f"{bus.FEED_PREFIX}.<adcode>.{ds}",
                "schema": f"#/entities/{ds}",
                "spec": f"stream_{ds}",
            }
            for ds in bus.STREAM_DATASETS
        },  # fmt: skip
        "deduplication_header": "Nats-Msg-Id",
        "message_id": "<adcode>:<dataset>:<source_id>",
        "duplicate_window_seconds": bus.DUPLICATE_WINDOW_S,
        "redelivery": "re-sending a record with the same source_id changes nothing unless "
        "its content changed (then it is updated)",
        "acknowledgement": "wait for the JetStream publish ack; on a timeout re-send with "
        "the same Nats-Msg-Id",
        "credentials": {
            "user": "city-<adcode>",
            "publish": f"{bus.FEED_PREFIX}.<adcode>.> only (the server refuses other subjects)",
            "inbox_prefix": "_INBOX_<adcode> (set it in the client for publish acks)",
            "issued_by": "the hub's operator (python -m hub bus credentials --city ADCODE)",
        },
        "max_message_bytes": 64 << 10,
        "rejects": "a record that fails validation is kept with its reasons on the Feeds page; "
        f"a message that cannot be read at all is parked after {bus.MAX_TRIES} tries",
    }


def standard_json() -> str:
    return json.dumps(standard(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"
