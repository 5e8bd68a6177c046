"""Vectorised H3 cells agree with the h3 library, cell by cell."""

from __future__ import annotations

import h3
import numpy as np
import pytest

from geo import cells

RNG = np.random.default_rng(11)
LAT = RNG.uniform(29.4, 34.7, 3000)  # the province and a margin
LON = RNG.uniform(114.9, 119.7, 3000)


@pytest.mark.parametrize("res", [0, 5, 7, 8, 12, 15])
def test_points_to_cells_match_the_library(res) -> None:
    got = cells.to_text(cells.from_points(LAT, LON, res))
    want = [h3.latlng_to_cell(a, o, res) for a, o in zip(LAT, LON, strict=True)]
    assert got.tolist() == want


@pytest.mark.parametrize("res", [7, 8, 10])
def test_parents_match_the_library_at_every_coarser_resolution(res) -> None:
    text = cells.to_text(cells.from_points(LAT, LON, res))
    for parent in range(res + 1):
        want = [h3.cell_to_parent(c, parent) for c in text]
        assert cells.text_parents(text, parent).tolist() == want, parent


def test_a_cell_at_or_above_the_resolution_is_its_own_parent() -> None:
    r6 = cells.from_points(LAT[:50], LON[:50], 6)
    assert (cells.parents(r6, 6) == r6).all()
    assert (cells.parents(r6, 9) == r6).all()


def test_text_round_trips_and_accepts_upper_case() -> None:
    c = cells.from_points(LAT, LON, 9)
    assert (cells.from_text(cells.to_text(c)) == c).all()
    upper = np.char.upper(cells.to_text(c[:5]))
    assert (cells.from_text(upper) == c[:5]).all()
    assert len(cells.from_text([])) == 0


@pytest.mark.parametrize(
    "bad", ["87309610bfffff", "87309610bfffffff", "87309610bfffffg", "87309610bfffff平", ""]
)
def test_text_that_is_not_a_cell_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="not an H3 cell"):
        cells.from_text(["87309610bffffff", bad])
