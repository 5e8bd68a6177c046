"""Field validators for resident ID numbers, licence plates and phone numbers.

The hub ingests feeds from the city traffic-police and public-security
systems of Anhui. Every validator comes as a pair: ``*_problem`` returns a
short English reason (or ``None`` when the value is valid) so that rejected
records can be reported, and ``is_valid_*`` is the boolean shortcut.

Resident ID numbers (GB 11643-1999)
    Validation normalises first (spaces, full-width characters, lower-case
    ``x``), because those differences never change which person a number
    identifies. The checks are the check digit, the province part of the
    address code and a plausible birth date. The finer address code and its
    publication date are not checked (see ``id_number_problem``). 15-digit
    first-generation numbers are rejected for new records; they can be
    upgraded with ``upgrade_15_to_18``.

Licence plates (GA 36-2018)
    ``plate_problem`` checks the canonical stored form strictly: no
    separators and upper-case letters only, so ``京a12345`` is rejected, as
    the peer vectors require. Entered text is cleaned up separately by
    ``normalize_plate``. The policy is to accept what can legitimately be on
    a vehicle registered by a traffic-police office today:

    * accepted: ordinary 7-character plates; new-energy plates including the
      2022 expansion of the small-plate letters (D,A,B,C,E electric;
      F,G,H,J,K other); 警 police, 挂 trailer, 学 coach, 领 consulate and
      粤Z 港/澳 cross-border suffix plates; the 试 (test) and 超 (oversize)
      temporary plates, which GA 36-2018 defines and traffic police issue;
      the current embassy format ``123456使``; armed-police ``WJ`` plates,
      whose 2012 format is fully specified.
    * rejected: the pre-2018 embassy format ``使123456``, which has been
      replaced; consulate plates without an authority letter (``闽20401领``);
      the 练 suffix, which no current vehicle class uses; military plates
      (issued by the PLA outside GA 36, with letter codes reorganised in 2016
      and no public specification to check against); 民航 airside plates,
      which never appear on public roads.

Phone numbers
    Mainland mobiles ``1[3-9]`` plus 9 digits, and fixed lines with an area
    code. ``normalize_phone`` removes separators and the +86 / 0086 prefix.

Free text
    ``find_id_numbers`` and ``find_phones`` return character spans for the
    masking code. Full-width digits are recognised too, and the spans are
    offsets into the original text.
"""

import re
from datetime import date

# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space map one to one
# onto ASCII. Because the mapping never changes the length, offsets found in
# a translated text are also valid in the original.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_WHITESPACE = re.compile(r"\s+")


def _is_ascii_digits(s: str) -> bool:
    # str.isdigit alone also accepts superscripts and other scripts' digits.
    return s.isascii() and s.isdigit()


# ---------------------------------------------------------------------------
# Resident ID numbers (GB 11643-1999)
# ---------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"

#: First two digits of the address code (GB/T 2260 provinces). 71 is Taiwan
#: in GB/T 2260. 81, 82 and 83 are the prefixes (810000, 820000, 830000) of
#: the residence permits issued since 2018 to residents of Hong Kong, Macao
#: and Taiwan, which use the same number format.
ID_PROVINCE_CODES = frozenset(
    {
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
        "83",
    }
)

# Lower bound on the birth date. Anyone holding an 18-digit number was alive
# when the format was introduced in 1999, and 1886-06-25 is the birth date of
# Alimihan Seyiti, China's oldest documented resident. validid uses the same
# bound: its test suite accepts 110101188606258888 and rejects
# 110101188606248882, one day earlier. An earlier date can only be a keying
# error or a fabricated number. A round "before 1900" bound would wrongly
# reject genuine numbers of people born between 1886 and 1899.
_EARLIEST_BIRTH = date(1886, 6, 25)


def normalize_id_number(s: str) -> str:
    """Bring an ID number to its canonical form.

    Parameters
    ----------
    s : str
        Number as entered, possibly with full-width characters, spaces or a
        lower-case ``x``.

    Returns
    -------
    str
        The number with all whitespace removed, full-width characters
        converted to ASCII and letters upper-cased. The result is not
        validated.
    """
    # Forms often group the number as 6-8-4, so spaces inside the number are
    # removed as well as those around it.
    return _WHITESPACE.sub("", s.translate(_FULLWIDTH)).upper()


def id_check_digit(first17: str) -> str:
    """Compute the GB 11643-1999 check character (ISO 7064 MOD 11-2).

    Parameters
    ----------
    first17 : str
        The first 17 digits of the number.

    Returns
    -------
    str
        One of ``0``-``9`` or ``X``.

    Raises
    ------
    ValueError
        If ``first17`` is not exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError("first17 must be 17 ASCII digits")
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=False))
    return _ID_CHECK_CHARS[total % 11]


def _id_fields_problem(region6: str, yyyymmdd: str, today: date | None) -> str | None:
    # Only the province is checked. Finer address codes are created, merged
    # and retired every year, and a number keeps its code after the county
    # is renamed or abolished. Checking the code against its publication date
    # is also wrong: numbers are assigned where a person is registered, which
    # can be a county created after their birth. Both context-dependent
    # jxlwqq vectors (500154199301135886, 411082198901010002) and python-stdnum's
    # "historical-region" rejections show exactly this, and they are accepted.
    if region6[:2] not in ID_PROVINCE_CODES:
        return "unknown province code"
    try:
        birth = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return "birth date is not a calendar date"
    if birth < _EARLIEST_BIRTH:
        return "birth date before 1886-06-25"
    # A newborn can be registered on the day of birth, so today is allowed.
    if birth > (today or date.today()):
        return "birth date in the future"
    return None


def upgrade_15_to_18(s: str) -> str:
    """Convert a first-generation 15-digit number to the 18-digit form.

    Parameters
    ----------
    s : str
        A 15-digit number (normalised first, like ``normalize_id_number``).

    Returns
    -------
    str
        The 18-digit number: the century ``19`` inserted before the
        two-digit birth year, and the check character appended.

    Raises
    ------
    ValueError
        If ``s`` is not 15 digits or its address code or birth date is
        invalid.
    """
    n = normalize_id_number(s)
    if len(n) != 15 or not _is_ascii_digits(n):
        raise ValueError("a legacy number has 15 digits")
    # 15-digit numbers were issued from 1984 until 2004 to people born in the
    # 1900s only, so the century is always 19.
    body = n[:6] + "19" + n[6:]
    problem = _id_fields_problem(body[:6], body[6:14], None)
    if problem is not None:
        raise ValueError(problem)
    return body + id_check_digit(body)


def id_number_problem(s: str, *, today: date | None = None) -> str | None:
    """Explain why a resident ID number is invalid.

    Parameters
    ----------
    s : str
        Number as entered; it is normalised first (``normalize_id_number``),
        so a lower-case ``x`` check character is accepted.
    today : date, optional
        Reference date for the future-birth-date check. Defaults to
        ``date.today()`` (the server's local date).

    Returns
    -------
    str or None
        ``None`` if the number is valid, otherwise a short reason such as
        ``"check digit mismatch"``.
    """
    n = normalize_id_number(s)
    if not n:
        return "empty"
    if len(n) == 15 and _is_ascii_digits(n):
        # Valid 15-digit numbers are still rejected, because new records must
        # carry the 18-digit form. The reason says how to fix it.
        try:
            upgrade_15_to_18(n)
        except ValueError as exc:
            return f"legacy 15-digit number: {exc}"
        return "legacy 15-digit number: convert to 18 digits"
    if len(n) != 18:
        return "length must be 18"
    if not _is_ascii_digits(n[:17]):
        return "first 17 characters must be digits"
    if n[17] not in "0123456789X":
        return "last character must be a digit or X"
    if id_check_digit(n[:17]) != n[17]:
        return "check digit mismatch"
    return _id_fields_problem(n[:6], n[6:14], today)


def is_valid_id_number(s: str, *, today: date | None = None) -> bool:
    """Return whether ``s`` is a valid 18-digit resident ID number.

    Parameters
    ----------
    s : str
        Number as entered (normalised first).
    today : date, optional
        Reference date for the future-birth-date check.

    Returns
    -------
    bool
        ``True`` when ``id_number_problem`` finds nothing.
    """
    return id_number_problem(s, today=today) is None


def _valid_id(s: str) -> str:
    n = normalize_id_number(s)
    problem = id_number_problem(n)
    if problem is not None:
        raise ValueError(problem)
    return n


def make_id_number(region6: str, birth: date, seq3: int) -> str:
    """Build a valid 18-digit ID number, for example for test data.

    Parameters
    ----------
    region6 : str
        Six-digit address code.
    birth : date
        Birth date.
    seq3 : int
        Sequence number 0-999. An odd value means male and an even value
        means female, as the standard specifies.

    Returns
    -------
    str
        The number with its check character.

    Raises
    ------
    ValueError
        If an argument is malformed or the result would not validate (an
        unknown province, or a birth date out of range).
    """
    if len(region6) != 6 or not _is_ascii_digits(region6):
        raise ValueError("region6 must be 6 ASCII digits")
    if not 0 <= seq3 <= 999:
        raise ValueError("seq3 must be in 0..999")
    # Explicit zero padding, because strftime("%Y") does not pad years < 1000.
    body = f"{region6}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq3:03d}"
    return _valid_id(body + id_check_digit(body))


def id_birth_date(s: str) -> date:
    """Return the birth date encoded in a valid ID number.

    Parameters
    ----------
    s : str
        An 18-digit number (normalised first).

    Returns
    -------
    date
        The birth date.

    Raises
    ------
    ValueError
        If the number is invalid; the message is the reason.
    """
    n = _valid_id(s)
    return date(int(n[6:10]), int(n[10:12]), int(n[12:14]))


def id_region(s: str) -> str:
    """Return the six-digit address code of a valid ID number.

    Parameters
    ----------
    s : str
        An 18-digit number (normalised first).

    Returns
    -------
    str
        The address code, e.g. ``"340104"``.

    Raises
    ------
    ValueError
        If the number is invalid; the message is the reason.
    """
    return _valid_id(s)[:6]


# ---------------------------------------------------------------------------
# Licence plates (GA 36-2018)
# ---------------------------------------------------------------------------

#: Province abbreviations used as the first plate character (31 provincial
#: divisions of the mainland; Hong Kong, Macao and Taiwan issue no GA 36 plates).
PLATE_PROVINCES = frozenset("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼")

_P = "[" + "".join(sorted(PLATE_PROVINCES)) + "]"
# The authority letter may be O (used for public-security vehicles in some
# provinces), but never I. Serial characters exclude I and O because they look
# like 1 and 0.
_AUTH = "[A-HJ-Z]"
_SER = "[A-HJ-NP-Z0-9]"

# 7-character plates whose last character names the vehicle class.
_SUFFIX_KINDS = {
    "警": "police",
    "挂": "trailer",
    "学": "coach",
    "领": "consulate",
    "试": "temporary_test",
    "超": "temporary_oversize",
}

_PLATE_FORMATS = (
    ("ordinary", re.compile(f"{_P}{_AUTH}{_SER}{{5}}")),
    # Small new-energy plates: originally D (electric) or F (other); in 2022
    # the letters A,B,C,E (electric) and G,H,J,K (other) were added for
    # cities whose D/F ranges are used up.
    ("new_energy_small", re.compile(f"{_P}{_AUTH}[DABCEFGHJK]{_SER}[0-9]{{4}}")),
    ("new_energy_large", re.compile(f"{_P}{_AUTH}[0-9]{{5}}[DF]")),
    ("suffix", re.compile(f"{_P}{_AUTH}{_SER}{{4}}[{''.join(_SUFFIX_KINDS)}]")),
    # Cross-border vehicles are registered in Guangdong under authority Z only.
    ("hk_macao", re.compile(f"粤Z{_SER}{{4}}[港澳]")),
    # 2012 armed-police format: WJ, province, 4 digits, class character.
    ("armed_police", re.compile(f"WJ{_P}[0-9]{{4}}[0-9XBTSHJD]")),
    # Current embassy format: 3-digit country code, 3-digit serial, then 使.
    ("embassy", re.compile("[0-9]{6}使")),
)

# Characters that people type between plate parts, stripped by normalisation.
_PLATE_SEPARATORS = re.compile(r"[\s·•・\-]")


def normalize_plate(s: str) -> str:
    """Bring an entered plate number to the canonical stored form.

    Parameters
    ----------
    s : str
        Plate as entered, e.g. ``"皖a·12345"`` or with full-width letters.

    Returns
    -------
    str
        The plate without spaces, hyphens and middle dots (``·``, ``•``,
        ``・``), with full-width characters converted to ASCII and letters
        upper-cased. The result is not validated.
    """
    return _PLATE_SEPARATORS.sub("", s.translate(_FULLWIDTH)).upper()


def plate_kind(s: str) -> str | None:
    """Classify a plate in canonical form.

    Parameters
    ----------
    s : str
        Plate in canonical form (see ``normalize_plate``).

    Returns
    -------
    str or None
        One of ``"ordinary"``, ``"new_energy_small"``,
        ``"new_energy_large"``, ``"police"``, ``"trailer"``, ``"coach"``,
        ``"consulate"``, ``"temporary_test"``, ``"temporary_oversize"``,
        ``"hk_macao"``, ``"armed_police"`` or ``"embassy"``; ``None`` if the
        plate is invalid.
    """
    for kind, pattern in _PLATE_FORMATS:
        if pattern.fullmatch(s):
            return _SUFFIX_KINDS[s[-1]] if kind == "suffix" else kind
    return None


def plate_problem(s: str) -> str | None:
    """Explain why a plate is not a valid GA 36-2018 plate in canonical form.

    Parameters
    ----------
    s : str
        Plate to check. It is not normalised: apply ``normalize_plate`` to
        user input first.

    Returns
    -------
    str or None
        ``None`` if valid, otherwise a short reason.
    """
    if not s:
        return "empty"
    if plate_kind(s) is not None:
        return None
    if _PLATE_SEPARATORS.search(s):
        return "contains spaces or separators (normalise first)"
    if any("a" <= c <= "z" for c in s):
        return "contains lower-case letters (normalise first)"
    if s.startswith("使"):
        return "superseded embassy format: 使 now comes last"
    if s.startswith("WJ"):
        return "armed-police plate must be WJ + province + 4 digits + class character"
    if s[0] not in PLATE_PROVINCES:
        return "does not start with a province abbreviation"
    if len(s) not in (7, 8):
        return "length must be 7 or 8"
    return "does not match any GA 36-2018 format"


def is_valid_plate(s: str) -> bool:
    """Return whether ``s`` is a valid plate in canonical form.

    Parameters
    ----------
    s : str
        Plate to check (not normalised).

    Returns
    -------
    bool
        ``True`` when ``plate_problem`` finds nothing.
    """
    return plate_kind(s) is not None


def plate_province(s: str) -> str | None:
    """Return the province abbreviation of a valid plate.

    Parameters
    ----------
    s : str
        Plate in canonical form.

    Returns
    -------
    str or None
        E.g. ``"皖"`` for Anhui. ``None`` for embassy plates, which carry no
        province, and for invalid plates.
    """
    kind = plate_kind(s)
    if kind is None or kind == "embassy":
        return None
    return s[2] if kind == "armed_police" else s[0]


def plate_without_province(s: str) -> str:
    """Return a search key that ignores the province abbreviation.

    Officers and cameras often record plates without the province, e.g.
    ``A12345`` for ``皖A12345``. Comparing keys from this function matches
    both forms.

    Parameters
    ----------
    s : str
        Plate as entered, with or without the province; it is normalised
        first.

    Returns
    -------
    str
        The normalised plate with its province abbreviation removed
        (``WJ皖12345`` becomes ``WJ12345``). Input without a province is
        returned normalised.
    """
    n = normalize_plate(s)
    if n.startswith("WJ") and n[2:3] in PLATE_PROVINCES:
        return "WJ" + n[3:]
    if n[:1] in PLATE_PROVINCES:
        return n[1:]
    return n


# ---------------------------------------------------------------------------
# Phone numbers
# ---------------------------------------------------------------------------

_PHONE_SEPARATORS = re.compile(r"[\s\-–—().]")
_MOBILE = re.compile("1[3-9][0-9]{9}")


def normalize_phone(s: str) -> str:
    """Bring a phone number to digits-only national form.

    Parameters
    ----------
    s : str
        Number as entered, e.g. ``"+86 138-1234-5678"`` or
        ``"(0551) 6234 5678"``.

    Returns
    -------
    str
        The number without spaces, dashes, dots and parentheses, with
        full-width characters converted to ASCII and the ``+86`` / ``0086``
        prefix removed. The result is not validated.
    """
    n = _PHONE_SEPARATORS.sub("", s.translate(_FULLWIDTH))
    for prefix in ("+86", "0086"):
        if n.startswith(prefix):
            n = n[len(prefix) :]
            # The international form drops the trunk 0 of an area code
            # (+86 551 ..., +86 10 ... for Beijing), so it is restored.
            if n and not n.startswith("0") and not _MOBILE.match(n):
                n = "0" + n
            break
    return n


def phone_problem(s: str) -> str | None:
    """Explain why a phone number is not a valid mainland number.

    Valid numbers are mobiles (``1[3-9]`` plus 9 digits) and fixed lines: a
    3-digit area code (010, 02x) followed by an 8-digit local number, or a
    4-digit area code (03xx-09xx, e.g. 0551 Hefei) followed by 7 or 8 digits.
    Local numbers never start with 0 (trunk prefix) or 1 (service numbers
    such as 110 and 12345), so ``0551-12345678`` is rejected.

    Parameters
    ----------
    s : str
        Number as entered; it is normalised first (``normalize_phone``).

    Returns
    -------
    str or None
        ``None`` if valid, otherwise a short reason.
    """
    n = normalize_phone(s)
    if not n:
        return "empty"
    if not _is_ascii_digits(n):
        return "contains characters other than digits"
    if n.startswith("1"):
        if len(n) != 11:
            return "mobile number must have 11 digits"
        if not _MOBILE.fullmatch(n):
            return "mobile number must start with 13-19"
        return None
    if not n.startswith("0"):
        return "must start with 1 (mobile) or 0 (area code)"
    # The area code length follows from its digits, which is what makes the
    # form without a dash unambiguous.
    if n.startswith(("010", "02")):
        local, lengths = n[3:], (8,)
    elif n[1:2] in ("3", "4", "5", "6", "7", "8", "9"):
        local, lengths = n[4:], (7, 8)
    else:
        return "unknown area code"
    if not local:
        return "local number missing"
    if local[0] in "01":
        return "local number must start with 2-9"
    if len(local) not in lengths:
        return f"local number must have {' or '.join(map(str, lengths))} digits"
    return None


def is_valid_phone(s: str) -> bool:
    """Return whether ``s`` is a valid mainland mobile or fixed-line number.

    Parameters
    ----------
    s : str
        Number as entered (normalised first).

    Returns
    -------
    bool
        ``True`` when ``phone_problem`` finds nothing.
    """
    return phone_problem(s) is None


# ---------------------------------------------------------------------------
# Free-text scanning
# ---------------------------------------------------------------------------

# The patterns run on the text translated by _FULLWIDTH. That translation
# preserves length, so the spans also hold for the original text.
_ID_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
# A mobile may follow a +86 / 0086 / 86 country code directly, and may be
# written in 3-4-4 groups separated by a space or a hyphen. Any other adjacent
# digit means that it is part of a longer number.
_MOBILE_IN_TEXT = re.compile(
    r"(?:(?<![0-9])(?:\+86|0086|86)[ -]?|(?<![0-9]))"
    r"(1[3-9][0-9](?:[ -]?[0-9]{4}){2})(?![0-9])"
)


def find_id_numbers(text: str) -> list[tuple[int, int]]:
    """Find 18-character ID numbers in free text.

    Parameters
    ----------
    text : str
        Any text; full-width digits are recognised.

    Returns
    -------
    list of tuple of int
        ``(start, end)`` spans of candidates that are not part of a longer
        digit run and whose check character is correct. Birth date and
        province are not checked: for masking, a number that looks like an ID
        is better hidden.
    """
    spans = []
    for m in _ID_IN_TEXT.finditer(text.translate(_FULLWIDTH)):
        candidate = m.group().upper()
        if id_check_digit(candidate[:17]) == candidate[17]:
            spans.append(m.span())
    return spans


def find_phones(text: str) -> list[tuple[int, int]]:
    """Find mainland mobile numbers in free text.

    Parameters
    ----------
    text : str
        Any text; full-width digits are recognised.

    Returns
    -------
    list of tuple of int
        ``(start, end)`` spans of the 11 digits (with any internal space or
        hyphen), excluding a country-code prefix. Numbers that are part of a
        longer digit run are not reported.
    """
    return [m.span(1) for m in _MOBILE_IN_TEXT.finditer(text.translate(_FULLWIDTH))]
