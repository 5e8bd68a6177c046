"""Bulk loading of DataFrames into the store: executemany on SQLite, COPY on PostgreSQL.

`DataFrame.to_sql` builds one Python object per cell and goes through the ORM's type
machinery; at 10M sightings that is minutes. Here each column is converted once, as a
whole, into what the driver takes, and secondary indexes are rebuilt after a large
load instead of being maintained row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Table

from hub.models import UTCDateTime

CHUNK = 100_000
Progress = Callable[[int], None]


def _sqlite_ts(values: pd.Series) -> list[str | None]:
    """UTC datetimes as the text SQLAlchemy's SQLite dialect stores (`SQLITE_TS_FORMAT`)."""
    arr = values.to_numpy(dtype="datetime64[us]")
    text = np.datetime_as_string(arr, unit="us")  # 2026-11-22T13:05:00.000000
    chars = text.astype("U26").view(np.uint32).reshape(len(text), 26)
    chars[:, 10] = ord(" ")  # the dialect separates date and time with a space
    out = chars.view("U26").ravel().tolist()
    if values.isna().any():
        mask = values.isna().to_numpy()
        out = [None if m else v for v, m in zip(out, mask, strict=True)]
    return out


def _column_values(series: pd.Series, column, dialect: str) -> list:
    if isinstance(column.type, UTCDateTime):
        if series.dt.tz is None:
            raise ValueError(f"{column.name}: naive timestamps refused, give UTC")
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        if dialect == "sqlite":
            return _sqlite_ts(series)
        return [None if pd.isna(v) else v.tz_localize("UTC") for v in series]
    return series.astype(object).where(series.notna(), None).tolist()


def _rows(df: pd.DataFrame, table: Table, dialect: str) -> list[tuple]:
    cols = [_column_values(df[name], table.c[name], dialect) for name in df.columns]
    return list(zip(*cols, strict=True))


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
    with engine.begin() as conn:
        indexes = sorted(table.indexes, key=lambda ix: ix.name) if rebuild_indexes else []
        for ix in indexes:
            ix.drop(conn, checkfirst=True)
        for df in frames:
            for start in range(0, len(df), CHUNK):
                chunk = df.iloc[start : start + CHUNK]
                total += _write(conn, table, chunk)
                if progress:
                    progress(len(chunk))
        for ix in indexes:
            ix.create(conn)
    return total


def _write(conn: Connection, table: Table, df: pd.DataFrame) -> int:
    dialect = conn.dialect.name
    rows = _rows(df, table, dialect)
    cols = list(df.columns)
    raw = conn.connection.driver_connection
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in cols)
        sql = f'INSERT INTO "{table.name}" ({", ".join(cols)}) VALUES ({marks})'
        raw.executemany(sql, rows)
    else:
        copy_sql = f'COPY "{table.name}" ({", ".join(cols)}) FROM STDIN'
        with raw.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
    return len(rows)


def reset_sequences(engine: Engine, tables: Iterable[Table]) -> None:
    """After COPY with explicit ids, move PostgreSQL sequences past the largest id."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for table in tables:
            if "id" not in table.c:
                continue
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f'COALESCE((SELECT MAX(id) FROM "{table.name}"), 0) + 1, false)'
            )
