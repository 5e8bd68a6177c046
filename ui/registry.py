"""The page registry: app.py builds navigation from it and the tests walk it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PageSpec:
    key: str  # also the URL path
    file: str  # relative to the repository root
    title_key: str  # i18n key
    icon: str

    @property
    def path(self) -> Path:
        return ROOT / self.file


PAGES: tuple[PageSpec, ...] = (
    PageSpec("province", "pages/province.py", "page_province", ":material/map:"),
)
