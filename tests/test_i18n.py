"""One catalogue: every key used in the UI exists, in both languages."""

from __future__ import annotations

import ast

import pytest

from hub.codes import code_values
from tests.conftest import ROOT
from ui.i18n import LANGUAGES, catalogue


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for path in [ROOT / "app.py", *(ROOT / "pages").rglob("*.py"), *(ROOT / "ui").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "t"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                keys.add(node.args[0].value)
    return keys


def test_every_used_key_is_in_the_catalogue():
    used = _used_keys()
    assert used, "the scan found no t() calls"
    assert sorted(used - set(catalogue())) == []


def test_every_entry_has_every_language():
    for key, entry in catalogue().items():
        assert set(entry) == set(LANGUAGES), key
        assert all(entry[lang].strip() for lang in LANGUAGES), key


def test_a_key_defined_in_two_files_is_refused(tmp_path, monkeypatch):
    import ui.i18n as i18n

    (tmp_path / "a.toml").write_text('[x_one]\nzh = "一"\nen = "one"\n', encoding="utf-8")
    (tmp_path / "b.toml").write_text('[x_one]\nzh = "壹"\nen = "One"\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "STRINGS_DIR", tmp_path)
    i18n.catalogue.cache_clear()
    try:
        with pytest.raises(ValueError, match="x_one"):
            i18n.catalogue()
    finally:
        i18n.catalogue.cache_clear()


def test_data_class_labels_exist():
    for code in code_values("data_class"):
        assert f"class_{code}" in catalogue()


def test_registry_titles_exist():
    from ui.registry import PAGES

    for spec in PAGES:
        assert spec.title_key in catalogue()
        assert spec.path.is_file()
