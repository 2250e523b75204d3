"""Errors raised by provider executors.

::

    GarmError (pygarm.errors)          500
    └── ProviderError                  the provider failed, or its answer was unusable
        └── ProviderTimeoutError       pygarm gave up waiting and killed the provider's process group

The message is what GARM would put in ``provider_fault`` (prefixed by the pool manager with e.g.
``creating instance: ``), so it follows GARM's wording (docs/garm-protocol.md#provider-execution,
docs/garm-protocol.md#provider-errors). It may contain the provider's stdout and stderr, never its stdin
(which carries the instance token).
"""

from __future__ import annotations

from pygarm.errors import GarmError


class ProviderError(GarmError):
    """GARM's ``ProviderError``: answered with 500 when it reaches the API, like any unexpected failure."""

    default_message = "provider error"

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        stdout: bytes = b"",
        stderr: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        """The process's exit status; negative for a signal; ``None`` if it never ran or was not the cause."""
        self.stdout = stdout
        self.stderr = stderr


class ProviderTimeoutError(ProviderError):
    """The provider ran longer than the executor's timeout and was killed (a pygarm addition: GARM waits)."""
