"""Endpoint URL resolution, entity addressing and TLS trust (docs/garm-protocol.md#github-client,
docs/garm-protocol.md#bootstrapinstance row 3)."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest

from pygarm.runner.github import (
    GithubClient,
    GithubConfigError,
    GithubEndpointConfig,
    GithubEntity,
    GithubTransportError,
    PATCredentials,
    build_ssl_context,
    resolve_api_base_url,
)
from pygarm.testing.fake_github import DEFAULT_PAT, FakeGithub, FakeGithubServer

from .conftest import TLSFiles


@pytest.mark.parametrize(
    ("configured", "resolved"),
    [
        ("https://api.github.com/", "https://api.github.com/"),
        ("https://api.github.com", "https://api.github.com/"),
        ("http://127.0.0.1:18080/", "http://127.0.0.1:18080/api/v3/"),
        ("http://127.0.0.1:18080", "http://127.0.0.1:18080/api/v3/"),
        ("https://ghes.example.com", "https://ghes.example.com/api/v3/"),
        ("https://ghes.example.com/api/v3", "https://ghes.example.com/api/v3/"),
        ("https://corp.api.example.com/", "https://corp.api.example.com/"),
    ],
)
def test_api_base_url_resolution(configured: str, resolved: str) -> None:
    """docs/garm-protocol.md#github-client: go-github's ``WithEnterpriseURLs`` rule."""
    assert resolve_api_base_url(configured) == resolved


def test_entity_prefixes_and_repo_urls() -> None:
    """docs/garm-protocol.md#github-calls path prefixes; docs/garm-protocol.md#bootstrapinstance row 3
    ``repo_url`` per kind."""
    repo = GithubEntity.repository("octo", "hello")
    org = GithubEntity.organization("octo")
    ent = GithubEntity.enterprise("acme")
    assert (repo.api_prefix, org.api_prefix, ent.api_prefix) == (
        "repos/octo/hello",
        "orgs/octo",
        "enterprises/acme",
    )
    base = "http://127.0.0.1:18080"
    assert repo.html_url(base) == "http://127.0.0.1:18080/octo/hello"
    assert org.html_url(base) == "http://127.0.0.1:18080/octo"
    assert ent.html_url(base) == "http://127.0.0.1:18080/enterprises/acme"


def test_entity_validation() -> None:
    with pytest.raises(ValueError):
        GithubEntity.repository("", "hello")
    with pytest.raises(ValueError):
        GithubEntity.organization("")


def test_ssl_context_trusts_only_the_bundle(make_tls: Callable[[str], TLSFiles]) -> None:
    """docs/garm-protocol.md#github-client: with a CA bundle, roots = that bundle only (not the system store);
    TLS ≥ 1.2."""
    tls = make_tls("unit")
    context = build_ssl_context(b"# comment \xc3\xa9 in UTF-8\n" + tls.ca_pem)
    subjects = [cert["subject"] for cert in context.get_ca_certs()]
    assert subjects == [((("commonName", "pygarm test CA unit"),),)]
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_ssl_context_without_bundle_uses_system_roots() -> None:
    context = build_ssl_context(None)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert build_ssl_context(b"").verify_mode is ssl.CERT_REQUIRED  # empty = unset, as in GARM


def test_bad_bundle_is_rejected_without_quoting_it() -> None:
    with pytest.raises(GithubConfigError, match=r"^failed to parse CA cert$"):
        build_ssl_context(b"not a certificate")
    with pytest.raises(GithubConfigError):
        build_ssl_context(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


async def test_https_endpoint_honours_ca_bundle(make_tls: Callable[[str], TLSFiles]) -> None:
    """End to end: the endpoint's bundle verifies the fake's certificate; another CA's bundle does not."""
    tls = make_tls("server")
    other = make_tls("other")
    fake = FakeGithub()
    with FakeGithubServer(fake, ssl_certfile=str(tls.cert_file), ssl_keyfile=str(tls.key_file)) as server:
        repo = GithubEntity.repository("octo", "hello")
        trusted = GithubEndpointConfig(api_base_url=server.api_base_url, ca_cert_bundle=tls.ca_pem)
        async with GithubClient(trusted, PATCredentials(DEFAULT_PAT), repo, timeout=10) as client:
            assert await client.list_runner_applications()
        untrusted = GithubEndpointConfig(api_base_url=server.api_base_url, ca_cert_bundle=other.ca_pem)
        async with GithubClient(untrusted, PATCredentials(DEFAULT_PAT), repo, timeout=10) as client:
            with pytest.raises(GithubTransportError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.list_runner_applications()
    assert server.api_base_url.startswith("https://127.0.0.1:")
    assert len(fake.calls) == 1  # the untrusted client never got past the handshake
