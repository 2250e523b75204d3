"""Secrets at rest: sealed with a key derived from ``[database] passphrase``.

The layout follows GARM's idea (``util.Seal``, docs/garm-protocol.md#sealing: a random 32-byte nonce salts an
HKDF-SHA256 derivation of the passphrase) with AES-256-GCM as the cipher, so every sealed value has its own
key and tampering is detected. The database file therefore never contains a webhook secret, a PAT, an App
private key or a JIT configuration in plain text.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pygarm.errors import GarmError

_FORMAT_VERSION = b"\x01"
_SALT_LEN = 32
_NONCE_LEN = 12


class SealError(GarmError):
    """A sealed value could not be opened: wrong passphrase or corrupted data."""


class Sealer:
    """Seals and opens byte strings with the configured passphrase."""

    __slots__ = ("_passphrase",)

    def __init__(self, passphrase: str) -> None:
        self._passphrase = passphrase.encode()

    def _key(self, salt: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"pygarm-seal").derive(
            self._passphrase
        )

    def seal(self, plaintext: bytes) -> bytes:
        salt = os.urandom(_SALT_LEN)
        nonce = os.urandom(_NONCE_LEN)
        return _FORMAT_VERSION + salt + nonce + AESGCM(self._key(salt)).encrypt(nonce, plaintext, None)

    def unseal(self, sealed: bytes) -> bytes:
        if not sealed.startswith(_FORMAT_VERSION):
            raise SealError("unknown sealed value format")
        salt = sealed[1 : 1 + _SALT_LEN]
        nonce = sealed[1 + _SALT_LEN : 1 + _SALT_LEN + _NONCE_LEN]
        try:
            return AESGCM(self._key(salt)).decrypt(nonce, sealed[1 + _SALT_LEN + _NONCE_LEN :], None)
        except InvalidTag as exc:
            raise SealError("sealed value cannot be opened with the configured passphrase") from exc

    def seal_text(self, plaintext: str) -> bytes:
        return self.seal(plaintext.encode())

    def unseal_text(self, sealed: bytes) -> str:
        return self.unseal(sealed).decode()
