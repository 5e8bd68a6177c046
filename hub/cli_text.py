"""The command line's words and clock: one language per run, Chinese by default.

The language is ``--lang zh|en`` (anywhere on the command line), else the ``HUB_LANG``
environment variable, else Chinese. Every sentence a person reads comes from
`hub/cli_strings.toml` (``[key]`` with ``zh`` and ``en``); times are shown in
Asia/Shanghai with the zone named. Machine-readable output (JSON, CSV, ``--json``) is not
translated. The hub keeps no UI strings of its own (DESIGN §3): this catalogue is the
command line's, as ``ui/strings*.toml`` is the pages'; its ``err_``, ``rej_``, ``role_``,
``dataset_``, ``field_``, ``action_`` and ``finding_`` families follow the pages' wording
(tests/test_cli_language.py keeps the code sets in step).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

CATALOGUE = Path(__file__).with_name("cli_strings.toml")
LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
ZONE = ZoneInfo("Asia/Shanghai")

_chosen: list[str] = []  # the run's --lang, set once by `choose` (hub.cli.main)


class LanguageError(ValueError):
    """HUB_LANG or --lang names a language the command line does not speak."""


@cache
def catalogue() -> dict[str, dict[str, str]]:
    with CATALOGUE.open("rb") as fh:
        return tomllib.load(fh)


def lang() -> str:
    """The run's language: --lang, else HUB_LANG, else Chinese."""
    if _chosen:
        return _chosen[-1]
    value = os.environ.get("HUB_LANG", "").strip().lower() or DEFAULT_LANG
    value = value.split("_")[0].split("-")[0]  # zh_CN.UTF-8, en-GB
    if value not in LANGS:
        raise LanguageError(value)
    return value


def choose(value: str | None) -> None:
    """Fix the language for this run (None: keep HUB_LANG or the default)."""
    _chosen.clear()
    if value is not None:
        if value not in LANGS:
            raise LanguageError(value)
        _chosen.append(value)


def lang_from_argv(argv: Sequence[str]) -> str | None:
    """``--lang X`` or ``--lang=X`` anywhere before a bare ``--``; None if absent."""
    found = None
    items = list(argv)
    for i, arg in enumerate(items):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(items):
            found = items[i + 1]
        elif arg.startswith("--lang="):
            found = arg.split("=", 1)[1]
    return found


def t(key: str, **values: object) -> str:
    """The string for `key` in the run's language; KeyError for an unknown key."""
    text = catalogue()[key][lang()]
    return text.format(**values) if values else text


def t_both(key: str, **values: object) -> str:
    """Both languages, for the one message said before the language is known (a
    misspelt HUB_LANG or --lang)."""
    entry = catalogue()[key]
    return " / ".join(entry[x].format(**values) for x in LANGS)


def has(key: str) -> bool:
    return key in catalogue()


def label(family: str, code: object) -> str:
    """A stored code as a person reads it: a code table of the standard (`purpose`,
    `incident_type` … in data/codes.toml) or a catalogue family (`role`, `dataset`,
    `field`, `action`, `status` …); a code neither knows is shown as it is."""
    if code is None or code != code:
        return "—"
    from hub.codes import code_tables

    if family in code_tables():
        entry = next((c for c in code_tables()[family] if c.code == str(code)), None)
        if entry is not None:
            return entry.label(lang())
    key = f"{family}_{code}"
    return t(key) if has(key) else str(code)


def local_time(ts: datetime, *, seconds: bool = False, zone: bool = True) -> str:
    """A stored time (UTC, or naive UTC from SQLite) as the province reads it, the zone
    named: ``2026-11-22 12:51（北京时间）`` / ``2026-11-22 12:51 (Asia/Shanghai)``."""
    if ts.tzinfo is None:
        from datetime import UTC

        ts = ts.replace(tzinfo=UTC)
    shown = ts.astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return shown + t("zone_suffix") if zone else shown


def number(n: int | float, digits: int = 0) -> str:
    return f"{n:,.{digits}f}"


_PARAM_FAMILIES = {
    "status": "fstatus", "dataset": "dataset", "table": "dataset", "role": "role", "field": "field",
}  # fmt: skip


def error_text(exc: Exception) -> str:
    """A refusal with a code (HubError, FeedError) as one sentence: ``err_<code>`` filled
    with its parameters; the generic refusal naming the code if the catalogue lacks it."""
    code = getattr(exc, "code", None)
    params = dict(getattr(exc, "params", {}) or {})
    for key, family in _PARAM_FAMILIES.items():  # codes among the parameters, by name
        if isinstance(params.get(key), str):
            params[key] = label(family, params[key])
    if code and has(f"err_{code}"):
        try:
            return t(f"err_{code}", **params)
        except (KeyError, IndexError, ValueError):
            pass
    if code:
        return t("err_generic", code=code) + ("" if lang() == "zh" else f" {exc}")
    return str(exc)


# --- argparse in the run's language ---------------------------------------------------------

# argparse's own messages (Python 3.11), each as a pattern and its catalogue key.
_ARGPARSE_ERRORS = [
    (re.compile(r"^the following arguments are required: (?P<names>.+)$"), "ap_required"),
    (
        re.compile(r"^argument (?P<arg>\S+): invalid choice: (?P<value>.+?) \(choose from (?P<choices>.+)\)$"),
        "ap_invalid_choice",
    ),
    (re.compile(r"^unrecognized arguments: (?P<names>.+)$"), "ap_unrecognized"),
    (re.compile(r"^argument (?P<arg>\S+): expected one argument$"), "ap_expected_one"),
    (re.compile(r"^argument (?P<arg>\S+): invalid (?P<type>\w+) value: (?P<value>.+)$"), "ap_invalid_value"),
    (re.compile(r"^argument (?P<arg>\S+): ignored explicit argument (?P<value>.+)$"), "ap_ignored"),
    (re.compile(r"^argument (?P<arg>\S+): not allowed with argument (?P<other>\S+)$"), "ap_not_allowed"),
]  # fmt: skip


def argparse_error(message: str) -> str:
    for pattern, key in _ARGPARSE_ERRORS:
        m = pattern.match(message)
        if m:
            return t(key, **m.groupdict())
    return t("ap_other", message=message)


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` terminal columns that break between Chinese characters and
    at spaces, never inside a Latin word (a command or option name stays whole)."""
    tokens = re.findall(r"[ \t]+|[\x21-\x7e]+|.", " ".join(text.split()))
    lines, line = [], ""
    for tok in tokens:
        if line and _width(line + tok) > width:
            lines.append(line.rstrip())
            line = "" if tok.isspace() else tok
        else:
            line += tok
    if line.strip():
        lines.append(line.rstrip())
    return lines


class Formatter(argparse.HelpFormatter):
    def _split_lines(self, text, width):
        return wrap(text, width)

    def _fill_text(self, text, width, indent):
        return "\n".join(indent + line for line in wrap(text, width))

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, prefix if prefix is not None else t("ap_usage"))


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose headings, -h help and errors are in the run's language."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", Formatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = t("ap_positionals")
        self._optionals.title = t("ap_options")
        self.add_argument("-h", "--help", action="help", help=t("ap_help"))

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: {t('error_prefix')}{argparse_error(message)}\n")
