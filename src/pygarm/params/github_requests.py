"""Request bodies for GitHub endpoints and credentials, with GARM's ``Validate()`` rules
(docs/garm-protocol.md#request-bodies).

Checks run in GARM's order with GARM's messages, so a request GARM rejects gets GARM's answer. pygarm
adds a few checks *after* GARM's (empty or over-long names, an empty name on rename); they only fire for
requests GARM would accept and then fail on later (or store nonsense), and are listed in
``docs/compatibility.md``. Where GARM answers 500 because of ``fmt.Errorf`` wrapping (any App field error,
a key that is PEM but not PKCS#1), pygarm answers 400 with the message the spec gives.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key
from pydantic import Field

from pygarm.errors import BadRequestError
from pygarm.params.base import GoRequest
from pygarm.params.gojson import GoBytes

AUTH_TYPE_PAT = "pat"
AUTH_TYPE_APP = "app"
MAX_NAME_LENGTH = 64
"""Endpoint and credentials names are ``varchar(64)`` in GARM's schema and in pygarm's."""

GoInt64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""An ``int64``: Go's decoder rejects numbers outside the range, so does this (→ ``invalid request``)."""

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([^\r\n-]*)-----[ \t]*\r?\n(.*?)-----END \1-----",
    re.DOTALL,
)


def pem_blocks(data: bytes) -> list[bytes]:
    """The DER bodies of the PEM blocks in ``data``, like repeated ``pem.Decode``: text outside blocks is
    skipped, RFC 1421 headers (``Key: value`` lines, then a blank line) are dropped, and a block whose
    body is not base64 is skipped."""
    blocks = []
    for match in _PEM_BLOCK.finditer(data):
        body = match.group(2)
        lines = body.splitlines()
        if lines and b":" in lines[0]:
            blank = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
            lines = lines[blank + 1 :]
        try:
            blocks.append(base64.b64decode(b"".join(line.strip() for line in lines), validate=True))
        except (binascii.Error, ValueError):
            continue
    return blocks


def is_pem_certificate(data: bytes) -> bool:
    """GARM's ``ca_cert_bundle`` check: the first PEM block must hold an X.509 certificate."""
    blocks = pem_blocks(data)
    if not blocks:
        return False
    try:
        x509.load_der_x509_certificate(blocks[0])
    except ValueError:
        return False
    return True


def is_pkcs1_rsa_key(der: bytes) -> bool:
    """``x509.ParsePKCS1PrivateKey``: an RSA key in PKCS#1 form (``RSA PRIVATE KEY``), not PKCS#8.

    PKCS#1 ``RSAPrivateKey`` is ``SEQUENCE { INTEGER version, INTEGER modulus, … }`` whereas PKCS#8
    puts an ``AlgorithmIdentifier`` SEQUENCE after the version, so the tag after the version decides.
    """
    try:
        key = load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        return False
    if not isinstance(key, rsa.RSAPrivateKey):
        return False
    return _tag_after_version(der) == 0x02


def _tag_after_version(der: bytes) -> int | None:
    if len(der) < 2 or der[0] != 0x30:
        return None
    offset = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)  # skip the outer SEQUENCE's length octets
    if len(der) < offset + 2 or der[offset] != 0x02:
        return None
    offset += 2 + der[offset + 1]  # skip the version INTEGER (short form: it is one byte long)
    return der[offset] if len(der) > offset else None


def is_http_url(value: str) -> bool:
    """GARM's endpoint URL rule: ``url.Parse`` succeeds, scheme ``http`` or ``https``, non-empty host."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return False  # "net/url: invalid control character in URL"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port, as url.Parse fails
    except ValueError:
        return False
    host = parts.netloc.rpartition("@")[2]
    return parts.scheme in ("http", "https") and bool(host) and " " not in host


def _check_url(value: str, field: str) -> None:
    if not is_http_url(value):
        raise BadRequestError(f"invalid {field}")


def _check_ca_bundle(value: bytes | None) -> None:
    # Go tests ``!= nil``: an empty base64 string decodes to a non-nil empty slice and is invalid.
    if value is not None and not is_pem_certificate(value):
        raise BadRequestError("invalid ca_cert_bundle")


def _check_name(value: str) -> None:
    """pygarm's own rule, checked after GARM's: a name is the path key and a ``varchar(64)``."""
    if not value:
        raise BadRequestError("missing name")
    if len(value) > MAX_NAME_LENGTH:
        raise BadRequestError(f"name is too long (maximum {MAX_NAME_LENGTH} characters)")


class CreateGithubEndpointParams(GoRequest):
    """``POST /github/endpoints``."""

    name: str = ""
    description: str = ""
    api_base_url: str = ""
    upload_base_url: str = ""
    base_url: str = ""
    ca_cert_bundle: GoBytes | None = None

    def validate_params(self) -> None:
        for field in ("api_base_url", "upload_base_url", "base_url"):
            value = getattr(self, field)
            if not value:
                raise BadRequestError(f"missing {field}")
            _check_url(value, field)
        _check_ca_bundle(self.ca_cert_bundle)
        _check_name(self.name)


class UpdateGithubEndpointParams(GoRequest):
    """``PUT /github/endpoints/{name}``: absent or null fields stay as they are."""

    description: str | None = None
    api_base_url: str | None = None
    upload_base_url: str | None = None
    base_url: str | None = None
    ca_cert_bundle: GoBytes | None = None

    def validate_params(self) -> None:
        for field in ("api_base_url", "upload_base_url", "base_url"):
            value = getattr(self, field)
            if value is not None:
                _check_url(value, field)
        _check_ca_bundle(self.ca_cert_bundle)


class GithubPATParams(GoRequest):
    """``params.GithubPAT``."""

    oauth2_token: str = ""

    def validate_params(self) -> None:
        if not self.oauth2_token:
            raise BadRequestError("missing oauth2_token")

    def secret(self) -> dict[str, Any]:
        """The JSON GARM seals for a PAT."""
        return {"oauth2_token": self.oauth2_token}

    def __repr__(self) -> str:
        return "GithubPATParams(oauth2_token=<redacted>)"


class GithubAppParams(GoRequest):
    """``params.GithubApp``: ``private_key_bytes`` is the base64 of a PKCS#1 PEM private key."""

    app_id: GoInt64 = 0
    installation_id: GoInt64 = 0
    private_key_bytes: GoBytes | None = None

    def validate_params(self) -> None:
        if self.app_id == 0:
            raise BadRequestError("missing app_id")
        if self.installation_id == 0:
            raise BadRequestError("missing installation_id")
        if not self.private_key_bytes:
            raise BadRequestError("missing private_key_bytes")
        blocks = pem_blocks(self.private_key_bytes)
        if not blocks or not is_pkcs1_rsa_key(blocks[0]):
            raise BadRequestError("invalid private_key_bytes")

    def secret(self) -> dict[str, Any]:
        """The JSON GARM seals for an App (``private_key_bytes`` is encoded as base64 when sealed)."""
        return {
            "app_id": self.app_id,
            "installation_id": self.installation_id,
            "private_key_bytes": self.private_key_bytes or b"",
        }

    def __repr__(self) -> str:
        return (
            f"GithubAppParams(app_id={self.app_id}, installation_id={self.installation_id}, <key redacted>)"
        )


class CreateGithubCredentialsParams(GoRequest):
    """``POST /github/credentials``. ``pat`` and ``app`` are struct values in Go, so ``null`` or an
    absent key both mean an empty one."""

    name: str = ""
    description: str = ""
    endpoint: str = ""
    auth_type: str = ""
    pat: GithubPATParams | None = None
    app: GithubAppParams | None = None

    def validate_params(self) -> None:
        if not self.name:
            raise BadRequestError("missing name")
        if not self.endpoint:
            raise BadRequestError("missing endpoint")
        if self.auth_type not in (AUTH_TYPE_PAT, AUTH_TYPE_APP):
            raise BadRequestError("invalid auth_type")
        if self.auth_type == AUTH_TYPE_PAT:
            (self.pat or GithubPATParams()).validate_params()
        else:
            (self.app or GithubAppParams()).validate_params()
        _check_name(self.name)

    def secret(self) -> dict[str, Any]:
        if self.auth_type == AUTH_TYPE_PAT:
            return (self.pat or GithubPATParams()).secret()
        return (self.app or GithubAppParams()).secret()

    def __repr__(self) -> str:
        return f"CreateGithubCredentialsParams(name={self.name!r}, auth_type={self.auth_type!r}, <redacted>)"


class UpdateGithubCredentialsParams(GoRequest):
    """``PUT /github/credentials/{id}``: absent or null fields stay as they are; at most one of
    ``pat``/``app``, matching the credentials' type."""

    name: str | None = None
    description: str | None = None
    pat: GithubPATParams | None = None
    app: GithubAppParams | None = None

    def validate_params(self) -> None:
        if self.pat is not None and self.app is not None:
            raise BadRequestError("cannot update both PAT and App")
        if self.pat is not None:
            self.pat.validate_params()
        if self.app is not None:
            self.app.validate_params()
        if self.name is not None:
            _check_name(self.name)

    def secret(self) -> tuple[str, dict[str, Any]] | None:
        """``(auth_type, payload)`` of the new secret, or None when neither is given."""
        if self.pat is not None:
            return AUTH_TYPE_PAT, self.pat.secret()
        if self.app is not None:
            return AUTH_TYPE_APP, self.app.secret()
        return None

    def __repr__(self) -> str:
        return f"UpdateGithubCredentialsParams(name={self.name!r}, <secret redacted>)"


__all__ = [
    "AUTH_TYPE_APP",
    "AUTH_TYPE_PAT",
    "CreateGithubCredentialsParams",
    "CreateGithubEndpointParams",
    "GithubAppParams",
    "GithubPATParams",
    "UpdateGithubCredentialsParams",
    "UpdateGithubEndpointParams",
    "is_http_url",
    "is_pem_certificate",
    "is_pkcs1_rsa_key",
    "pem_blocks",
]
