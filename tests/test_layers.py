"""The layering rules of DESIGN §3, checked on the source (an AST scan, not a grep)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _files(folder: str) -> list[Path]:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}/"
    return files


def _violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in _files(folder):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)} imports {name}")
    return out


def test_pages_do_not_touch_the_store_or_the_models():
    assert _violations("pages", ("sqlalchemy", "hub.store", "hub.models")) == []


def test_app_does_not_touch_the_store_or_the_models():
    bad = [
        n
        for n in _imports(ROOT / "app.py")
        if n.startswith(("sqlalchemy", "hub.store", "hub.models"))
    ]
    assert bad == []


def test_geo_knows_nothing_of_hub_or_streamlit():
    assert _violations("geo", ("hub", "streamlit", "ui", "sqlalchemy")) == []


def test_hub_knows_nothing_of_streamlit():
    assert _violations("hub", ("streamlit", "ui", "pages")) == []


def test_ui_does_not_touch_the_store_or_the_models():
    assert _violations("ui", ("sqlalchemy", "hub.models")) == []


@pytest.mark.parametrize(
    "source", ["import sqlalchemy", "from hub.models import Incident", "from hub import models"]
)
def test_the_scan_catches_forbidden_imports(tmp_path, source):
    page = tmp_path / "bad.py"
    page.write_text(source + "\n", encoding="utf-8")
    names = _imports(page)
    assert any(n.startswith(("sqlalchemy", "hub.models")) for n in names)
