"""The instance JWT (docs/garm-protocol.md#instance-token): GARM's claims in GARM's order, the pool ID in
``provider_id``, the TTL rule, and what :meth:`InstanceTokenService.verify` refuses."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from pygarm.errors import UnauthorizedError
from pygarm.runner.instance_token import (
    InstanceTokenService,
    entity_claim,
    token_ttl_seconds,
)

SECRET = "instance-token-test-secret-" + "0123456789abcdef" * 3
NOW = 1_700_000_000


def mint(service: InstanceTokenService, **changes: object) -> str:
    fields: dict[str, object] = {
        "instance_id": "6f1c1c0e-8a57-4d2e-9d3b-3a3c9a1f0b11",
        "instance_name": "garm-AbC123",
        "pool_id": "0d7f2a4e-1b9c-4f55-8e1a-9c3b2d4e5f60",
        "scope": "repository",
        "entity": "octo/hello",
        "create_attempt": 0,
        "bootstrap_timeout_minutes": 0,
    }
    fields.update(changes)
    return service.mint(**fields)  # type: ignore[arg-type]


def segment(token: str, index: int) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_claims_are_garms_in_wire_order() -> None:
    token = mint(InstanceTokenService(SECRET, clock=lambda: NOW), create_attempt=3)
    assert json.loads(segment(token, 0)) == {"alg": "HS256", "typ": "JWT"}
    claims = json.loads(segment(token, 1))
    assert list(claims) == ["id", "name", "provider_id", "scope", "entity", "create_attempt", "iss", "exp"]
    # the pool ID (docs/garm-protocol.md#instance-token)
    assert claims["provider_id"] == "0d7f2a4e-1b9c-4f55-8e1a-9c3b2d4e5f60"
    assert (claims["scope"], claims["entity"], claims["create_attempt"], claims["iss"]) == (
        "repository",
        "octo/hello",
        3,
        "garm",
    )
    assert claims["exp"] == NOW + 25 * 60  # bootstrap timeout 0 → 20 min, plus the 5-min reap interval


@pytest.mark.parametrize(("minutes", "ttl"), [(0, 25 * 60), (20, 25 * 60), (10, 15 * 60), (60, 65 * 60)])
def test_ttl(minutes: int, ttl: int) -> None:
    assert token_ttl_seconds(minutes) == ttl


def test_entity_claim() -> None:
    assert entity_claim("repository", "octo", "hello") == "octo/hello"
    assert entity_claim("organization", "", "octo") == "octo"
    assert entity_claim("enterprise", "", "ent") == "ent"


def test_verify_round_trip() -> None:
    service = InstanceTokenService(SECRET)
    claims = service.verify(mint(service, create_attempt=2))
    assert (claims.name, claims.pool_id, claims.create_attempt) == (
        "garm-AbC123",
        "0d7f2a4e-1b9c-4f55-8e1a-9c3b2d4e5f60",
        2,
    )
    assert claims.expires_at is not None and claims.expires_at > time.time()


def test_verify_refuses_other_secret_expired_and_unsigned() -> None:
    service = InstanceTokenService(SECRET)
    with pytest.raises(UnauthorizedError):
        service.verify(mint(InstanceTokenService("another-secret-" + "f" * 64)))
    with pytest.raises(UnauthorizedError):
        service.verify(mint(InstanceTokenService(SECRET, clock=lambda: time.time() - 3600)))
    unsigned = jwt.encode({"name": "garm-AbC123"}, key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(UnauthorizedError):
        service.verify(unsigned)
    with pytest.raises(UnauthorizedError):
        service.verify("not-a-token")


def test_verify_accepts_any_hmac_and_no_exp_like_garm() -> None:
    service = InstanceTokenService(SECRET)
    token = jwt.encode({"name": "x", "create_attempt": 1}, SECRET, algorithm="HS512")
    claims = service.verify(token)
    assert (claims.name, claims.create_attempt, claims.expires_at) == ("x", 1, None)


@pytest.mark.parametrize(
    "claims", [{"name": 5}, {"name": "x", "create_attempt": "0"}, {"name": "x", "exp": "soon"}]
)
def test_verify_refuses_wrongly_typed_claims(claims: dict[str, object]) -> None:
    with pytest.raises(UnauthorizedError):
        InstanceTokenService(SECRET).verify(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        InstanceTokenService("")
