"""H3 cells for whole arrays at once: points to cells, cells to coarser parents, text.

The h3 library answers one cell per call; a feed of a million points or a province of
cells then spends its time in the call, not the arithmetic. The index layout is public
(https://h3geo.org/docs/core-library/h3Indexing): a 64-bit integer with the resolution
in bits 52-55 and one 3-bit digit per resolution below that, digit r at bits
3·(15 − r)…3·(15 − r) + 2, unused digits all ones (7). So a parent is a cell with a
smaller resolution field and its finer digits set to 7, which numpy does for any number
of cells in one expression. Stored cells are the library's text form: 15 lower-case hex
digits (a cell's top nibble is 0, so 16 digits never occur).
"""

from __future__ import annotations

from itertools import repeat

import h3
import numpy as np

_RES_SHIFT = np.uint64(52)
_RES_MASK = np.uint64(0xF) << _RES_SHIFT
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE = np.full(256, 255, dtype=np.uint8)
_NIBBLE[_HEX] = np.arange(16, dtype=np.uint8)
_NIBBLE[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)
_SHIFTS = np.arange(56, -1, -4, dtype=np.uint64)  # 15 nibbles, most significant first
WIDTH = 15


def from_points(lat: np.ndarray, lon: np.ndarray, resolution: int) -> np.ndarray:
    """The cell (uint64) of each point at `resolution`."""
    cell = h3.api.basic_int.latlng_to_cell
    return np.fromiter(
        map(cell, np.asarray(lat, float).tolist(), np.asarray(lon, float).tolist(),
            repeat(resolution)),
        np.uint64, len(lat),
    )  # fmt: skip


def parents(cells: np.ndarray, resolution: int) -> np.ndarray:
    """Each cell's parent at `resolution` (uint64 in, uint64 out; a cell already at or
    above `resolution` is returned as it is)."""
    cells = np.asarray(cells, dtype=np.uint64)
    own = ((cells & _RES_MASK) >> _RES_SHIFT).astype(np.int64)
    out = (cells & ~_RES_MASK) | (np.uint64(resolution) << _RES_SHIFT)
    for r in range(resolution + 1, 16):  # digits finer than the parent become 7
        shift = np.uint64(3 * (15 - r))
        out = np.where(own >= r, out | (np.uint64(7) << shift), out)
    return np.where(own > resolution, out, cells)


def to_text(cells: np.ndarray) -> np.ndarray:
    """uint64 cells as the library's 15-digit lower-case hex text."""
    cells = np.asarray(cells, dtype=np.uint64)
    nibbles = ((cells[:, None] >> _SHIFTS) & np.uint64(0xF)).astype(np.uint8)
    return _HEX[nibbles].view(f"S{WIDTH}").ravel().astype(f"U{WIDTH}")


def from_text(cells) -> np.ndarray:
    """Cells as text (15 hex digits each) to uint64.

    Raises
    ------
    ValueError
        A value that is not 15 hex digits.
    """
    text = np.asarray(cells, dtype=str)
    if len(text) == 0:
        return np.zeros(0, dtype=np.uint64)
    wrong = np.char.str_len(text) != WIDTH
    if not wrong.any():
        codes = text.astype(f"U{WIDTH}").view(np.uint32).reshape(len(text), WIDTH)
        digits = _NIBBLE[np.minimum(codes, 255)]
        wrong = (digits == 255).any(axis=1)
    if wrong.any():
        raise ValueError(f"not an H3 cell: {str(text[wrong][0])!r}")
    return (digits.astype(np.uint64) << _SHIFTS).sum(axis=1, dtype=np.uint64)


def text_parents(cells, resolution: int) -> np.ndarray:
    """Cells as text to their parents' text at `resolution`."""
    return to_text(parents(from_text(cells), resolution))
