"""Display masking of personal identifiers (ID numbers, phones, names, plates).

Masking is for showing records to people whose access policy does not allow the
clear value: enough stays visible to tell records apart and to check a value read
out on the phone, while the value itself cannot be recovered. The policy decides
*which* field kinds are masked; ``mask_fields`` is the one place where that
decision is applied.

A mask is judged by what the whole row reveals (DESIGN §4a): a field that
carries the hidden part of a masked one is masked or coarsened with it.
``DERIVED_FIELDS`` and ``DERIVED_KINDS`` hold that as data, beside the masks.

All functions are pure, accept ``None`` (returned unchanged) and are idempotent:
masking an already masked value gives the same value, so a record that passes
through two layers is not damaged. A value that does not have the expected shape
is masked completely rather than partially, because the positions that are safe
to show are only known for well-formed values.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Set
from datetime import date
from typing import Any

from hub.validate import (
    PLATE_PROVINCES,
    find_id_numbers,
    find_phones,
    normalize_id_number,
    normalize_phone,
    normalize_plate,
)

Masker = Callable[[str | None], str | None]

_STAR = "*"

# ---------------------------------------------------------------------------
# Resident ID numbers
# ---------------------------------------------------------------------------

# The middle may already be starred, so that masking is idempotent. The kept
# parts must be digits (and the check character): otherwise the value is not
# an ID number at all and showing ten of its characters could leak whatever
# it really is.
_ID18_SHAPE = re.compile(r"[0-9]{6}[0-9*]{8}[0-9]{3}[0-9X]")
_ID15_SHAPE = re.compile(r"[0-9]{6}[0-9*]{5}[0-9]{4}")


def mask_id_number(value: str | None) -> str | None:
    """Mask a resident ID number, keeping the address code and the last 4 characters.

    Parameters
    ----------
    value : str or None
        Number as stored or entered. It is normalised first (whitespace removed,
        full-width characters converted, ``x`` upper-cased), so the 6-8-4
        grouping used on forms is masked like the plain number.

    Returns
    -------
    str or None
        For an 18- or 15-character number: the first 6 characters (the region),
        stars, and the last 4, e.g. ``340102********1234``. Anything else is
        replaced by as many stars as ``value`` has characters. ``None`` stays
        ``None``.

    Notes
    -----
    The check digit is not verified: masking is not validation, and a number
    with a typo identifies a person as well as a correct one.
    """
    if value is None:
        return None
    n = normalize_id_number(value)
    if _ID18_SHAPE.fullmatch(n) or _ID15_SHAPE.fullmatch(n):
        return n[:6] + _STAR * (len(n) - 10) + n[-4:]
    return _STAR * len(value)


# ---------------------------------------------------------------------------
# Phone numbers
# ---------------------------------------------------------------------------

# Shapes after normalize_phone, with the hidden positions allowed to be stars
# already (idempotence). Mobiles: 1[3-9] + 9 digits, of which 4..7 are hidden.
_MOBILE_SHAPE = re.compile(r"1[3-9][0-9][0-9*]{4}[0-9]{4}")
# Fixed lines: the area code length follows from its digits (010 and 02x have
# three, the others four), which is what makes the undashed form unambiguous.
# The local number has 8 digits after a 3-digit code and 7 or 8 after a 4-digit
# one, as in hub.validate.phone_problem.
_FIXED_SHAPE = re.compile(
    r"(?P<area3>0(?:10|2[0-9]))(?P<local3>[0-9*]{6}[0-9]{2})"
    r"|(?P<area4>0[3-9][0-9]{2})(?P<local4>[0-9*]{5,6}[0-9]{2})"
)
# Below this length, keeping 2 characters would show most or all of the value.
_MIN_LEN_KEEP_TAIL = 5


def mask_phone(value: str | None) -> str | None:
    """Mask a phone number.

    Parameters
    ----------
    value : str or None
        Number as stored or entered; separators and a ``+86`` / ``0086`` prefix
        are removed first (``hub.validate.normalize_phone``).

    Returns
    -------
    str or None
        * mobile: first 3 and last 4 digits, ``138****5678``;
        * fixed line: area code, a dash, stars and the last 2 digits,
          ``0551-******78``;
        * any other value: stars except the last 2 characters
          (surrounding whitespace dropped), or only stars if it has fewer
          than 5 characters, since keeping 2 would then show most of it.

        ``None`` stays ``None``.
    """
    if value is None:
        return None
    n = normalize_phone(value)
    if _MOBILE_SHAPE.fullmatch(n):
        return n[:3] + _STAR * 4 + n[-4:]
    m = _FIXED_SHAPE.fullmatch(n)
    if m:
        area = m["area3"] or m["area4"]
        local = m["local3"] or m["local4"]
        # The dash makes the visible area code readable as such.
        return f"{area}-{_STAR * (len(local) - 2)}{local[-2:]}"
    s = value.strip()
    if len(s) < _MIN_LEN_KEEP_TAIL:
        return _STAR * len(s)
    return _STAR * (len(s) - 2) + s[-2:]


# ---------------------------------------------------------------------------
# Personal names
# ---------------------------------------------------------------------------


def mask_name(value: str | None) -> str | None:
    """Mask a personal name, keeping only its first character.

    Parameters
    ----------
    value : str or None
        Name as stored; surrounding whitespace is ignored.

    Returns
    -------
    str or None
        The first character followed by one star per remaining non-space
        character; spaces inside the name are kept so that Latin names keep
        their word lengths (``John Smith`` → ``J*** *****``). ``张三`` → ``张*``,
        ``欧阳娜娜`` → ``欧***``. A one-character name becomes ``*``.
        ``None`` stays ``None``.

    Notes
    -----
    Compound surnames (欧阳, 司马, ...) are not guessed: a list of them can
    never be complete, and guessing wrong would show a given name character.
    Exactly one character is kept.
    """
    if value is None:
        return None
    s = value.strip()
    if len(s) <= 1:
        # A one-character name is all surname and given name at once; keeping
        # it would show the whole name.
        return _STAR * len(s)
    return s[0] + "".join(c if c.isspace() else _STAR for c in s[1:])


# ---------------------------------------------------------------------------
# Licence plates
# ---------------------------------------------------------------------------

_PROVINCE_CLASS = "[" + "".join(sorted(PLATE_PROVINCES)) + "]"
# Province + authority letter, 4 or 5 hidden characters, and the last one, which
# on suffix plates (警, 挂, 学, ...) names the vehicle class. Stars are allowed in
# the hidden positions (idempotence).
_PLATE_SHAPE = re.compile(f"{_PROVINCE_CLASS}[A-Z][A-Z0-9*]{{4,5}}[A-Z0-9\u4e00-\u9fff]")
# Armed-police plates put WJ before the province: WJ皖1234X.
_WJ_SHAPE = re.compile(f"WJ{_PROVINCE_CLASS}[0-9*]{{4}}[0-9A-Z]")
# Embassy plates carry no province: 3-digit country, 3-digit serial, 使.
_EMBASSY_SHAPE = re.compile(r"[0-9*]{6}使")


def mask_plate(value: str | None) -> str | None:
    """Mask a licence plate, keeping the issuing office and the last character.

    Parameters
    ----------
    value : str or None
        Plate as stored or entered; it is normalised first
        (``hub.validate.normalize_plate``).

    Returns
    -------
    str or None
        ``皖A12345`` → ``皖A****5`` (province, authority letter, stars, last
        character); armed-police plates keep ``WJ`` and the province
        (``WJ皖****X``); embassy plates keep only ``使``. Anything else is
        replaced by as many stars as ``value`` has characters. ``None`` stays
        ``None``.
    """
    if value is None:
        return None
    n = normalize_plate(value)
    if _PLATE_SHAPE.fullmatch(n):
        return n[:2] + _STAR * (len(n) - 3) + n[-1]
    if _WJ_SHAPE.fullmatch(n):
        return n[:3] + _STAR * (len(n) - 4) + n[-1]
    if _EMBASSY_SHAPE.fullmatch(n):
        # The country code would identify the embassy, and with it a small
        # group of people, so only the class character is shown.
        return _STAR * (len(n) - 1) + n[-1]
    return _STAR * len(value)


# ---------------------------------------------------------------------------
# Free text
# ---------------------------------------------------------------------------


def _mask_id_span(chunk: str) -> str:
    # The span is exactly 18 characters (ASCII or full-width). Characters are
    # kept as written, so the surrounding text keeps its look.
    return chunk[:6] + _STAR * (len(chunk) - 10) + chunk[-4:]


def _mask_mobile_span(chunk: str) -> str:
    # The span may contain spaces or hyphens between digit groups
    # ("138 1234 5678"); the layout is kept and digits 4 to 7 are starred.
    out = []
    digit_index = 0
    for c in chunk:
        if c.isdigit():
            out.append(_STAR if 3 <= digit_index < 7 else c)
            digit_index += 1
        else:
            out.append(c)
    return "".join(out)


def mask_text(value: str | None) -> str | None:
    """Mask ID numbers and mobile numbers inside free text.

    Parameters
    ----------
    value : str or None
        Free text such as an incident narrative.

    Returns
    -------
    str or None
        The text with every span found by ``hub.validate.find_id_numbers``
        (first 6 and last 4 characters kept) and ``hub.validate.find_phones``
        (first 3 and last 4 digits kept, separators and any ``+86`` prefix
        left as written) masked; everything else is unchanged. ``None`` stays
        ``None``.

    Notes
    -----
    Only what the finders report is masked. In particular, 15-digit legacy ID
    numbers, fixed-line numbers and names in free text are *not* found, and
    digit runs longer than an identifier (bank cards, case numbers) are left
    alone on purpose.
    """
    if value is None:
        return None
    spans = [(s, e, _mask_id_span) for s, e in find_id_numbers(value)]
    spans += [(s, e, _mask_mobile_span) for s, e in find_phones(value)]
    spans.sort()
    out = []
    pos = 0
    for start, end, masker in spans:
        # The finders exclude matches touching other digits, so spans should
        # never overlap; if they ever did, the first one wins rather than
        # emitting text twice.
        if start < pos:
            continue
        out.append(value[pos:start])
        out.append(masker(value[start:end]))
        pos = end
    out.append(value[pos:])
    return "".join(out)


# ---------------------------------------------------------------------------
# Fields derived from a masked one
# ---------------------------------------------------------------------------

_YEAR_SHAPE = re.compile(r"([0-9]{4})-[0-9*]{2}-[0-9*]{2}")


def mask_birth_date(value: date | str | None) -> str | None:
    """Coarsen a birth date to its year, ``1964-04-18`` → ``1964-**-**``.

    Parameters
    ----------
    value : date, str or None
        A date (or datetime), or its ISO text; an already coarsened value is
        returned unchanged (idempotence).

    Returns
    -------
    str or None
        The year followed by starred month and day. Anything that is not a
        date is replaced by as many stars as it has characters. ``None`` stays
        ``None``.

    Notes
    -----
    The eight hidden digits of a masked ID number are the birth date: shown in
    full beside the mask, it rebuilds the number. With the year only, month and
    day stay hidden, and the check digit leaves about 33 candidate numbers
    (``tests/test_masking.py`` counts them); the year keeps ages usable.
    """
    if value is None:
        return None
    if isinstance(value, date):
        return f"{value.year:04d}-**-**"
    m = _YEAR_SHAPE.fullmatch(str(value).strip())
    if m:
        return f"{m[1]}-**-**"
    return _STAR * len(str(value))


#: Masked field kind → the fields that carry its hidden part, and how each is
#: shown when that kind is masked. A GB 11643 number hides its birth date
#: (characters 7-14), so a record's ``birth_date`` is coarsened to the year.
#: ``sex`` is not listed: it derives from the 17th character, which the mask
#: keeps visible (the last four), so the field shows nothing the mask hides.
DERIVED_FIELDS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "id_number": {"birth_date": mask_birth_date},
}

#: Masked field kind → the kinds of fields that may quote it. A narrative or an
#: address (free text) may hold an ID number or a phone, e.g. as a contact, so
#: masking the structured field also masks the identifiers in the text.
DERIVED_KINDS: dict[str, frozenset[str]] = {
    "id_number": frozenset({"text"}),
    "phone": frozenset({"text"}),
}


def with_derived(mask: Set[str]) -> frozenset[str]:
    """The kinds to mask once the kinds that may quote a masked one are added."""
    return frozenset(mask).union(*(DERIVED_KINDS.get(k, frozenset()) for k in mask))


# A run of digits as free text writes a number: ASCII or full-width digits, grouped by
# single spaces or hyphens ("0551-6278 1234"). Runs shorter than this are house
# numbers and dates rather than a part of an identifier worth hiding.
_DIGIT_RUN = re.compile(r"[0-9０-９](?:[ \u3000\-－]?[0-9０-９])+")
_MIN_RUN = 6
# Separators people put inside a name or a plate they quote ("上官 婉儿", "皖A·12345").
_WORD_SEP = r"[\s·•・\-]?"


def _digits(value: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", value) if c.isascii() and c.isdigit())


def _repeats(
    record: Mapping[str, Any], kinds: Mapping[str, str], mask: Set[str]
) -> tuple[set[str], list[tuple[re.Pattern[str], str]]]:
    """The row's own masked values, as free text may repeat them.

    The finders of ``mask_text`` know mobiles and 18-digit numbers only; a row that
    repeats its own fixed-line phone, 15-digit number, name or plate in its address or
    narrative would show there what the structured field masks. Digits are compared
    as digits (any grouping, full-width or not); names and plates as written, with
    separators allowed between their characters.
    """
    numbers: set[str] = set()
    words: list[tuple[re.Pattern[str], str]] = []
    for key, kind in kinds.items():
        value = record.get(key)
        if kind not in mask or kind == "text" or not isinstance(value, str):
            continue
        if kind in ("id_number", "phone"):
            if len(digits := _digits(value)) >= _MIN_RUN:
                numbers.add(digits)
            continue
        clear = normalize_plate(value) if kind == "plate" else value.strip()
        if len(clear) >= 2:
            pattern = _WORD_SEP.join(re.escape(c) for c in clear if not c.isspace())
            words.append((re.compile(pattern, re.IGNORECASE), FIELD_MASKS[kind](value) or ""))
    return numbers, words


def _mask_repeats(text: str, numbers: set[str], words: list[tuple[re.Pattern[str], str]]) -> str:
    """`text` with the row's masked values starred wherever it repeats them."""

    def digits_run(m: re.Match[str]) -> str:
        run = m[0]
        digits = _digits(run)
        if len(digits) < _MIN_RUN or not any(digits in n for n in numbers):
            return run
        return "".join(_STAR if c.isdigit() else c for c in run)

    if numbers:
        text = _DIGIT_RUN.sub(digits_run, text)
    for pattern, masked in words:
        text = pattern.sub(masked, text)
    return text


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------

#: Masking function for each field kind.
FIELD_MASKS: dict[str, Masker] = {
    "id_number": mask_id_number,
    "phone": mask_phone,
    "name": mask_name,
    "plate": mask_plate,
    "text": mask_text,
}


def mask_fields(
    record: Mapping[str, Any], kinds: Mapping[str, str], mask: Set[str]
) -> dict[str, Any]:
    """Return a copy of a record with the fields of the given kinds masked.

    This is the one place where masking is applied; the access policy decides
    the ``mask`` set. What the rest of the row would reveal is masked with it:
    the kinds that may quote a masked kind (``DERIVED_KINDS``), the fields
    that carry its hidden part (``DERIVED_FIELDS``), and every repetition of a
    masked value of the row in its free text (``_repeats``).

    Parameters
    ----------
    record : mapping
        Field name to value. It is not modified.
    kinds : mapping of str to str
        Field name to field kind (a key of ``FIELD_MASKS``). Fields of the
        record not listed here are copied unchanged, as are listed fields that
        the record does not have.
    mask : set of str
        Field kinds to mask, e.g. ``frozenset({"id_number", "phone"})``.

    Returns
    -------
    dict
        A shallow copy of ``record`` with each field whose kind is in ``mask``
        (or derived from one there) replaced by its masked value, and each
        field derived from a masked kind the record holds coarsened.

    Raises
    ------
    ValueError
        If ``kinds`` or ``mask`` names a kind that has no masking function.
        A misspelt kind would otherwise leave a field silently unmasked.
    TypeError
        If a field to be masked holds something other than a string or
        ``None``. Only the field name is reported, never the value.
    """
    unknown = (set(kinds.values()) | set(mask)) - FIELD_MASKS.keys()
    if unknown:
        raise ValueError(f"unknown field kinds: {', '.join(sorted(unknown))}")
    mask = with_derived(mask)
    result = dict(record)
    for key, kind in kinds.items():
        if kind not in mask or key not in result:
            continue
        value = result[key]
        if value is not None and not isinstance(value, str):
            raise TypeError(f"field {key!r} to be masked as {kind} is not a string")
        result[key] = FIELD_MASKS[kind](value)
    numbers, words = _repeats(record, kinds, mask)
    if numbers or words:
        for key, kind in kinds.items():
            if kind == "text" and isinstance(result.get(key), str):
                result[key] = _mask_repeats(result[key], numbers, words)
    for kind in mask & set(kinds.values()):
        for key, coarsen in DERIVED_FIELDS.get(kind, {}).items():
            if key in result:
                result[key] = coarsen(result[key])
    return result
