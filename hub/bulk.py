"""Bulk loading of DataFrames into the store: multi-row INSERT on SQLite, COPY on
PostgreSQL.

`DataFrame.to_sql` builds one Python object per cell and goes through the ORM's type
machinery; at 10M sightings that is many minutes. Here each column is converted once,
as a whole, into what the driver takes; SQLite gets many rows per statement and
PostgreSQL one COPY in text form, built column by column. Indexes of a large load are
built once at the end instead of being maintained row by row.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Column, Connection, Engine, Table
from sqlalchemy.schema import AddConstraint, DropConstraint

from hub import partitions
from hub.models import UTCDateTime

CHUNK = 200_000
COPY_ROWS = 10_000  # rows per slice of a PostgreSQL COPY
Progress = Callable[[int], None]
_SQLITE_MAX_VARIABLES = 32_766

# PostgreSQL's COPY text format: one line a row, fields split by tabs, \N for NULL, and
# backslash escapes for the four characters that would break a line or a field.
_PG_NULL = "\\N"
_PG_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_PG_SPECIAL = ("\\", "\t", "\n", "\r")
_ARROW_COPY = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")


def _pg_value(v) -> str:
    """One value of an object column in COPY text form."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return _PG_NULL
    if isinstance(v, str):
        return v.translate(_PG_ESCAPES)
    if isinstance(v, bytes | bytearray | memoryview):
        return "\\\\x" + bytes(v).hex()  # bytea hex input; the backslash escaped for COPY
    if isinstance(v, bool | np.bool_):
        return "t" if v else "f"
    if isinstance(v, datetime):
        if v.tzinfo is None:
            raise ValueError("naive timestamps refused, give UTC")
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def _utc_us(series: pd.Series, column: Column) -> np.ndarray:
    """A timestamp column as naive UTC datetime64[us]; naive input is refused."""
    if series.dt.tz is None:
        raise ValueError(f"{column.name}: naive timestamps refused, give UTC")
    return series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def _pg_text(series: pd.Series, column: Column) -> np.ndarray:
    """A column as COPY text fields, vectorised where the type allows."""
    if isinstance(column.type, UTCDateTime):
        naive = _utc_us(series, column)
        out = np.char.add(np.datetime_as_string(naive, unit="us"), "+00").astype(object)
        out[np.isnat(naive)] = _PG_NULL
        return out
    kind = series.dtype.kind
    if kind in "biu" and series.isna().any():  # nullable integers or booleans with gaps
        kind = "O"
    if kind == "b":
        return np.where(series.to_numpy(dtype=bool), "t", "f").astype(object)
    if kind in "iu":
        return series.to_numpy(dtype=np.int64).astype(str).astype(object)
    if kind == "f":
        values = series.to_numpy()
        out = values.astype(str).astype(object)  # shortest text that reads back the same
        out[np.isnan(values)] = _PG_NULL
        return out
    values = series.to_numpy(dtype=object, na_value=None)
    if all(type(v) is str or v is None for v in values):
        joined = "".join(v for v in values if v is not None)
        if any(c in joined for c in _PG_SPECIAL):
            return np.array([_pg_value(v) for v in values], dtype=object)
        out = values.copy()
        out[np.equal(values, None)] = _PG_NULL
        return out
    return np.array([_pg_value(v) for v in values], dtype=object)


_SPECIAL_BYTES = re.compile(rb"[\\\t\n\r]")  # a value with one of these takes the Python path


def _pg_arrow_column(series: pd.Series, column: Column) -> pa.Array | None:
    """A column as COPY text built by Arrow (no Python per value), or None when only the
    Python path (`_pg_text`) can write it: booleans, bytes, dates, mixed objects, text
    holding a character COPY escapes."""
    if isinstance(column.type, UTCDateTime):
        stamps = pa.array(_utc_us(series, column))  # NaT -> null
        # "2026-11-22 13:05:00.123456+00" (a cast writes what strftime would, 9x faster)
        return pc.binary_join_element_wise(pc.cast(stamps, pa.string()), "+00", "")
    if isinstance(series.dtype, pd.core.arrays.masked.BaseMaskedDtype):  # Int64, boolean…
        kind = series.dtype.kind
        return pa.array(series.array).cast(pa.string()) if kind in "iu" else None
    kind = series.dtype.kind
    if kind in "iuf":
        return pa.array(series.to_numpy(), from_pandas=True).cast(pa.string())  # NaN: null
    if kind == "b" or not (kind == "O" or isinstance(series.dtype, pd.StringDtype)):
        return None
    try:
        text = pa.array(series, from_pandas=True, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if _has_special(text):
        return None
    return text


def _has_special(text: pa.Array | pa.ChunkedArray) -> bool:
    """Whether any value of a string array holds a character COPY escapes: a byte search
    of the array's character data (a regular expression over every value took most of a
    load's time)."""
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    for chunk in chunks:
        _, offsets, data = chunk.buffers()
        if data is None or not len(chunk):
            continue
        # Only this array's characters: a slice (an Arrow-backed column of a frame cut in
        # parts) shares the whole column's buffer.
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        ends = np.frombuffer(offsets, dtype=width)
        start, end = int(ends[chunk.offset]), int(ends[chunk.offset + len(chunk)])
        if _SPECIAL_BYTES.search(memoryview(data)[start:end]) is not None:
            return True
    return False


def _pg_body(table: Table, df: pd.DataFrame) -> bytes:
    """Rows of `df` as COPY text: Arrow writes the columns it can (tab-separated, \\N
    for NULL); any other column, or a value Arrow will not write unquoted, falls back to
    the Python path for the whole slice."""
    names = list(df.columns)
    columns = [_pg_arrow_column(df[n], table.c[n]) for n in names]
    if all(c is not None for c in columns):
        body = io.BytesIO()
        data = pa.table([pc.fill_null(c, _PG_NULL) for c in columns], names=names)
        try:
            pacsv.write_csv(data, body, _ARROW_COPY)
            return body.getvalue()
        except pa.ArrowInvalid:  # a quote in a value: Arrow would have to quote it
            pass
    fields = [_pg_text(df[n], table.c[n]) for n in names]
    return ("\n".join(map("\t".join, zip(*fields, strict=True))) + "\n").encode()


def _pg_copy(raw, table: Table, df: pd.DataFrame) -> None:
    """COPY … FROM STDIN in text form, built column by column: psycopg's `write_row` turns
    every value into bytes in Python, a dozen microseconds a row. Sent in slices of
    `COPY_ROWS`: the server parses and stores one while the next is built here."""
    names = list(df.columns)
    columns = ", ".join(f'"{n}"' for n in names)
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        for start in range(0, len(df), COPY_ROWS):
            copy.write(_pg_body(table, df.iloc[start : start + COPY_ROWS]))


def _sqlite_ts(naive: np.ndarray) -> list[str | None]:
    """Naive UTC datetime64[us] as the text SQLAlchemy's SQLite dialect stores."""
    if len(naive) and (naive == naive[0]).all():  # one time for all rows (created_at)
        return _ts_text(naive[:1]) * len(naive)
    out = _ts_text(naive)
    missing = np.isnat(naive)
    if missing.any():
        out = [None if m else v for v, m in zip(out, missing.tolist(), strict=True)]
    return out


def _ts_text(naive: np.ndarray) -> list[str]:
    text = np.datetime_as_string(naive, unit="us")  # 2026-11-22T13:05:00.000000
    chars = text.astype("U26").view(np.uint32).reshape(len(text), 26)
    chars[:, 10] = ord(" ")  # the dialect separates date and time with a space
    return chars.view("U26").ravel().tolist()


def _column_values(series: pd.Series, column: Column) -> list:
    """A column as the values the SQLite driver binds."""
    if isinstance(column.type, UTCDateTime):
        return _sqlite_ts(_utc_us(series, column))
    if series.dtype.kind in "iufb" and not series.isna().any():
        return series.to_numpy().tolist()
    return series.to_numpy(dtype=object, na_value=None).tolist()


def _columns(df: pd.DataFrame, table: Table) -> list[list]:
    return [_column_values(df[name], table.c[name]) for name in df.columns]


def bulk_insert(
    engine: Engine,
    table: Table,
    frames: Iterable[pd.DataFrame],
    *,
    rebuild_indexes: bool = False,
    progress: Progress | None = None,
) -> int:
    """Append DataFrames to `table` in one transaction; returns the rows written.

    Parameters
    ----------
    engine
        SQLite or PostgreSQL engine.
    table
        Target table; DataFrame columns must be table column names.
    frames
        DataFrames (or a generator of them) to insert in order.
    rebuild_indexes
        Drop the table's indexes first and create them after the load; worth it for
        millions of rows into a table that is empty or small.
    progress
        Called with the number of rows just written, after each chunk.
    """
    total = 0
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        if sqlite:
            # Checked once for the whole load below instead of four lookups per row.
            # The pragma only takes effect outside a transaction: pysqlite has not
            # begun one yet, as nothing has been written on this connection.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        indexes = sorted(table.indexes, key=lambda ix: ix.name) if rebuild_indexes else []
        for ix in indexes:
            ix.drop(conn, checkfirst=True)
        # PostgreSQL checks a foreign key with a trigger per row; dropping the keys and
        # adding them back validates the whole load in one join each (as pg_restore does).
        fks = (
            sorted(table.foreign_key_constraints, key=lambda fk: fk.name)
            if rebuild_indexes and not sqlite
            else []
        )
        for fk in fks:
            conn.execute(DropConstraint(fk))
        for df in frames:
            for start in range(0, len(df), CHUNK):
                chunk = df.iloc[start : start + CHUNK]
                total += write_frame(conn, table, chunk)
                if progress:
                    progress(len(chunk))
        if indexes:
            before_index_build(conn)
        for ix in indexes:
            ix.create(conn)
        for fk in fks:
            conn.execute(AddConstraint(fk, isolate_from_table=False))
        if sqlite:
            _check_foreign_keys(conn, table)
    if sqlite:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    return total


class BulkLoadError(Exception):
    """A bulk load broke a constraint; nothing of it was kept."""


def _check_foreign_keys(conn: Connection, table: Table) -> None:
    bad = conn.exec_driver_sql(f'PRAGMA foreign_key_check("{table.name}")').fetchmany(3)
    if bad:
        refs = ", ".join(f"row {r[1]} -> {r[2]}" for r in bad)
        raise BulkLoadError(f"{table.name}: rows reference missing records ({refs})")


def before_index_build(conn: Connection) -> None:
    # Sorting is the cost of an index build: give it threads and memory for this load.
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA threads=2")
    else:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")


def write_frame(conn: Connection, table: Table, df: pd.DataFrame) -> int:
    """Append one DataFrame to `table` on the caller's connection and transaction.

    Parameters
    ----------
    conn
        A connection inside a transaction (SQLite or PostgreSQL); nothing is committed.
    table
        Target table; the DataFrame's columns must be table column names.
    df
        The rows; UTC datetimes must be timezone-aware.

    Returns
    -------
    int
        The rows written.
    """
    raw = conn.connection.driver_connection
    if not len(df):
        return 0
    if conn.dialect.name == "sqlite":
        _sqlite_insert(raw, table.name, list(df.columns), _columns(df, table))
    else:
        if table.name in partitions.PARTITIONED and "ts" in df:
            # History lands in its days, not in the DEFAULT partition.
            partitions.ensure_for_frame(conn, table.name, df["ts"])
        _pg_copy(raw, table, df)
    return len(df)


def _sqlite_insert(raw, table: str, names: list[str], columns: list[list]) -> None:
    """Many rows per INSERT: a statement per 500 rows instead of one per row (a CHECK
    with `IN (...)` builds its lookup table once per statement, so `executemany` pays it
    per row). A column with one value for all rows (the batch, the city, the load time)
    is bound once per statement as a numbered parameter that every row refers to."""
    n = len(columns[0]) if columns else 0
    if not n:
        return
    same = [c.count(c[0]) == n for c in columns]
    same[0] = same[0] and not all(same)  # at least one column varies from row to row
    constants = [c[0] for c, s in zip(columns, same, strict=True) if s]
    varying = [c for c, s in zip(columns, same, strict=True) if not s]
    width = len(varying)
    per_statement = max(1, min(500, (_SQLITE_MAX_VARIABLES - len(constants)) // width))
    head = f'INSERT INTO "{table}" ({", ".join(names)}) VALUES '
    slots, k, v = [], 0, 0  # per column: its constant's number or its offset in a row
    for s in same:
        slots.append((True, k + 1) if s else (False, v + 1))
        k, v = k + s, v + (not s)

    def statement(rows: int) -> str:
        return head + ", ".join(
            "("
            + ", ".join(f"?{c if s else len(constants) + r * width + c}" for s, c in slots)
            + ")"
            for r in range(rows)
        )

    # All rows' varying values laid out row after row, by strided slice assignment.
    flat: list = [None] * (n * width)
    for j, column in enumerate(varying):
        flat[j::width] = column
    full, step = statement(per_statement), per_statement * width
    for start in range(0, n * width, step):
        params = flat[start : start + step]
        sql = full if len(params) == step else statement(len(params) // width)
        raw.execute(sql, constants + params)


def reset_sequences(engine: Engine, tables: Iterable[Table]) -> None:
    """After COPY with explicit ids, move PostgreSQL sequences past the largest id."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for table in tables:
            if "id" not in table.c or not table.c.id.autoincrement:
                continue
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f'COALESCE((SELECT MAX(id) FROM "{table.name}"), 0) + 1, false)'
            )
