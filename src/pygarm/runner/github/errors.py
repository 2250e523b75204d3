"""Errors of the GitHub client.

::

    GarmError (pygarm.errors)               500 if it reaches the API unhandled
    └── GithubError                         a GitHub call failed; ``status`` is GitHub's HTTP status or None
        ├── GithubUnauthorizedError         GitHub answered 401: the credentials are bad or revoked
        ├── GithubNotFoundError             GitHub answered 404 (entity gone, or no access to it)
        ├── GithubTransportError            no answer at all: connection, TLS or timeout failure
        └── GithubConfigError               unusable endpoint or credentials (CA bundle, private key)

The pool manager stops an entity's manager on :class:`GithubUnauthorizedError`
(docs/garm-protocol.md#github-calls: "401 → manager stopped") and tolerates :class:`GithubNotFoundError` when
removing a runner. Messages name the method, URL and status and GitHub's ``message``; they never contain a
token, a private key or a request body.
"""

from __future__ import annotations

from pygarm.errors import GarmError


class GithubError(GarmError):
    default_message = "github API error"

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GithubUnauthorizedError(GithubError):
    default_message = "github credentials were rejected"


class GithubNotFoundError(GithubError):
    default_message = "not found on github"


class GithubTransportError(GithubError):
    default_message = "could not reach github"


class GithubConfigError(GithubError):
    default_message = "invalid github endpoint or credentials"


def error_for_status(status: int, message: str) -> GithubError:
    """The error type for a non-success GitHub status."""
    if status == 401:
        return GithubUnauthorizedError(message, status=status)
    if status == 404:
        return GithubNotFoundError(message, status=status)
    return GithubError(message, status=status)
