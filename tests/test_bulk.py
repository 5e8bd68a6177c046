"""The bulk writer reads back exactly what it was given, on SQLite and PostgreSQL: text
that would break a COPY line or field, NULL beside the empty string, bytes, booleans,
dates, microsecond times, full-precision floats and nullable integers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from hub.bulk import bulk_insert, write_frame
from hub.models import UTCDateTime
from hub.store import make_engine

META = MetaData()
ODD = Table(
    "bulk_roundtrip", META,
    Column("id", Integer, primary_key=True),
    Column("name", String(80)), Column("note", Text, nullable=True),
    Column("blob", LargeBinary, nullable=True), Column("flag", Boolean, nullable=True),
    Column("day", Date, nullable=True), Column("at", UTCDateTime, nullable=True),
    Column("x", Float, nullable=True), Column("n", BigInteger, nullable=True),
)  # fmt: skip

TEXTS = ["plain", "tab\there", "new\nline", "carriage\rreturn", "back\\slash", "\\N",
         "quote\"'", "", "合肥市蜀山区", "end\\", "\\t literal"]  # fmt: skip


def _frame() -> pd.DataFrame:
    k = len(TEXTS)
    return pd.DataFrame({
        "id": np.arange(1, k + 1),
        "name": TEXTS,
        "note": [None if i % 3 == 0 else t for i, t in enumerate(TEXTS)],
        "blob": [None if i % 4 == 0 else bytes([i, 0, 255, 92, 9]) for i in range(k)],
        "flag": [None if i % 5 == 0 else i % 2 == 0 for i in range(k)],
        "day": [None if i == 1 else date(2026, 1 + i, 28) for i in range(k)],
        "at": pd.to_datetime([None if i == 2 else datetime(2026, 11, 1, 3, 4, 5, 123456 + i, UTC)
                              for i in range(k)], utc=True),
        "x": [np.nan if i == 3 else 0.1 + i / 3 + 1e-12 for i in range(k)],
        "n": pd.array([None if i == 4 else 2**53 + i for i in range(k)], dtype="Int64"),
    })  # fmt: skip


def _read(engine) -> dict[str, list]:
    """Column -> values exactly as the driver returned them (no pandas conversion)."""
    with engine.connect() as conn:
        rows = conn.execute(select(ODD).order_by(ODD.c.id)).all()
    return {c.name: [r[i] for r in rows] for i, c in enumerate(ODD.columns)}


def test_what_is_written_reads_back_the_same(empty_url) -> None:
    engine = make_engine(empty_url)
    META.create_all(engine)
    given = _frame()
    with engine.begin() as conn:
        assert write_frame(conn, ODD, given) == len(given)
    got = _read(engine)
    engine.dispose()
    assert got["name"] == TEXTS
    notes = [None if i % 3 == 0 else t for i, t in enumerate(TEXTS)]
    assert got["note"] == notes, "NULL stays NULL, '' stays ''"
    assert [None if b is None else bytes(b) for b in got["blob"]] == given["blob"].tolist()
    assert got["flag"] == given["flag"].tolist()
    assert got["day"] == given["day"].tolist()
    at = [None if t is None else t.astimezone(UTC) for t in got["at"]]
    assert at == [None if t is pd.NaT else t.to_pydatetime() for t in given["at"]]
    x = np.array([np.nan if v is None else v for v in got["x"]], dtype=float)
    assert np.array_equal(x, given["x"], equal_nan=True), "bit for bit"
    assert [None if v is None else int(v) for v in got["n"]] == [
        None if v is pd.NA else int(v) for v in given["n"]
    ]


def test_a_large_load_rebuilds_indexes_and_keeps_every_row(empty_url) -> None:
    engine = make_engine(empty_url)
    META.create_all(engine)
    frames = [_frame().assign(id=lambda f, k=k: f["id"] + 100 * k) for k in range(3)]
    assert bulk_insert(engine, ODD, frames, rebuild_indexes=True) == 3 * len(TEXTS)
    got = _read(engine)
    engine.dispose()
    assert got["name"] == TEXTS * 3
