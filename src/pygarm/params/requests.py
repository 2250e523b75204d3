"""Request bodies for auth, users and the controller (docs/garm-protocol.md#request-bodies)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pygarm.errors import BadRequestError
from pygarm.params.base import GoRequest
from pygarm.params.entity_requests import Uint


def has_scheme_and_host(url: str) -> bool:
    """Go's ``url.Parse`` check used by GARM: any scheme, but both a scheme and a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.scheme) and bool(parts.netloc)


class NewUserParams(GoRequest):
    """``POST /first-run``; ``is_admin``/``enabled`` cannot be set from JSON."""

    email: str = ""
    username: str = ""
    full_name: str = ""
    password: str = ""


class PasswordLoginParams(GoRequest):
    """``POST /auth/login``; ``username`` may be the e-mail address."""

    username: str = ""
    password: str = ""


class UpdateUserParams(GoRequest):
    """``PUT /users/{id}`` (pygarm extension): absent or null fields stay as they are."""

    full_name: str | None = None
    password: str | None = None
    enabled: bool | None = None


class UserPasswordParams(GoRequest):
    """``PUT /users/{id}/password`` (pygarm extension): the new password, checked like first-run's."""

    password: str = ""


class UpdateControllerParams(GoRequest):
    """``PUT /controller``: absent or null fields stay as they are."""

    metadata_url: str | None = None
    callback_url: str | None = None
    webhook_url: str | None = None
    minimum_job_age_backoff: Uint | None = None
    """Seconds; GARM's ``*uint``. Bounded by the ``INTEGER`` column (2^31-1): larger values answered 500
    on PostgreSQL and 2^63 on SQLite, and smaller ones that SQLite stored broke the job queue."""

    def validate_urls(self) -> None:
        for field in ("metadata_url", "callback_url", "webhook_url"):
            value = getattr(self, field)
            if value is not None and not has_scheme_and_host(value):
                raise BadRequestError(f"invalid {field}")
