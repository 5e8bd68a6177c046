"""Tests for hub.security.masking."""

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from hub.security.masking import (
    DERIVED_FIELDS,
    DERIVED_KINDS,
    FIELD_MASKS,
    mask_birth_date,
    mask_fields,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_plate,
    mask_text,
    with_derived,
)
from hub.validate import id_check_digit, is_valid_id_number

# The repository sits beside shared/, which holds vectors collected from other
# projects' test suites (see SOURCES.md there).
PEER = Path(__file__).resolve().parents[2] / "shared/testdata/peer"

# Valid 18-digit numbers (correct check digit), so that find_id_numbers sees them.
ID_A = "340104199003071235"
ID_B = "340102198512010425"

ALL_MASKS = (mask_id_number, mask_phone, mask_name, mask_plate, mask_text)


def test_fixture_ids_are_valid() -> None:
    assert is_valid_id_number(ID_A)
    assert is_valid_id_number(ID_B)


# --- ID numbers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("340102199001011234", "340102********1234"),
        ("44011320141005001X", "440113********001X"),
        ("44011320141005001x", "440113********001X"),
        ("340102 19900101 1234", "340102********1234"),
        ("３４０１０２１９９００１０１１２３４", "340102********1234"),
        ("340102900101123", "340102*****1123"),  # 15-digit legacy number
    ],
)
def test_mask_id_number(value: str, expected: str) -> None:
    assert mask_id_number(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "3401021990010112",
        "34010219900101123456",
        "12345",
        "abcdefghijklmnopqr",
        "34010219900101123Y",
    ],
)
def test_mask_id_number_malformed_is_all_stars(value: str) -> None:
    assert mask_id_number(value) == "*" * len(value)


# --- phones ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13812345678", "138****5678"),
        ("+86 138-1234-5678", "138****5678"),
        ("0086 138 1234 5678", "138****5678"),
        ("0551-62345678", "0551-******78"),
        ("055162345678", "0551-******78"),
        ("(0551) 6234 5678", "0551-******78"),
        ("0551-6234567", "0551-*****67"),
        ("010-62345678", "010-******78"),
        ("+86 10 6234 5678", "010-******78"),
        ("12345", "***45"),
        ("6222021234567890123", "*****************23"),
        ("110", "***"),
    ],
)
def test_mask_phone(value: str, expected: str) -> None:
    assert mask_phone(value) == expected


# --- names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("张三", "张*"),
        ("李小龙", "李**"),
        ("欧阳娜娜", "欧***"),
        ("王", "*"),
        (" 张三 ", "张*"),
        ("John Smith", "J*** *****"),
        ("Li", "L*"),
        ("J", "*"),
    ],
)
def test_mask_name(value: str, expected: str) -> None:
    assert mask_name(value) == expected


# --- plates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("皖A12345", "皖A****5"),
        ("皖a·12345", "皖A****5"),
        ("皖AD12345", "皖A*****5"),
        ("皖A1234警", "皖A****警"),
        ("WJ皖12345", "WJ皖****5"),
        ("123456使", "******使"),
        ("A12345", "******"),
        ("not a plate", "***********"),
    ],
)
def test_mask_plate(value: str, expected: str) -> None:
    assert mask_plate(value) == expected


# --- None, empty, idempotence ------------------------------------------------------


@pytest.mark.parametrize("fn", ALL_MASKS)
def test_none_and_empty(fn) -> None:
    assert fn(None) is None
    assert fn("") == ""


IDEMPOTENCE_INPUTS = [
    "340102199001011234",
    "340102900101123",
    "3401021990",
    "13812345678",
    "+86 138-1234-5678",
    "0551-62345678",
    "010-62345678",
    "12345",
    "110",
    "张三",
    "欧阳娜娜",
    "王",
    "John Smith",
    "皖A12345",
    "皖AD12345",
    "WJ皖12345",
    "123456使",
    "A12345",
    f"身份证{ID_A}，电话 +86 138-1234-5678。",
]


@pytest.mark.parametrize("fn", ALL_MASKS)
@pytest.mark.parametrize("value", IDEMPOTENCE_INPUTS)
def test_idempotent(fn, value: str) -> None:
    once = fn(value)
    assert fn(once) == once


# --- free text -----------------------------------------------------------------------


def test_text_id_in_chinese_text() -> None:
    text = f"报警人张某（身份证号{ID_A}）称其车辆被盗。"
    assert mask_text(text) == "报警人张某（身份证号340104********1235）称其车辆被盗。"


def test_text_full_width_id_keeps_its_characters() -> None:
    full = ID_A.translate({c: c + 0xFEE0 for c in range(0x30, 0x3A)})
    assert mask_text(f"证件{full}。") == f"证件{full[:6]}{'*' * 8}{full[-4:]}。"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("联系电话13812345678。", "联系电话138****5678。"),
        ("联系电话 138 1234 5678。", "联系电话 138 **** 5678。"),
        ("联系电话138-1234-5678。", "联系电话138-****-5678。"),
        ("电话+86 138-1234-5678，", "电话+86 138-****-5678，"),
        ("电话+8613812345678，", "电话+86138****5678，"),
        ("电话0086 139 1234 5678", "电话0086 139 **** 5678"),
    ],
)
def test_text_phones(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_text_id_and_phone_together() -> None:
    text = f"当事人{ID_B}，手机+86 139-8765-4321，同行人{ID_A}。"
    assert mask_text(text) == (
        "当事人340102********0425，手机+86 139-****-4321，同行人340104********1235。"
    )


@pytest.mark.parametrize(
    "text",
    [
        f"流水号{ID_A}9结束",  # 19-digit run that starts with a valid ID number
        "编号3401041990030712359。",
        "卡号6222021381234567890",  # bank card containing a mobile-like run
        "卡号 6222 0213 8123 4567 890",
        "卡号6222 1381 2345 6789 012",
        "案件编号A20231201，出警110。",
        "",
    ],
)
def test_text_left_untouched(text: str) -> None:
    assert mask_text(text) == text


# --- peer vectors ----------------------------------------------------------------------


def test_peer_valid_ids_mask_in_text() -> None:
    path = PEER / "id_numbers.json"
    if not path.is_file():
        pytest.fail(f"peer test vectors missing: {path} (expected beside the repository)")
    valid = json.loads(path.read_text(encoding="utf-8"))["valid"]
    assert valid, f"no valid ID numbers in {path}"
    failures = []
    for number in valid:
        expected = number[:6] + "*" * 8 + number[-4:]
        text = f"经查，当事人身份证号码为{number}，现住合肥市。"
        got = mask_text(text)
        if got != f"经查，当事人身份证号码为{expected}，现住合肥市。":
            failures.append((number, got))
        if mask_id_number(number) != expected:
            failures.append((number, mask_id_number(number)))
    assert not failures


# --- records ---------------------------------------------------------------------------

KINDS = {
    "id_number": "id_number",
    "phone": "phone",
    "name": "name",
    "plate": "plate",
    "narrative": "text",
}


def _record() -> dict:
    return {
        "id_number": ID_A,
        "phone": "13812345678",
        "name": "张三",
        "plate": "皖A12345",
        "narrative": f"身份证{ID_B}",
        "case_no": "A2023-001",
    }


def test_field_masks_cover_the_kinds() -> None:
    assert set(FIELD_MASKS) == {"id_number", "phone", "name", "plate", "text"}


def test_mask_fields_only_requested_kinds() -> None:
    record = _record()
    out = mask_fields(record, KINDS, frozenset({"name", "plate"}))
    assert out == {
        "id_number": ID_A,
        "phone": "13812345678",
        "name": "张*",
        "plate": "皖A****5",
        "narrative": f"身份证{ID_B}",
        "case_no": "A2023-001",
    }


@pytest.mark.parametrize("kind", ["id_number", "phone"])
def test_masking_an_identifier_masks_it_in_free_text_too(kind: str) -> None:
    """A narrative or address may quote the number (a contact): it is masked with it."""
    out = mask_fields(_record(), KINDS, frozenset({kind}))
    assert out["narrative"] == "身份证340102********0425"
    assert (out["name"], out["plate"]) == ("张三", "皖A12345")


# --- fields derived from a masked one ------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(1964, 4, 18), "1964-**-**"),
        (datetime(1964, 4, 18, 8, 30), "1964-**-**"),
        ("1964-04-18", "1964-**-**"),
        ("1964-**-**", "1964-**-**"),  # idempotent
        ("unknown", "*******"),
        (None, None),
    ],
)
def test_mask_birth_date(value, expected) -> None:
    assert mask_birth_date(value) == expected


PERSON_KINDS = {"id_number": "id_number", "phone": "phone", "name": "name", "address": "text"}


def _person() -> dict:
    return {
        "id_number": "340104196404183015", "birth_date": date(1964, 4, 18), "sex": "M",
        "phone": "13812345678", "name": "张三", "address": "瑶海区长江路1号",
    }  # fmt: skip


def test_a_masked_id_number_coarsens_the_birth_date_beside_it() -> None:
    """The masked middle of an ID number is the birth date: shown in full beside the
    mask, it rebuilds the number (issue 14, item 1)."""
    out = mask_fields(_person(), PERSON_KINDS, frozenset({"id_number"}))
    assert (out["id_number"], out["birth_date"]) == ("340104********3015", "1964-**-**")
    # the 17th character (sex) stays visible in the mask, so the field stays too
    assert out["sex"] == "M" and out["id_number"][-2] == "1"
    # what stays visible leaves many numbers possible: every day of 1964 whose check
    # character is the one shown
    candidates = [
        n for d in range(366)
        if (day := date(1964, 1, 1) + timedelta(days=d)).year == 1964
        and id_check_digit(n := f"340104{day:%Y%m%d}301") == "5"
    ]  # fmt: skip
    assert "340104196404183015"[:17] in candidates and len(candidates) > 10


def test_clear_id_number_leaves_the_birth_date_alone() -> None:
    out = mask_fields(_person(), PERSON_KINDS, frozenset({"phone"}))
    assert out["birth_date"] == date(1964, 4, 18) and out["id_number"] == "340104196404183015"


def test_derived_fields_are_data_beside_the_masks() -> None:
    assert DERIVED_FIELDS["id_number"] == {"birth_date": mask_birth_date}
    assert set(DERIVED_KINDS) <= set(FIELD_MASKS)
    assert all(k <= set(FIELD_MASKS) for k in DERIVED_KINDS.values())
    assert with_derived(frozenset({"phone"})) == {"phone", "text"}
    assert with_derived(frozenset({"name"})) == {"name"}


def test_mask_fields_all_kinds() -> None:
    out = mask_fields(_record(), KINDS, frozenset(FIELD_MASKS))
    assert out == {
        "id_number": "340104********1235",
        "phone": "138****5678",
        "name": "张*",
        "plate": "皖A****5",
        "narrative": "身份证340102********0425",
        "case_no": "A2023-001",
    }


def test_mask_fields_never_mutates_input() -> None:
    record = _record()
    kinds = dict(KINDS)
    before, kinds_before = dict(record), dict(kinds)
    out = mask_fields(record, kinds, frozenset(FIELD_MASKS))
    assert record == before
    assert kinds == kinds_before
    assert out is not record


def test_mask_fields_empty_mask_copies() -> None:
    record = _record()
    out = mask_fields(record, KINDS, frozenset())
    assert out == record
    assert out is not record


def test_mask_fields_none_and_missing_fields() -> None:
    out = mask_fields({"phone": None}, KINDS, frozenset(FIELD_MASKS))
    assert out == {"phone": None}


@pytest.mark.parametrize(
    ("kinds", "mask"),
    [
        ({"phone": "phon"}, frozenset({"phone"})),  # misspelt kind in kinds
        ({"phone": "phone"}, frozenset({"phones"})),  # misspelt kind in mask
    ],
)
def test_mask_fields_unknown_kind_fails_closed(kinds, mask) -> None:
    with pytest.raises(ValueError, match="unknown field kinds"):
        mask_fields({"phone": "13812345678"}, kinds, mask)


def test_mask_fields_non_string_value_is_rejected_without_leaking() -> None:
    with pytest.raises(TypeError) as exc:
        mask_fields({"phone": 13812345678}, {"phone": "phone"}, frozenset({"phone"}))
    assert "13812345678" not in str(exc.value)
