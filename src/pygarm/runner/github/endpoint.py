"""Where and as whom a GitHub client talks: the endpoint (URLs, CA bundle) and the credentials.

These are plain values built by the caller from the stored endpoint and credentials. Secret fields are
kept out of ``repr`` so that logging one of these objects cannot leak a token or a private key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

GHES_API_SUFFIX = "api/v3/"
"""go-github appends this to an enterprise base URL unless the URL already looks like an API host."""


@dataclass(frozen=True, slots=True)
class GithubEndpointConfig:
    """A GitHub endpoint (docs/garm-protocol.md#github-endpoint): ``base_url`` is the web UI, ``api_base_url``
    the API."""

    api_base_url: str
    base_url: str = ""
    upload_base_url: str = ""
    ca_cert_bundle: bytes | None = field(default=None, repr=False)
    """PEM certificates to trust instead of the system roots; ``None`` or empty means system roots."""

    @property
    def resolved_api_base_url(self) -> str:
        return resolve_api_base_url(self.api_base_url)


@dataclass(frozen=True, slots=True)
class PATCredentials:
    """A personal access token, sent as ``Authorization: Bearer <token>``
    (docs/garm-protocol.md#github-client)."""

    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """A GitHub App installation: the client trades a JWT signed with ``private_key`` (PEM, PKCS#1 or
    PKCS#8) for short-lived installation tokens."""

    app_id: int
    installation_id: int
    private_key: bytes = field(repr=False)


GithubAuth = PATCredentials | AppCredentials


def resolve_api_base_url(api_base_url: str) -> str:
    """go-github's ``WithEnterpriseURLs`` rule, which GARM applies to every endpoint
    (docs/garm-protocol.md#github-client).

    Add a trailing ``/``; then append ``api/v3/`` unless the path already ends with ``/api/v3/`` or the
    host starts with ``api.`` or contains ``.api.``. So ``https://api.github.com`` stays as it is and
    ``http://127.0.0.1:18080`` becomes ``http://127.0.0.1:18080/api/v3/``.
    """
    url = api_base_url if api_base_url.endswith("/") else api_base_url + "/"
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # Go checks URL.Host: host[:port], case kept
    if parts.path.endswith("/" + GHES_API_SUFFIX) or host.startswith("api.") or ".api." in host:
        return url
    return url + GHES_API_SUFFIX
