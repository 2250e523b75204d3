"""The instance JWT: the bearer token a runner uses on ``/api/v1/callbacks`` and ``/api/v1/metadata``
(docs/garm-protocol.md#instance-token, ``garm@v0.1.5 auth/instance_middleware.go``).

The pool manager mints one right before every provider ``CreateInstance`` call and hands it to the
provider as the ``BootstrapInstance`` ``instance-token``; each retry therefore gets a fresh token, and
the ``create_attempt`` claim lets the middleware (``api/instance_auth.py``) reject tokens of earlier
attempts. Tokens are HS256, signed with the same ``[jwt_auth] secret`` as user tokens, because GARM does
so and a runner installed by GARM must keep working against pygarm.

Claims, in GARM's wire order: ``id`` (instance UUID), ``name`` (instance name), ``provider_id`` (**the
pool UUID**: GARM's struct field is ``PoolID`` with the JSON tag ``provider_id``,
docs/garm-protocol.md#instance-token), ``scope`` (``repository``/``organization``/``enterprise``), ``entity``
(``owner/repo`` or the org / enterprise name), ``create_attempt``, ``iss`` = ``garm`` and ``exp``. There is no
``iat``, ``nbf``, ``sub``, ``aud`` or ``jti``. Lifetime: the pool's ``runner_bootstrap_timeout`` minutes (0
means 20) plus GARM's 5-minute reap interval, so a runner that has not reported by the time the reaper would
remove it cannot use its token any more.

Never log a token: it is a credential for the instance until it expires.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import jwt

from pygarm.errors import UnauthorizedError

INSTANCE_TOKEN_ISSUER: Final = "garm"
SIGNING_ALGORITHM: Final = "HS256"
ACCEPTED_ALGORITHMS: Final = ["HS256", "HS384", "HS512"]
"""GARM accepts any HMAC algorithm when verifying (``*jwt.SigningMethodHMAC``); it signs with HS256."""
DEFAULT_BOOTSTRAP_TIMEOUT_MINUTES: Final = 20
"""GARM's ``RunnerTimeout()`` maps a pool's ``runner_bootstrap_timeout`` of 0 to 20 minutes."""
POOL_REAP_TIMEOUT_SECONDS: Final = 5 * 60
"""GARM's ``PoolReapTimeoutInterval``: added to the bootstrap timeout so the token outlives the reaper's
check for the instance (docs/garm-protocol.md#instance-token)."""


def token_ttl_seconds(bootstrap_timeout_minutes: int) -> int:
    """How long a token minted for a pool with this ``runner_bootstrap_timeout`` stays valid."""
    minutes = bootstrap_timeout_minutes or DEFAULT_BOOTSTRAP_TIMEOUT_MINUTES
    return minutes * 60 + POOL_REAP_TIMEOUT_SECONDS


def entity_claim(kind: str, owner: str, name: str) -> str:
    """The ``entity`` claim: GARM's ``GithubEntity.String()`` (``owner/repo``, else the name)."""
    return f"{owner}/{name}" if kind == "repository" else name


@dataclass(frozen=True, slots=True)
class InstanceClaims:
    """The verified claims of an instance token. ``pool_id`` is read from the ``provider_id`` claim."""

    id: str
    name: str
    pool_id: str
    scope: str
    entity: str
    create_attempt: int
    expires_at: int | None


class InstanceTokenService:
    """Mints and verifies instance tokens with the ``[jwt_auth] secret``.

    Cheap to build; the pool managers and the instance middleware may each hold their own. ``clock``
    (seconds since the epoch) exists for tests of expiry.
    """

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("the instance token secret must not be empty")
        self._secret = secret.encode()
        self._clock = clock

    def mint(
        self,
        *,
        instance_id: str,
        instance_name: str,
        pool_id: str,
        scope: str,
        entity: str,
        create_attempt: int,
        bootstrap_timeout_minutes: int,
    ) -> str:
        """A token for one create attempt of one instance (docs/garm-protocol.md#instance-token).

        ``scope`` is the entity kind's value (``repository``/``organization``/``enterprise``), ``entity``
        its display name (:func:`entity_claim`), ``create_attempt`` the instance's value at mint time
        (0 for the first attempt) and ``bootstrap_timeout_minutes`` the pool's
        ``runner_bootstrap_timeout`` (0 means 20).
        """
        claims: dict[str, Any] = {
            "id": instance_id,
            "name": instance_name,
            "provider_id": pool_id,
            "scope": str(scope),
            "entity": entity,
            "create_attempt": create_attempt,
            "iss": INSTANCE_TOKEN_ISSUER,
            "exp": int(self._clock()) + token_ttl_seconds(bootstrap_timeout_minutes),
        }
        return jwt.encode(claims, self._secret, algorithm=SIGNING_ALGORITHM)

    def verify(self, token: str) -> InstanceClaims:
        """Check the signature (any HMAC algorithm) and ``exp`` (no leeway, only when present, as
        GARM's JWT library does); raise :class:`UnauthorizedError` otherwise or when a claim has the
        wrong JSON type (Go's decoder would fail on it). Whether the instance exists and may still use
        the token is the middleware's business."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=ACCEPTED_ALGORITHMS,
                options={"require": [], "verify_aud": False, "verify_iss": False, "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("invalid instance token") from exc
        exp = claims.get("exp")
        if exp is not None:
            if not isinstance(exp, (int, float)) or isinstance(exp, bool):
                raise UnauthorizedError("invalid instance token")
            if self._clock() >= exp:
                raise UnauthorizedError("instance token expired")
        strings = {key: claims.get(key, "") for key in ("id", "name", "provider_id", "scope", "entity")}
        attempt = claims.get("create_attempt", 0)
        if not all(isinstance(value, str) for value in strings.values()):
            raise UnauthorizedError("invalid instance token")
        if not isinstance(attempt, int) or isinstance(attempt, bool):
            raise UnauthorizedError("invalid instance token")
        return InstanceClaims(
            id=strings["id"],
            name=strings["name"],
            pool_id=strings["provider_id"],
            scope=strings["scope"],
            entity=strings["entity"],
            create_attempt=attempt,
            expires_at=int(exp) if exp is not None else None,
        )


__all__ = [
    "DEFAULT_BOOTSTRAP_TIMEOUT_MINUTES",
    "INSTANCE_TOKEN_ISSUER",
    "POOL_REAP_TIMEOUT_SECONDS",
    "InstanceClaims",
    "InstanceTokenService",
    "entity_claim",
    "token_ttl_seconds",
]
