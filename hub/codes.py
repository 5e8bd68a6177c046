"""Code tables of the standard, read from `data/codes.toml`.

The TOML file is the single source: the ORM checks values against it, `init` writes
it into the `code_values` table, and the published standard lists it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache

from hub.settings import DATA_DIR

CODES_FILE = DATA_DIR / "codes.toml"


@dataclass(frozen=True)
class Code:
    """One entry of a code table."""

    table: str
    code: str
    zh: str
    en: str
    attrs: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def label(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en


@cache
def code_tables() -> dict[str, tuple[Code, ...]]:
    """Every code table, in file order."""
    with CODES_FILE.open("rb") as fh:
        raw = tomllib.load(fh)
    tables: dict[str, tuple[Code, ...]] = {}
    for table, entries in raw.items():
        tables[table] = tuple(
            Code(
                table,
                str(e["code"]),
                e["zh"],
                e["en"],
                {k: v for k, v in e.items() if k not in ("code", "zh", "en")},
            )
            for e in entries
        )
    return tables


def codes(table: str) -> tuple[Code, ...]:
    """Entries of one table; KeyError names the unknown table."""
    try:
        return code_tables()[table]
    except KeyError:
        raise KeyError(f"unknown code table {table!r}") from None


def code_values(table: str) -> tuple[str, ...]:
    return tuple(c.code for c in codes(table))


def label(table: str, code: str, lang: str = "zh") -> str:
    """Display label of a code; the code itself when it is not in the table."""
    for c in codes(table):
        if c.code == code:
            return c.label(lang)
    return code


CLASSIFICATIONS: tuple[str, ...] = code_values("classification")


def classification_rank(level: str) -> int:
    """public < internal < sensitive < secret, as 0..3."""
    return CLASSIFICATIONS.index(level)
