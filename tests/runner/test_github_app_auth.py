"""GitHub App credentials: RS256 JWT → installation token, cached until near expiry
(docs/garm-protocol.md#github-client)."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pygarm.runner.github import (
    AppCredentials,
    GithubClient,
    GithubConfigError,
    GithubEndpointConfig,
    GithubEntity,
    GithubUnauthorizedError,
)
from pygarm.testing.fake_github import FakeGithubServer

APP_ID = 4242
INSTALLATION_ID = 77
REPO = GithubEntity.repository("octo", "hello")


@pytest.fixture
def app_github(fake_github: FakeGithubServer, rsa_public_pem: bytes) -> FakeGithubServer:
    fake_github.fake.app_id = APP_ID
    fake_github.fake.app_public_key = rsa_public_pem
    return fake_github


def app_client(server: FakeGithubServer, private_key: bytes) -> GithubClient:
    endpoint = GithubEndpointConfig(api_base_url=server.api_base_url)
    credentials = AppCredentials(app_id=APP_ID, installation_id=INSTALLATION_ID, private_key=private_key)
    return GithubClient(endpoint, credentials, REPO, timeout=10)


async def test_installation_token_is_fetched_once_and_reused(
    app_github: FakeGithubServer, rsa_pkcs1_pem: bytes
) -> None:
    """The JWT goes to ``app/installations/<id>/access_tokens``; API calls then send ``token <token>``."""
    async with app_client(app_github, rsa_pkcs1_pem) as client:
        await client.list_runner_applications()
        await client.list_runners()
    calls = app_github.fake.calls
    assert [c.path for c in calls] == [
        f"/api/v3/app/installations/{INSTALLATION_ID}/access_tokens",
        "/api/v3/repos/octo/hello/actions/runners/downloads",
        "/api/v3/repos/octo/hello/actions/runners",
    ]
    token_call = calls[0]
    assert token_call.method == "POST"
    assert token_call.headers["accept"] == "application/vnd.github.v3+json"
    scheme, _, app_jwt = token_call.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    header = jwt.get_unverified_header(app_jwt)
    claims = jwt.decode(app_jwt, options={"verify_signature": False})
    assert header["alg"] == "RS256"
    assert claims["iss"] == str(APP_ID)
    assert claims["exp"] - claims["iat"] == 120  # ghinstallation: valid 2 min from iat
    assert abs(claims["iat"] - (time.time() - 30)) < 5  # issued 30 s in the past
    issued = next(iter(app_github.fake.installation_tokens))
    assert calls[1].headers["authorization"] == f"token {issued}"
    assert calls[2].headers["authorization"] == f"token {issued}"


@pytest.mark.parametrize(("ttl", "fetches"), [(3600, 1), (65, 1), (55, 2)])
async def test_token_is_refreshed_within_a_minute_of_expiry(
    app_github: FakeGithubServer, rsa_pkcs1_pem: bytes, ttl: int, fetches: int
) -> None:
    """ghinstallation refreshes 1 min before ``expires_at``: a token with less left is replaced at once."""
    app_github.fake.installation_token_ttl = ttl
    async with app_client(app_github, rsa_pkcs1_pem) as client:
        await client.list_runner_applications()
        await client.list_runner_applications()
    assert len(app_github.fake.calls_to("POST", "/access_tokens")) == fetches


async def test_concurrent_callers_share_one_refresh(
    app_github: FakeGithubServer, rsa_pkcs1_pem: bytes
) -> None:
    async with app_client(app_github, rsa_pkcs1_pem) as client:
        await asyncio.gather(*(client.list_runner_applications() for _ in range(5)))
    assert len(app_github.fake.calls_to("POST", "/access_tokens")) == 1


async def test_wrong_key_is_unauthorized(app_github: FakeGithubServer) -> None:
    """A JWT GitHub cannot verify → 401 → GithubUnauthorizedError; the error never quotes the key."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    async with app_client(app_github, pem) as client:
        with pytest.raises(GithubUnauthorizedError) as caught:
            await client.list_runners()
    assert f"could not refresh installation id {INSTALLATION_ID}'s token" in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)


def test_bad_private_keys_are_rejected_without_quoting_them() -> None:
    endpoint = GithubEndpointConfig(api_base_url="http://127.0.0.1:1/")
    secret_garbage = b"-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n"
    with pytest.raises(GithubConfigError) as caught:
        GithubClient(endpoint, AppCredentials(1, 2, secret_garbage), REPO)
    assert "c2VjcmV0" not in str(caught.value)
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(GithubConfigError, match="not an RSA key"):
        GithubClient(endpoint, AppCredentials(1, 2, ec_key), REPO)


def test_credentials_repr_hides_secrets(rsa_pkcs1_pem: bytes) -> None:
    from pygarm.runner.github import PATCredentials

    assert "ghp_secret" not in repr(PATCredentials("ghp_secret"))
    assert "PRIVATE" not in repr(AppCredentials(1, 2, rsa_pkcs1_pem))
