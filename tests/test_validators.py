"""Tests for hub.validate, driven by the peer test vectors in shared/testdata/peer."""

import json
import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from hub.validate import (
    ID_PROVINCE_CODES,
    find_id_numbers,
    find_phones,
    id_birth_date,
    id_check_digit,
    id_number_problem,
    id_region,
    is_valid_id_number,
    is_valid_phone,
    is_valid_plate,
    make_id_number,
    normalize_id_number,
    normalize_phone,
    normalize_plate,
    phone_problem,
    plate_kind,
    plate_problem,
    plate_province,
    plate_without_province,
    upgrade_15_to_18,
)

# The repository sits beside shared/, which holds vectors collected from
# other projects' test suites (see SOURCES.md there).
PEER = Path(__file__).resolve().parents[2] / "shared/testdata/peer"


def _load(name: str) -> dict:
    path = PEER / name
    if not path.is_file():
        # A missing folder must fail loudly: skipping would silently drop
        # every peer vector from the suite.
        pytest.fail(
            f"peer test vectors missing: {path} (expected shared/ beside the repo)", pytrace=False
        )
    return json.loads(path.read_text(encoding="utf-8"))


IDS = _load("id_numbers.json")
PLATES = _load("plates.json")


def _ids(values: list[str]) -> list[str]:
    return [v or "<empty>" for v in values]


# ---------------------------------------------------------------------------
# ID numbers: peer vectors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", IDS["valid"], ids=_ids(IDS["valid"]))
def test_peer_valid_id(value: str) -> None:
    assert id_number_problem(value) is None
    assert id_check_digit(value[:17]) == value[17]


# Reason expected for each level the peer file uses. Where two problems are
# present, the check digit is reported first.
ID_REASON_BY_LEVEL = {
    "format": {"first 17 characters must be digits", "last character must be a digit or X"},
    "date": {"birth date is not a calendar date"},
    "checksum": {"check digit mismatch"},
    "region": {"unknown province code"},
    "length": {"length must be 18"},
    "region+checksum": {"check digit mismatch"},
    "date+checksum": {"check digit mismatch"},
    "length/legacy": {"legacy 15-digit number: birth date is not a calendar date"},
}

# Peer "invalid" entries deliberately accepted. python-stdnum rejects them
# using its historical address-code database; the hub does not check address
# codes against their dates (a number keeps its code after boundary changes),
# which is the same decision as for the jxlwqq context-dependent vectors.
ID_INVALID_ACCEPTED = {
    "110111198012010078": "county code assigned after 1980 (stdnum historical DB only)",
    "110201199312010077": "county code retired before 1993 (stdnum historical DB only)",
}


@pytest.mark.parametrize("entry", IDS["invalid"], ids=_ids([e["value"] for e in IDS["invalid"]]))
def test_peer_invalid_id(entry: dict) -> None:
    value = entry["value"]
    if value in ID_INVALID_ACCEPTED:
        assert entry["level"] == "historical-region"
        assert is_valid_id_number(value)
        return
    assert not is_valid_id_number(value)
    assert id_number_problem(value) in ID_REASON_BY_LEVEL[entry["level"]]


# Decision per context-dependent vector: (value, today, expected problem, why).
ID_CONTEXT_DECISIONS = [
    (
        "500154199301135886",
        None,
        None,
        "address-code publication dates are not checked: codes are assigned at registration",
    ),
    ("411082198901010002", None, None, "same: jxlwqq strict mode only; structurally valid"),
    (
        "110101188606248882",
        None,
        "birth date before 1886-06-25",
        "earliest birth is that of China's oldest documented resident (validid's bound)",
    ),
    (
        "110101202312128883",
        date(2023, 6, 1),
        "birth date in the future",
        "rejected while the date is in the future",
    ),
    (
        "110101202312128883",
        date(2023, 12, 12),
        None,
        "accepted from the birth date itself (registration on the day of birth)",
    ),
    ("51323120001212185x", None, None, "lower-case x is normalised to X (DataDog, python-stdnum)"),
    ("44011320141005001x", None, None, "lower-case x is normalised to X (python-stdnum)"),
]


def test_context_decisions_cover_peer_file() -> None:
    assert {v for v, *_ in ID_CONTEXT_DECISIONS} == {e["value"] for e in IDS["context_dependent"]}


@pytest.mark.parametrize(
    ("value", "today", "expected", "why"),
    ID_CONTEXT_DECISIONS,
    ids=[f"{v}@{t}" for v, t, *_ in ID_CONTEXT_DECISIONS],
)
def test_peer_context_dependent_id(
    value: str, today: date | None, expected: str | None, why: str
) -> None:
    assert id_number_problem(value, today=today) == expected, why


LEGACY_UPGRADES = {
    "610104620927690": "610104196209276908",
    "610104620932690": None,  # 1962-09-32
    "510104621927691": None,  # month 19
    "61010462092769": None,  # 14 digits: not a legacy number at all
}


def test_legacy_decisions_cover_peer_file() -> None:
    assert set(LEGACY_UPGRADES) == {e["value"] for e in IDS["legacy_15_digit"]}


@pytest.mark.parametrize("value", list(LEGACY_UPGRADES))
def test_peer_legacy_id(value: str) -> None:
    # Every 15-digit number is rejected for new records, valid or not.
    assert not is_valid_id_number(value)
    upgraded = LEGACY_UPGRADES[value]
    if upgraded is None:
        with pytest.raises(ValueError):
            upgrade_15_to_18(value)
        assert id_number_problem(value) != "legacy 15-digit number: convert to 18 digits"
    else:
        assert id_number_problem(value) == "legacy 15-digit number: convert to 18 digits"
        assert upgrade_15_to_18(value) == upgraded
        assert is_valid_id_number(upgraded)


# ---------------------------------------------------------------------------
# ID numbers: construction and accessors
# ---------------------------------------------------------------------------


def test_make_id_number_round_trip() -> None:
    rng = random.Random(11643)
    provinces = sorted(ID_PROVINCE_CODES)
    first, last = date(1886, 6, 25), date.today()
    for _ in range(1000):
        region = rng.choice(provinces) + f"{rng.randrange(10_000):04d}"
        birth = first + timedelta(days=rng.randrange((last - first).days + 1))
        seq = rng.randrange(1000)
        number = make_id_number(region, birth, seq)
        assert is_valid_id_number(number), number
        assert id_birth_date(number) == birth
        assert id_region(number) == region
        assert int(number[14:17]) == seq
        # Odd sequence number = male, even = female.
        assert int(number[16]) % 2 == seq % 2


@pytest.mark.parametrize(
    ("region", "birth", "seq"),
    [
        ("34010", date(1990, 1, 1), 1),  # 5-digit region
        ("990101", date(1990, 1, 1), 1),  # no province 99
        ("340104", date(1886, 6, 24), 1),  # before the earliest birth date
        ("340104", date.today() + timedelta(days=1), 1),  # future
        ("340104", date(1990, 1, 1), 1000),  # sequence out of range
    ],
)
def test_make_id_number_rejects(region: str, birth: date, seq: int) -> None:
    with pytest.raises(ValueError):
        make_id_number(region, birth, seq)


def test_id_accessors() -> None:
    assert id_birth_date("340104199001011239") == date(1990, 1, 1)
    assert id_region(" 44011320141005001x ") == "440113"
    with pytest.raises(ValueError, match="check digit mismatch"):
        id_birth_date("440308199901101513")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("４４０１１３２０１４１００５００１ｘ", "44011320141005001X"),
        (" 440113 20141005 001x\n", "44011320141005001X"),
        ("４４０１１３２０１４１００５００１Ｘ", "44011320141005001X"),
    ],
)
def test_normalize_id_number(raw: str, expected: str) -> None:
    assert normalize_id_number(raw) == expected
    assert is_valid_id_number(raw)


def test_id_problem_messages() -> None:
    assert id_number_problem("") == "empty"
    assert id_number_problem("  ") == "empty"
    assert id_number_problem("11010119900101000Y") == "last character must be a digit or X"


# ---------------------------------------------------------------------------
# Plates: peer vectors
# ---------------------------------------------------------------------------

PLATE_KINDS = {
    "京AD92035": "new_energy_small",
    "甘G23459F": "new_energy_large",
    "京A19203D": "new_energy_large",
    "京A12345D": "new_energy_large",
    "京A00599": "ordinary",
    "黑D23908": "ordinary",
    "粤A12345": "ordinary",
    "粤BD12345": "new_energy_small",
    "粤Z1234港": "hk_macao",
    "WJ粤12345": "armed_police",
    "WJ粤1234X": "armed_police",
    "WJ京1234X": "armed_police",
    "粤A1234领": "consulate",
    "京A12345": "ordinary",
    "沪AD12345": "new_energy_small",
    "京A1234警": "police",
    "京A1234挂": "trailer",
    "京A1234学": "coach",
    "京A1234领": "consulate",
}


def test_plate_kinds_cover_peer_file() -> None:
    assert set(PLATE_KINDS) == set(PLATES["valid"])


@pytest.mark.parametrize("value", PLATES["valid"], ids=_ids(PLATES["valid"]))
def test_peer_valid_plate(value: str) -> None:
    assert plate_problem(value) is None
    assert is_valid_plate(value)
    assert plate_kind(value) == PLATE_KINDS[value]


@pytest.mark.parametrize("value", PLATES["invalid"], ids=_ids(PLATES["invalid"]))
def test_peer_invalid_plate(value: str) -> None:
    assert not is_valid_plate(value)
    assert plate_problem(value) is not None
    assert plate_kind(value) is None


# Decision per contested vector: value -> (accepted, kind, reason).
PLATE_CONTESTED_DECISIONS = {
    "京AA92035": (True, "new_energy_small", "2022 expansion allows A after the authority letter"),
    "粤BA03205": (True, "new_energy_small", "2022 expansion allows A after the authority letter"),
    "闽20401领": (
        False,
        None,
        "consulate plates carry an authority letter and 4 serial characters",
    ),
    "使123456": (False, None, "pre-2018 embassy format, replaced by 123456使"),
    "123456使": (True, "embassy", "current embassy format: country code + serial + 使"),
    "粤12345领": (False, None, "consulate plate without an authority letter"),
    "民航12345": (False, None, "airside-only civil-aviation plate, never on public roads"),
    "NA00001": (False, None, "military plate: issued outside GA 36, no public spec to check"),
    "湘E123456": (False, None, "8 characters but neither new-energy layout"),
    "京AF0236": (True, "ordinary", "7 characters: an ordinary plate whose serial contains F"),
    "京A1234超": (
        True,
        "temporary_oversize",
        "GA 36-2018 oversize temporary plate (traffic police)",
    ),
    "京A1234试": (
        True,
        "temporary_test",
        "GA 36-2018 test-vehicle temporary plate (traffic police)",
    ),
    "京A1234练": (False, None, "练 is not a GA 36-2018 class suffix"),
}


def test_contested_decisions_cover_peer_file() -> None:
    assert set(PLATE_CONTESTED_DECISIONS) == {e["value"] for e in PLATES["contested"]}


@pytest.mark.parametrize("value", list(PLATE_CONTESTED_DECISIONS))
def test_peer_contested_plate(value: str) -> None:
    accepted, kind, reason = PLATE_CONTESTED_DECISIONS[value]
    assert is_valid_plate(value) is accepted, reason
    assert (plate_problem(value) is None) is accepted, reason
    assert plate_kind(value) == kind, reason


# ---------------------------------------------------------------------------
# Plates: normalisation and helpers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("皖A·12345", "皖A12345"),
        (" 皖 a•1234５ ", "皖A12345"),
        ("皖Ａ－ＤＦ１２３４", "皖ADF1234"),
        ("京a12345", "京A12345"),
        ("wj皖1234x", "WJ皖1234X"),
    ],
)
def test_normalize_plate(raw: str, expected: str) -> None:
    assert normalize_plate(raw) == expected
    assert is_valid_plate(expected)


def test_plate_is_checked_strictly() -> None:
    assert not is_valid_plate("皖A·12345")
    assert plate_problem("皖A·12345") == "contains spaces or separators (normalise first)"
    assert plate_problem("京a12345") == "contains lower-case letters (normalise first)"
    assert plate_problem("使123456") == "superseded embassy format: 使 now comes last"
    assert plate_problem("美A12345") == "does not start with a province abbreviation"
    assert plate_problem("京A1234567") == "length must be 7 or 8"
    # I and O never appear in serial numbers.
    assert not is_valid_plate("皖A1234O")
    assert not is_valid_plate("皖AD1I234")


@pytest.mark.parametrize(
    ("plate", "province"),
    [
        ("皖A12345", "皖"),
        ("皖SD12345", "皖"),
        ("WJ皖1234X", "皖"),
        ("123456使", None),
        ("皖A·12345", None),
    ],
)
def test_plate_province(plate: str, province: str | None) -> None:
    assert plate_province(plate) == province


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("皖A12345", "A12345"),
        ("A12345", "A12345"),
        ("a·12345", "A12345"),
        ("WJ皖1234X", "WJ1234X"),
        ("123456使", "123456使"),
    ],
)
def test_plate_without_province(raw: str, key: str) -> None:
    assert plate_without_province(raw) == key


# ---------------------------------------------------------------------------
# Phones
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("138 1234 5678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("008613812345678", "13812345678"),
        ("０５５１－６２３４５６７８", "055162345678"),
        ("(0551) 6234 5678", "055162345678"),
        ("+86 551 6234 5678", "055162345678"),
        ("+86 10 6234 5678", "01062345678"),
    ],
)
def test_normalize_phone(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected
    assert is_valid_phone(raw)


@pytest.mark.parametrize(
    "value",
    [
        "13812345678",
        "19912345678",
        "0551-62345678",
        "0551-6234567",
        "010-62345678",
        "021 52345678",
        "0564-3234567",
    ],
)
def test_valid_phone(value: str) -> None:
    assert phone_problem(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("1381234567", "mobile number must have 11 digits"),
        ("138123456789", "mobile number must have 11 digits"),
        ("12812345678", "mobile number must start with 13-19"),
        ("0551-12345678", "local number must start with 2-9"),
        ("0551-0234567", "local number must start with 2-9"),
        ("010-6234567", "local number must have 8 digits"),
        ("0551-623456789", "local number must have 7 or 8 digits"),
        ("0551", "local number missing"),
        ("0123-62345678", "unknown area code"),
        ("62345678", "must start with 1 (mobile) or 0 (area code)"),
        ("138-1234-567a", "contains characters other than digits"),
    ],
)
def test_invalid_phone(value: str, reason: str) -> None:
    assert phone_problem(value) == reason
    assert not is_valid_phone(value)


# ---------------------------------------------------------------------------
# Free-text scanning
# ---------------------------------------------------------------------------


def _found(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_find_id_in_chinese_text() -> None:
    text = "当事人张某，身份证号44011320141005001x，住合肥市。另：110101199003078670。"
    assert _found(text, find_id_numbers(text)) == ["44011320141005001x", "110101199003078670"]


def test_find_id_full_width() -> None:
    text = "证件：４４０１１３２０１４１００５００１Ｘ。"
    assert _found(text, find_id_numbers(text)) == ["４４０１１３２０１４１００５００１Ｘ"]


def test_find_id_ignores_longer_runs_and_bad_check_digit() -> None:
    # Each 19-digit run contains the valid ID 440308199901101512 as a window.
    assert find_id_numbers("单号4403081999011015123") == []
    assert find_id_numbers("单号9440308199901101512") == []
    assert find_id_numbers("号码440308199901101513有误") == []


def test_find_phones() -> None:
    text = "联系电话13812345678，备用 +86 139-1234-5678，或8615912345678。"
    assert _found(text, find_phones(text)) == ["13812345678", "139-1234-5678", "15912345678"]


def test_find_phones_ignores_longer_runs() -> None:
    assert find_phones("订单编号2023138123456789") == []
    assert find_phones("流水号913812345678") == []
    assert find_phones("流水号138123456789") == []
    # An 18-digit ID contains 11-digit windows that look like mobiles.
    assert find_phones("身份证110101199003078670") == []
