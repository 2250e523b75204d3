"""TLS settings for GitHub calls (docs/garm-protocol.md#github-client): the endpoint's CA bundle replaces the
system roots.

GARM builds an ``x509.CertPool`` from ``ca_cert_bundle`` when one is set (and only then trusts nothing
else), otherwise it uses the system pool; either way TLS 1.2 is the minimum. This module reproduces that
as an :class:`ssl.SSLContext` for httpx.
"""

from __future__ import annotations

import re
import ssl
from typing import Final

from pygarm.runner.github.errors import GithubConfigError

_PEM_CERTIFICATE: Final = re.compile(
    rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----"
)
"""One PEM certificate block; text around blocks (bundle comments, often UTF-8) is skipped, as Go does."""


def build_ssl_context(ca_cert_bundle: bytes | None) -> ssl.SSLContext:
    """A client context trusting exactly ``ca_cert_bundle`` (PEM), or the system roots when it is empty.

    Raises :class:`GithubConfigError` when the bundle holds no usable certificate; the message never
    quotes the bundle.
    """
    if ca_cert_bundle:
        blocks = _PEM_CERTIFICATE.findall(ca_cert_bundle)
        if not blocks:
            raise GithubConfigError("failed to parse CA cert")
        try:
            context = ssl.create_default_context(cadata=b"\n".join(blocks).decode("ascii"))
        except (ssl.SSLError, ValueError):
            raise GithubConfigError("failed to parse CA cert") from None
    else:
        context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
