"""Field encryption (SM4-GCM) and blind indexes (HMAC-SM3) for personal identifiers.

ID numbers and phones are stored as ciphertext; equality search uses a keyed blind
index so that nothing is decrypted to search. The field name is bound into both, so a
ciphertext or index cannot be moved from one column to another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_NONCE = 12
_TAG = 16


def sm3_hex(data: bytes) -> str:
    """SM3 digest (GB/T 32905) as hex, from OpenSSL through hashlib."""
    return hashlib.new("sm3", data).hexdigest()


class DecryptionError(Exception):
    """Ciphertext does not decrypt under the given key (wrong key or tampered)."""


@dataclass(frozen=True)
class FieldCipher:
    """SM4-GCM for one key id, plus the blind-index key.

    Parameters
    ----------
    key
        16-byte SM4 key.
    key_id
        Stored beside each ciphertext so that keys can be rotated.
    index_key
        Secret for the HMAC-SM3 blind index.
    """

    key: bytes
    key_id: str
    index_key: bytes

    @classmethod
    def from_settings(cls, settings) -> FieldCipher:
        key = bytes.fromhex(settings.sm4_key_hex)
        if len(key) != 16:
            raise ValueError("HUB_SM4_KEY must be 32 hex characters (a 128-bit SM4 key)")
        return cls(key, settings.sm4_key_id, settings.blind_index_key.encode())

    def encrypt(self, field: str, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE)
        enc = Cipher(algorithms.SM4(self.key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(field.encode())
        body = enc.update(plaintext.encode()) + enc.finalize()
        return nonce + body + enc.tag

    def decrypt(self, field: str, blob: bytes) -> str:
        nonce, body, tag = blob[:_NONCE], blob[_NONCE:-_TAG], blob[-_TAG:]
        dec = Cipher(algorithms.SM4(self.key), modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(field.encode())
        try:
            return (dec.update(body) + dec.finalize()).decode()
        except InvalidTag:
            raise DecryptionError(f"{field}: ciphertext does not match key {self.key_id}") from None

    def blind_index(self, field: str, normalized_value: str) -> str:
        """HMAC-SM3 of the normalised value; equal values give equal indexes."""
        msg = f"{field}:{normalized_value}".encode()
        return hmac.new(self.index_key, msg, "sm3").hexdigest()
