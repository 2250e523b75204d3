"""GitHub App authentication: a JWT signed with the app's key, traded for an installation token.

This is what ``ghinstallation`` does for GARM (docs/garm-protocol.md#github-client): the JWT (RS256, ``iss`` =
app ID, issued 30 s in the past, valid 2 min) is sent as ``Authorization: Bearer`` to
``POST app/installations/<installation_id>/access_tokens``; the answer's ``token`` then authorizes API calls
as ``Authorization: token <token>`` until one minute before its ``expires_at``.

Deliberate divergence (docs/garm-protocol.md#github-client): GARM v0.1.5 always asks
``https://api.github.com`` for the token, even for a GHES endpoint. pygarm asks the endpoint's own API base,
which is what a GHES app needs and is the same URL for github.com.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC
from typing import Final

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import ValidationError

from pygarm.runner.github.endpoint import AppCredentials
from pygarm.runner.github.errors import GithubConfigError, GithubError, GithubTransportError, error_for_status
from pygarm.runner.github.models import InstallationToken

JWT_BACKDATE_SECONDS: Final = 30
"""ghinstallation dates the JWT this far back so a server clock slightly behind ours still accepts it."""

JWT_LIFETIME_SECONDS: Final = 120
"""ghinstallation's JWT lifetime; it is used once, right away (GitHub allows at most 10 minutes)."""

TOKEN_REFRESH_MARGIN_SECONDS: Final = 60
"""Refresh an installation token this long before it expires, as ghinstallation does."""

ACCEPT_HEADER: Final = "application/vnd.github.v3+json"


def load_app_private_key(pem: bytes) -> RSAPrivateKey:
    """Parse the app's PEM private key (PKCS#1 ``RSA PRIVATE KEY`` or PKCS#8); the error never quotes it."""
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise GithubConfigError("failed to parse github app private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise GithubConfigError("github app private key is not an RSA key")
    return key


class InstallationTokenSource:
    """Hands out a valid installation token, fetching a new one only when the cached one is near expiry.

    ``client`` is the GitHub client's own httpx client, so the token request uses the same TLS settings.
    ``clock`` returns Unix time in seconds; tests replace it to move time forward.
    """

    def __init__(
        self,
        credentials: AppCredentials,
        *,
        api_base_url: str,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app_id = credentials.app_id
        self._installation_id = credentials.installation_id
        self._key = load_app_private_key(credentials.private_key)
        self._url = f"{api_base_url}app/installations/{credentials.installation_id}/access_tokens"
        self._client = client
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def app_jwt(self) -> str:
        """A fresh app JWT (what authorizes the token request)."""
        issued_at = int(self._clock()) - JWT_BACKDATE_SECONDS
        claims = {"iss": str(self._app_id), "iat": issued_at, "exp": issued_at + JWT_LIFETIME_SECONDS}
        return jwt.encode(claims, self._key, algorithm="RS256")

    async def token(self) -> str:
        """The cached installation token, refreshed first if it expires within the margin."""
        async with self._lock:  # one refresh at a time; concurrent callers reuse its result
            if self._token is None or self._expires_at - TOKEN_REFRESH_MARGIN_SECONDS <= self._clock():
                self._token, self._expires_at = await self._fetch()
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        headers = {"Authorization": f"Bearer {self.app_jwt()}", "Accept": ACCEPT_HEADER}
        where = f"could not refresh installation id {self._installation_id}'s token: POST {self._url}"
        try:
            response = await self._client.post(self._url, headers=headers)
        except httpx.HTTPError as exc:
            raise GithubTransportError(f"{where}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise error_for_status(response.status_code, f"{where}: {response.status_code}")
        try:
            answer = InstallationToken.model_validate_json(response.content)
        except ValidationError:
            raise GithubError(f"{where}: malformed response", status=response.status_code) from None
        expires_at = answer.expires_at
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return answer.token, expires_at.timestamp()
