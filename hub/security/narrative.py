"""Identifiers in free text, stored encrypted: seal at ingest, reveal by policy on read.

Narratives (incident summaries, addresses, notes) repeat ID numbers and phone numbers
that the store otherwise keeps only encrypted in their own fields. ``seal`` replaces
every identifier found in a text by a token holding its SM4-GCM ciphertext, so the
stored text holds no identifier in clear; ``reveal`` turns tokens back into the value,
masked or clear by the same policy as the structured field; ``conceal`` is for places
without the cipher or without a policy (aggregates, map tooltips): every identifier
becomes stars.

A token reads ``⟦ph:<key id>:<base64url>⟧`` (``id`` for ID numbers). The brackets
(U+27E6, U+27E7) do not occur in feed text, are kept as they are by SQLite, PostgreSQL,
CSV and JSON, and the ciphertext uses only ``[A-Za-z0-9_-]``, so a token survives every
round trip. The field name bound into the ciphertext (``text.phone``) differs from the
structured fields', so a token cannot be moved into an encrypted column or back.

Whole values (a rejected feed row) are sealed with ``seal_value`` / ``open_value`` in
the same token syntax (kind ``raw``).
"""

from __future__ import annotations

import base64
import re

from hub.security.crypto import KEY_ID, DecryptionError, FieldCipher
from hub.security.masking import mask_text
from hub.validate import find_id_numbers, find_phones

#: Shown instead of a token that does not decrypt (wrong key, damaged text).
UNREADABLE = "[***]"
# Token kind -> identifier kind (the policy's field kind).
_KINDS = {"id": "id_number", "ph": "phone", "raw": "raw"}
TOKEN = re.compile(rf"⟦(id|ph|raw):({KEY_ID}):([A-Za-z0-9_-]+)⟧")
# Cheap vectorisable pre-check: a mobile starts with 3 digits and at most one separator
# (space or hyphen, also full-width) before 4 more, and an ID number has 18 digits in a
# row, so a text without such a run (house numbers, dates) holds no identifier.
MAY_HOLD = re.compile(r"[0-9０-９]{3}[- －　]?[0-9０-９]{4}")
# Lengths of the fully masked forms (`conceal`): the stored length is not shown.
_CONCEALED = {"id": "*" * 18, "ph": "*" * 11, "raw": UNREADABLE}


def _aad(kind: str) -> str:
    return f"text.{kind}"


def _token(code: str, value: str, cipher: FieldCipher) -> str:
    # FieldCipher only takes key ids that fit a token (`crypto.KEY_ID`).
    blob = cipher.encrypt(_aad(_KINDS[code]), value)
    body = base64.urlsafe_b64encode(blob).decode().rstrip("=")
    return f"⟦{code}:{cipher.key_id}:{body}⟧"


def _open(match: re.Match, cipher: FieldCipher) -> str | None:
    code, key_id, body = match.groups()
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        # The token names its key: text sealed before a rotation opens with a retired key.
        return cipher.decrypt(_aad(_KINDS[code]), blob, key_id)
    except (DecryptionError, ValueError, UnicodeDecodeError):
        return None


def _identifiers(text: str) -> list[tuple[int, int, str]]:
    """Spans of identifiers in clear text, in order, without overlaps."""
    if not MAY_HOLD.search(text):
        return []
    spans = [(s, e, "id") for s, e in find_id_numbers(text)]
    spans += [(s, e, "ph") for s, e in find_phones(text)]
    spans.sort()
    out: list[tuple[int, int, str]] = []
    for s, e, code in spans:
        if not out or s >= out[-1][1]:  # the finders never overlap; if they did, first wins
            out.append((s, e, code))
    return out


def _map_clear(text: str, fn) -> str:
    """Apply ``fn(span, code)`` to each identifier outside tokens; tokens kept as they are."""
    out, pos = [], 0
    for tok in TOKEN.finditer(text):
        out.append(_map_plain(text[pos : tok.start()], fn))
        out.append(tok.group())
        pos = tok.end()
    out.append(_map_plain(text[pos:], fn))
    return "".join(out)


def _map_plain(part: str, fn) -> str:
    spans = _identifiers(part)
    if not spans:
        return part
    out, pos = [], 0
    for s, e, code in spans:
        out += [part[pos:s], fn(part[s:e], code)]
        pos = e
    out.append(part[pos:])
    return "".join(out)


def _masked(value: str) -> str:
    # The value is exactly one span a finder reported, so mask_text masks it by its
    # kind and keeps its layout (separators, full-width digits); anything it would
    # leave unchanged is hidden completely.
    shown = mask_text(value)
    return shown if shown != value else "*" * len(value)


def seal(text: str | None, cipher: FieldCipher, *, max_len: int | None = None) -> str | None:
    """Replace every ID number and mobile number in a text by an encrypted token.

    Parameters
    ----------
    text : str or None
        Free text as received (narrative, address, note).
    cipher : FieldCipher
        The store's field cipher.
    max_len : int, optional
        Length of a bounded column. Tokens are about 60 characters; when the sealed
        text would not fit, the identifiers are stored masked instead (not
        recoverable, but never in clear and never refused by the column).

    Returns
    -------
    str or None
        The text with tokens in place of identifiers; unchanged when it holds none.
        Idempotent: tokens already present are kept as they are.
    """
    if text is None or not MAY_HOLD.search(text):
        return text
    sealed = _map_clear(text, lambda v, code: _token(code, v, cipher))
    if max_len is not None and len(sealed) > max_len:
        return _map_clear(text, lambda v, code: _masked(v))
    return sealed


def reveal(
    text: str | None, cipher: FieldCipher, *, mask_ids: bool, mask_phones: bool
) -> str | None:
    """A stored text as a viewer sees it: tokens back to values, masked by policy.

    Parameters
    ----------
    text : str or None
        Text as stored (sealed, or written before sealing existed).
    cipher : FieldCipher
        The store's field cipher.
    mask_ids, mask_phones : bool
        Whether the viewer's policy masks ID numbers / phones (the structured
        fields' kinds ``id_number`` and ``phone``). Identifiers still in clear in
        old text are masked by the same rule.

    Returns
    -------
    str or None
        The text to show. A token that does not decrypt shows ``UNREADABLE``;
        this function never raises on stored text.
    """
    if text is None:
        return None
    hide = {"id": mask_ids, "ph": mask_phones, "raw": True}

    def shown(value: str, code: str) -> str:
        return _masked(value) if hide[code] else value

    def token(tok: re.Match) -> str:
        code = tok.group(1)
        value = _open(tok, cipher) if code != "raw" else None
        return UNREADABLE if value is None else shown(value, code)

    out, pos = [], 0
    for tok in TOKEN.finditer(text):
        out += [_map_plain(text[pos : tok.start()], shown), token(tok)]
        pos = tok.end()
    out.append(_map_plain(text[pos:], shown))
    return "".join(out)


def conceal(text: str | None) -> str | None:
    """A stored text with every identifier hidden, for places without cipher or policy.

    Tokens become a fixed run of stars (the value is not decrypted); identifiers
    still in clear are masked as ``hub.security.masking.mask_text`` does.
    """
    if text is None:
        return None
    if "⟦" not in text:
        return mask_text(text)
    out, pos = [], 0
    for tok in TOKEN.finditer(text):
        out += [mask_text(text[pos : tok.start()]), _CONCEALED[tok.group(1)]]
        pos = tok.end()
    out.append(mask_text(text[pos:]))
    return "".join(out)


def holds_identifier(text: str | None) -> bool:
    """Whether a text still holds an ID number or phone in clear (outside tokens)."""
    if not text or not MAY_HOLD.search(text):
        return False
    return any(_identifiers(part) for part in TOKEN.split(text)[::4])


def seal_value(value: str, cipher: FieldCipher) -> str:
    """A whole value (a rejected feed row) as one encrypted token."""
    return _token("raw", value, cipher)


def open_value(stored: str, cipher: FieldCipher) -> str | None:
    """The value sealed by ``seal_value``; None when it does not decrypt.

    A stored value that is not a token (written before rows were sealed) is
    returned as it is: callers mask what they show.
    """
    tok = TOKEN.fullmatch(stored)
    if tok is None:
        return stored
    if tok.group(1) != "raw":
        return None
    return _open(tok, cipher)


def reseal(text: str | None, cipher: FieldCipher, *, max_len: int | None = None) -> str | None:
    """Tokens under a retired key re-encrypted under the current one, and identifiers
    still in clear (text stored before sealing existed) sealed.

    A token that does not decrypt is kept as it is: it is not the text's to lose. In a
    bounded column (``max_len``) re-encrypted tokens that would no longer fit stay
    under their old key, which the key ring still opens.
    """
    if text is None or "⟦" not in text:
        return seal(text, cipher, max_len=max_len)

    def again(tok: re.Match) -> str:
        if tok.group(2) == cipher.key_id:
            return tok.group()
        value = _open(tok, cipher)
        return tok.group() if value is None else _token(tok.group(1), value, cipher)

    renewed = TOKEN.sub(again, text)
    if max_len is not None and len(renewed) > max_len:
        renewed = text
    return seal(renewed, cipher, max_len=max_len)
