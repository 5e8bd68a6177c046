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


def test_a_load_that_rebuilds_keys_leaves_the_table_definition_whole(
    empty_url, backend, tmp_path
) -> None:
    """Dropping and adding a table's foreign keys for a load must not change the shared
    table definition: a store created afterwards in the same process (a test session, a
    bench making scratch stores) still gets its foreign keys."""
    from sqlalchemy import ForeignKey, inspect

    from tests.conftest import new_database_url

    meta = MetaData()
    parent = Table("bulk_parent", meta, Column("id", Integer, primary_key=True))
    child = Table(
        "bulk_child", meta, Column("id", Integer, primary_key=True),
        Column("parent_id", Integer, ForeignKey("bulk_parent.id", name="fk_child_parent")),
    )  # fmt: skip
    engine = make_engine(empty_url)
    meta.create_all(engine)
    bulk_insert(engine, parent, [pd.DataFrame({"id": [1, 2]})])
    rows = pd.DataFrame({"id": [1, 2, 3], "parent_id": [1, 2, 2]})
    assert bulk_insert(engine, child, [rows], rebuild_indexes=True) == 3
    engine.dispose()
    later = make_engine(new_database_url(backend, tmp_path))
    meta.create_all(later)
    keys = inspect(later).get_foreign_keys("bulk_child")
    later.dispose()
    assert [k["referred_table"] for k in keys] == ["bulk_parent"]


def test_plain_columns_read_back_the_same_by_the_columnar_path(empty_url) -> None:
    """Text without characters COPY escapes, NULLs, microsecond times, full-precision
    floats and nullable integers: on PostgreSQL these go the columnar (Arrow) way, which
    must store exactly what the value-by-value way stores."""
    plain = ["plain", "合肥市蜀山区", "", "semi;colon", "comma,here", "end"]
    k = len(plain)
    given = _frame().iloc[:k].assign(name=plain, note=[None, *plain[1:]])
    given = given.drop(columns=["blob", "flag", "day"])
    engine = make_engine(empty_url)
    META.create_all(engine)
    with engine.begin() as conn:
        assert write_frame(conn, ODD, given) == k
    got = _read(engine)
    engine.dispose()
    assert got["name"] == plain and got["note"] == [None, *plain[1:]]
    at = [None if t is None else t.astimezone(UTC) for t in got["at"]]
    assert at == [None if t is pd.NaT else t.to_pydatetime() for t in given["at"]]
    x = np.array([np.nan if v is None else v for v in got["x"]], dtype=float)
    assert np.array_equal(x, given["x"], equal_nan=True), "bit for bit"
    assert [None if v is None else int(v) for v in got["n"]] == [
        None if v is pd.NA else int(v) for v in given["n"]
    ]


def test_slices_of_an_arrow_backed_column_escape_exactly_what_they_hold(empty_url) -> None:
    """A load is sent in slices (`hub.bulk.COPY_ROWS`); an Arrow-backed text column's
    slices share the whole column's characters. A slice whose own values hold a backslash
    or a tab must be escaped however far into the column it lies."""
    from hub import bulk

    n = 3 * bulk.COPY_ROWS
    names = pd.Series([f"name {i}" for i in range(n)], dtype="string[pyarrow]")
    # A backslash is the character Arrow's writer lets through and COPY would eat.
    odd = {2 * bulk.COPY_ROWS - 1: "back\\slash", 2 * bulk.COPY_ROWS + 5: "tab\there"}
    for i, text in odd.items():
        names[i] = text
    given = pd.DataFrame({"id": np.arange(1, n + 1), "name": names})
    engine = make_engine(empty_url)
    META.create_all(engine)
    with engine.begin() as conn:
        assert write_frame(conn, ODD, given) == n
    got = _read(engine)["name"]
    engine.dispose()
    assert got == names.tolist()
    assert [got[i] for i in odd] == list(odd.values())
