"""Runner names: ``<runner_prefix>-<12 base62 characters>`` (docs/garm-protocol.md#runner-names-and-labels).

GARM builds the suffix from a ``teris-io/shortid`` value re-encoded as base62 (observed: 12 alphanumeric
characters, e.g. ``garm-ofvzmvXOW7iG``). pygarm draws the 12 characters straight from the OS's CSPRNG:
same alphabet and length, 62**12 ≈ 3.2e21 names, so a clash with an existing name (which the store would
reject with 409 anyway) is not a practical concern.
"""

from __future__ import annotations

import secrets
import string
from typing import Final

from pygarm.params.entity_requests import DEFAULT_RUNNER_PREFIX

BASE62_ALPHABET: Final = string.digits + string.ascii_uppercase + string.ascii_lowercase
"""The characters GARM's names use after the prefix."""
RUNNER_ID_LENGTH: Final = 12
"""Length of the random part; what GARM v0.1.5 produces."""


def new_runner_id(length: int = RUNNER_ID_LENGTH) -> str:
    """A random base62 string of ``length`` characters."""
    return "".join(secrets.choice(BASE62_ALPHABET) for _ in range(length))


def new_runner_name(prefix: str) -> str:
    """``<prefix>-<id>``; an empty prefix means GARM's default ``garm``."""
    return f"{prefix or DEFAULT_RUNNER_PREFIX}-{new_runner_id()}"


__all__ = ["BASE62_ALPHABET", "RUNNER_ID_LENGTH", "new_runner_id", "new_runner_name"]
