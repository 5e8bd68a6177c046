"""One language and one clock on the command line (issue 16 item 2): `python -m hub …` speaks
Chinese by default and English completely (HUB_LANG or --lang), with times in Asia/Shanghai
and the zone named. The main commands run in Chinese on a copy of the small demo store and
fail on English words, raw codes, snake_case identifiers and UTC times (the `offences`
checker of tests/test_language.py), outside what a person types: command and option names,
environment variables, file and spec names, account names."""

from __future__ import annotations

import ast
import re
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from hub import analytics
from hub.cli import main as cli
from hub.cli_text import CATALOGUE, LANGS
from tests.conftest import ANCHOR, ROOT
from tests.security_support import principal, seeded_copy
from tests.test_language import offences

HEFEI = ROOT / "data" / "samples" / "hefei_incidents_gbk.csv"
INGEST = ["ingest", "--city", "340100", "--dataset", "incidents", "--spec", "hefei_incidents_gbk"]

# What a person types, shown as typed: option names, {choice,lists}, METAVARS and HUB_ENV
# variables, `commands` and paths, file and spec names, the commands' own names.
_TYPED = [
    re.compile(r"^用法：.*(?:\n[ \t]+.*)*", re.MULTILINE),  # the usage synopsis
    re.compile(r"python -m hub\b[\w .:-]*"),
    re.compile(r"(?<![\w-])--?[a-z][a-z-]*"),
    re.compile(r"'[^'\n]*'"),  # a value the person typed, or the choices offered
    re.compile(r"(?<=参数 )\S+"),  # an argument's name, as in the usage
    re.compile(r"\b[0-9a-f]{16,}\b"),  # digests and key ids
    re.compile(r"^  [a-z][\w-]*(?= )", re.MULTILINE),  # a positional's name in the help
    re.compile(r"\b(?:PostgreSQL|SQLite|JSON Schema|JSON Lines|NATS JetStream)\b"),  # proper nouns
    re.compile(r"\{[^}]*\}"),
    re.compile(r"\b[A-Z][A-Z0-9_]{2,}\b(?:=\w+)?"),
    re.compile(r"`[^`]*`"),
    re.compile(r"[\w./-]*\.(?:csv|toml|json|xlsx|db|pem|pub)\b"),
    re.compile(r"\b(?:data|tmp)/\S*"),
    re.compile(r"\bhefei_incidents_gbk\b|\bborder_crash\b|\bdemo-\d\b|\bsqlite\b"),
]
_COMMANDS = {"init", "demo", "users", "audit", "keys", "watermark", "bench", "ingest", "feeds",
             "standard", "retention", "maintain", "alerts", "exercise", "stream", "bus", "live",
             "verify", "anchor", "keygen"}  # fmt: skip


def _typed_removed(text: str) -> str:
    for pattern in _TYPED:
        text = pattern.sub(" ", text)
    return " ".join(w for w in text.split(" ") if w not in _COMMANDS)


def _zh_offences(text: str, *, help_text: bool = False) -> list[str]:
    shown = _typed_removed(text)
    if help_text:  # the input format of --anchor and --now: the person types a UTC time
        shown = shown.replace("UTC", "")
    return offences(shown.splitlines(), "zh")


@pytest.fixture
def store(tmp_path_factory, monkeypatch):
    monkeypatch.delenv("HUB_LANG", raising=False)
    engine = seeded_copy("sqlite", tmp_path_factory)
    yield engine
    engine.dispose()


def _run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = cli(list(args))
    except SystemExit as exc:  # argparse refuses the arguments
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _export_file(engine, tmp_path) -> Path:
    from hub.service import Hub
    from hub.settings import load_settings

    hub = Hub(engine, load_settings())
    month = analytics.ExploreQuery(ANCHOR - timedelta(days=30), ANCHOR, rows=("city",))
    f = hub.export_exploration(principal(engine, "analyst"), month, "csv", now=ANCHOR)
    path = tmp_path / f.filename
    path.write_bytes(f.data)
    return path


def test_the_main_commands_speak_chinese_with_local_times(store, tmp_path, capsys):
    db = store.url.render_as_string(hide_password=False)
    edited = tmp_path / "edited.csv"
    lines = HEFEI.read_bytes().decode("gbk").splitlines()
    lines[1] = lines[1].replace("盗窃", "抢夺")  # rejected: a type the spec does not map
    lines[2] = lines[2].replace("诈骗", "盗窃")  # an update of a code value
    edited.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    leaked = _export_file(store, tmp_path)
    runs = [
        ("init",),
        ("users", "list"),
        ("users", "lock", "nobody"),
        ("demo", "--if-empty", "--quiet"),
        ("keys", "status"),
        ("audit", "verify"),
        ("retention", "apply", "--dry-run"),
        ("maintain",),
        ("alerts", "escalate"),
        ("exercise", "list"),
        ("exercise", "run"),
        ("standard", "export", "--out", str(tmp_path / "standard.json")),
        ("watermark", "identify", str(leaked)),
        ("watermark", "identify", str(HEFEI)),
        (*INGEST, str(HEFEI)),
        (*INGEST, "--dry-run", str(edited)),
        (*INGEST, str(edited)),
        (
            "ingest",
            "--city",
            "340100",
            "--dataset",
            "persons",
            "--spec",
            "hefei_incidents_gbk",
            str(HEFEI),
        ),  # fmt: skip
        ("feeds", "list", "--city", "340100", "--limit", "5"),
        ("feeds", "scorecard"),
        ("feeds", "rollback", "999999"),
        ("users", "nonsense"),
    ]
    seen: dict[tuple, tuple[int, str, str]] = {}
    for args in runs:
        seen[args] = _run(capsys, *args, "--db", db)
    batch = re.search(r"批次 (\d+)（", seen[(*INGEST, str(edited))][1]).group(1)
    for args in (("feeds", "show", batch), ("feeds", "rejects", batch),
                 ("feeds", "rollback", batch)):  # fmt: skip
        seen[args] = _run(capsys, *args, "--db", db)

    # `feeds show` ends with the batch's mapping spec, a file as the city wrote it
    out, err = seen[("feeds", "show", batch)][1:]
    spec_at = out.index("映射规范:\n")
    seen[("feeds", "show", batch)] = (0, out[:spec_at], err)
    bad = []
    for args, (_, out, err) in seen.items():
        for hit in _zh_offences(out + "\n" + err):
            bad.append(f"hub {' '.join(args[:3])}: {hit}")
    assert not bad, "\n".join(bad)

    # what each says, in Chinese, times in Asia/Shanghai with the zone named
    assert seen[("users", "lock", "nobody")][2] == "错误：用户不存在。\n"
    assert seen[("demo", "--if-empty", "--quiet")][1] == "库中已有记录：不灌入演示数据\n"
    assert seen[("audit", "verify")][1].startswith("审计链完整：已校验 ")
    assert "接入时间（北京时间）" in seen[("feeds", "list", "--city", "340100", "--limit", "5")][1]
    identified = seen[("watermark", "identify", str(leaked))][1]
    local = ANCHOR.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert f"于 {local:%Y-%m-%d %H:%M}（北京时间）导出" in identified, identified
    assert "（数据分析员，合肥市）" in identified
    assert seen[("watermark", "identify", str(HEFEI))][0] == 1
    refused = seen[("users", "nonsense")]
    assert refused[0] == 2 and "错误：参数 action 的取值 'nonsense' 无效" in refused[2], refused
    shown = seen[("feeds", "show", batch)][1]
    assert "接入时间: " in shown and "（北京时间）" in shown, shown
    assert "+00:00" not in "".join(o + e for _, o, e in seen.values())


def test_help_is_chinese_by_default_and_english_on_request(capsys, monkeypatch):
    monkeypatch.delenv("HUB_LANG", raising=False)
    helps = {}
    for args in (["--help"], ["users", "--help"], ["ingest", "--help"], ["feeds", "--help"],
                 ["demo", "--help"], ["audit", "--help"], ["alerts", "--help"],
                 ["stream", "--help"], ["bus", "--help"], ["live", "--help"],
                 ["maintain", "--help"]):  # fmt: skip
        with pytest.raises(SystemExit) as done:
            cli(args)
        assert done.value.code == 0
        helps[args[0]] = capsys.readouterr().out
    assert helps["--help"].startswith("用法：python -m hub")
    assert "显示本帮助并退出" in helps["--help"] and "管理用户账号" in helps["--help"]
    bad = [f"{k}: {hit}" for k, text in helps.items()
           for hit in _zh_offences(text, help_text=True)]  # fmt: skip
    assert not bad, "\n".join(bad)
    with pytest.raises(SystemExit):
        cli(["--lang", "en", "users", "--help"])
    english = capsys.readouterr().out
    assert english.startswith("usage: python -m hub users") and "display name" in english
    monkeypatch.setenv("HUB_LANG", "en")
    with pytest.raises(SystemExit):
        cli(["--help"])
    assert "manage user accounts" in capsys.readouterr().out


def test_the_language_setting(capsys, monkeypatch, tmp_path):
    out = tmp_path / "s.json"
    monkeypatch.setenv("HUB_LANG", "en")
    assert cli(["standard", "export", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"standard written to {out}\n"
    # --lang wins over HUB_LANG, before or after the command
    assert cli(["standard", "export", "--out", str(out), "--lang", "zh"]) == 0
    assert capsys.readouterr().out == f"数据标准已写入 {out}\n"
    monkeypatch.setenv("HUB_LANG", "zh_CN.UTF-8")
    assert cli(["standard", "export", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("数据标准已写入")
    monkeypatch.setenv("HUB_LANG", "fr")  # misspelt: refused by name, in both languages
    assert cli(["standard", "export", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'fr'" in err and "zh（中文）" in err and "en (English)" in err
    # the JSON export is the same in either language: machine-readable output is not translated
    monkeypatch.delenv("HUB_LANG")
    assert cli(["standard", "export", "--out", str(out)]) == 0
    zh = out.read_text(encoding="utf-8")
    assert cli(["standard", "export", "--out", str(out), "--lang", "en"]) == 0
    assert out.read_text(encoding="utf-8") == zh


# --- the catalogue --------------------------------------------------------------------------


def _catalogue() -> dict[str, dict[str, str]]:
    with CATALOGUE.open("rb") as fh:
        return tomllib.load(fh)


def test_every_string_has_both_languages_and_the_same_placeholders():
    fields = re.compile(r"\{(\w+)")
    for key, entry in _catalogue().items():
        assert set(entry) == set(LANGS), key
        assert set(fields.findall(entry["zh"])) == set(fields.findall(entry["en"])), key


def test_codes_the_pages_name_the_command_line_names_too():
    """The command line shows the same codes as the pages (refusals, reject reasons,
    roles, datasets, fields, actions, audit findings); the hub cannot read the pages'
    catalogue (layers point down), so the two are kept in step here."""
    with (ROOT / "ui" / "strings.toml").open("rb") as fh:
        pages = tomllib.load(fh)
    families = ("err_", "rej_", "role_", "dataset_", "field_", "action_", "finding_")
    missing = sorted(k for k in pages if k.startswith(families) and k not in _catalogue())
    assert not missing, missing


# Refusals raised only on pages' paths that no command reaches; shown there as err_generic.
_WEB_ONLY = {"assist_own_city", "bad_window", "no_vehicle_record"}


def test_every_refusal_the_hub_raises_has_a_sentence():
    codes: dict[str, str] = {}
    for path in (ROOT / "hub").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            first = node.args[0]
            if (name.endswith("Error") and name != "ValueError" or name == "SessionEnded") and (
                isinstance(first, ast.Constant) and isinstance(first.value, str)
                and re.fullmatch(r"[a-z][a-z0-9_]+", first.value)
            ):  # fmt: skip
                codes.setdefault(first.value, str(path.relative_to(ROOT)))
    missing = {c: where for c, where in codes.items()
               if f"err_{c}" not in _catalogue() and c not in _WEB_ONLY}  # fmt: skip
    assert not missing, missing
