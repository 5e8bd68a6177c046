"""PostgreSQL's own load of rows from outside, for the benches' floors: rows read once in
COPY text form (untimed), then handed to `COPY … FROM STDIN` (timed), so that the server
parses and stores them with no Python per row."""

from __future__ import annotations


def rows_text(engine, table: str, cols: list[str], order: str | None = None) -> bytes:
    """The stored rows of `table` in COPY text form, in `order` if given."""
    buf = bytearray()
    by = f" ORDER BY {order}" if order else ""
    query = f"COPY (SELECT {', '.join(cols)} FROM {table}{by}) TO STDOUT"  # noqa: S608 - schema names
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(query) as cp:
            for block in cp:
                buf += block
    return bytes(buf)


def copy_in(raw, table: str, cols: list[str], body: bytes) -> int:
    """`COPY table (cols) FROM STDIN` of rows already in COPY text form; the rows loaded."""
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
            cp.write(body)
        return cur.rowcount
