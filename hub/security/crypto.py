"""Field encryption (SM4-GCM) and blind indexes (HMAC-SM3) for personal identifiers.

ID numbers and phones are stored as ciphertext; equality search uses a keyed blind
index so that nothing is decrypted to search. The field name is bound into both, so a
ciphertext or index cannot be moved from one column to another.

Every ciphertext row stores the id of the key it was written under, and decryption uses
that key from a ring (the current key plus the retired ones in HUB_SM4_OLD_KEYS), so that
rows still under a retired key stay readable after a rotation until they are re-encrypted.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_NONCE = 12
_TAG = 16
#: A key id: stored in 16-wide `key_id` columns, written inside narrative tokens
#: (``⟦ph:<key id>:…⟧``) and in HUB_SM4_OLD_KEYS (``id:hex,…``), so none of those
#: separators, no white space and no control character.
KEY_ID = r"[^\s:,⟦⟧\x00-\x1f\x7f]{1,16}"


def sm3_hex(data: bytes) -> str:
    """SM3 digest (GB/T 32905) as hex, from OpenSSL through hashlib."""
    return hashlib.new("sm3", data).hexdigest()


class DecryptionError(Exception):
    """Ciphertext does not decrypt under the given key (wrong key or tampered)."""


def parse_key_ring(raw: str) -> dict[str, bytes]:
    """Retired SM4 keys from `id:hex,id:hex` (HUB_SM4_OLD_KEYS), as key id -> key.

    Raises
    ------
    ValueError
        An entry that is not `id:32-hex-characters`, an id longer than 16 characters
        (the width of the `key_id` columns) or an id given twice.
    """
    ring: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key_id, _, hex_key = item.partition(":")
        key_id = key_id.strip()
        try:
            key = bytes.fromhex(hex_key.strip())
        except ValueError:
            key = b""
        if not re.fullmatch(KEY_ID, key_id) or len(key) != 16:
            raise ValueError(
                "HUB_SM4_OLD_KEYS takes id:hex pairs separated by commas, each id 1-16 "
                "characters without spaces, ':', ',', '⟦' or '⟧' and each key 32 hex "
                f"characters; {key_id or item!r} is not one"
            )
        if key_id in ring:
            raise ValueError(f"HUB_SM4_OLD_KEYS names key {key_id!r} twice")
        ring[key_id] = key
    return ring


@dataclass(frozen=True)
class FieldCipher:
    """SM4-GCM under the current key id (and the retired keys of the ring), plus the
    blind-index key.

    Parameters
    ----------
    key
        16-byte SM4 key: everything is encrypted under it.
    key_id
        Stored beside each ciphertext so that keys can be rotated.
    index_key
        Secret for the HMAC-SM3 blind index.
    old_keys
        Retired keys as (key id, key) pairs: they only decrypt.
    """

    key: bytes
    key_id: str
    index_key: bytes
    old_keys: tuple[tuple[str, bytes], ...] = ()

    def __post_init__(self) -> None:
        # An id that does not fit its column or its token would be cut or refused only
        # when the first row is written under it; every key must be SM4's 16 bytes.
        for key_id, key in ((self.key_id, self.key), *self.old_keys):
            if not isinstance(key_id, str) or not re.fullmatch(KEY_ID, key_id):
                raise ValueError(
                    f"key id {key_id!r}: 1-16 characters without spaces, ':', ',', '⟦' or '⟧'"
                )
            if len(key) != 16:
                raise ValueError(f"key {key_id!r} is not a 128-bit SM4 key")
        ids = [k for k, _ in self.old_keys]
        if len(set(ids)) != len(ids):
            raise ValueError("the key ring names a key id twice")

    @classmethod
    def from_settings(cls, settings) -> FieldCipher:
        key = bytes.fromhex(settings.sm4_key_hex)
        if len(key) != 16:
            raise ValueError("HUB_SM4_KEY must be 32 hex characters (a 128-bit SM4 key)")
        ring = parse_key_ring(settings.sm4_old_keys)
        if ring.get(settings.sm4_key_id, key) != key:
            raise ValueError(
                f"HUB_SM4_OLD_KEYS gives key {settings.sm4_key_id!r} a value other than HUB_SM4_KEY"
            )
        ring.pop(settings.sm4_key_id, None)
        return cls(key, settings.sm4_key_id, settings.blind_index_key.encode(), tuple(ring.items()))

    @property
    def ring(self) -> Mapping[str, bytes]:
        """Every key this cipher can decrypt with, by key id (the current one included)."""
        return {**dict(self.old_keys), self.key_id: self.key}

    def encrypt(self, field: str, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE)
        enc = Cipher(algorithms.SM4(self.key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(field.encode())
        body = enc.update(plaintext.encode()) + enc.finalize()
        return nonce + body + enc.tag

    def decrypt(self, field: str, blob: bytes, key_id: str | None = None) -> str:
        """Plaintext of `blob`, decrypted with the ring's key `key_id` (the id stored on
        the row; None means the current key).

        Raises
        ------
        DecryptionError
            The ring has no key of that id, or the ciphertext does not decrypt under it.
        """
        key_id = self.key_id if key_id is None else key_id
        key = self.key if key_id == self.key_id else dict(self.old_keys).get(key_id)
        if key is None:
            raise DecryptionError(
                f"{field}: no key {key_id!r} in the key ring (add it to HUB_SM4_OLD_KEYS)"
            )
        nonce, body, tag = blob[:_NONCE], blob[_NONCE:-_TAG], blob[-_TAG:]
        dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(field.encode())
        try:
            return (dec.update(body) + dec.finalize()).decode()
        except InvalidTag:
            raise DecryptionError(f"{field}: ciphertext does not match key {key_id}") from None

    def blind_index(self, field: str, normalized_value: str) -> str:
        """HMAC-SM3 of the normalised value; equal values give equal indexes."""
        msg = f"{field}:{normalized_value}".encode()
        return hmac.new(self.index_key, msg, "sm3").hexdigest()
