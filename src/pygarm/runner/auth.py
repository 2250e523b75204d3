"""Users and tokens: first-run, login, JWT issue and verification (docs/garm-protocol.md#auth-chains,
docs/garm-protocol.md#metrics-auth).

Passwords are bcrypt-hashed; hashing and checking run in a worker thread because bcrypt deliberately
takes tens of milliseconds, which would stall every websocket on the event loop.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

import bcrypt
import jwt

from pygarm.errors import BadRequestError, ConflictError, NotFoundError, UnauthorizedError
from pygarm.params.models import User
from pygarm.runner.login_limit import LoginLimiter
from pygarm.store.users import UserCredentials, UserStore

JWT_ISSUER = "garm"
TOKEN_ID_LENGTH = 16
"""GARM's ``token_id`` is 16 random alphanumerics."""
ACCEPTED_ALGORITHMS = ["HS256", "HS384", "HS512"]
"""GARM accepts any HMAC algorithm on verification; it signs with HS256."""
MAX_USERNAME_LENGTH = 64
MAX_EMAIL_LENGTH = 254
MAX_FULL_NAME_LENGTH = 254
MIN_PASSWORD_SCORE = 4
"""GARM demands a zxcvbn score of 4 ("very unguessable")."""
MAX_PASSWORD_BYTES = 72
"""All of a password bcrypt reads."""
BCRYPT_ROUNDS = 10
"""Go's bcrypt.DefaultCost, which GARM uses."""
VERIFIED_TOKENS_KEPT = 1024
"""Verified tokens whose claims are kept; clients reuse one token for many requests."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who is calling, as established from a valid token."""

    user_id: str
    is_admin: bool
    full_name: str
    generation: int
    expires_at: float | None


class TokenService:
    """Issues and decodes GARM-compatible JWTs (HS256, claims of docs/garm-protocol.md#user-jwt)."""

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret.encode()
        self.ttl_seconds = ttl_seconds
        self._verified: dict[str, dict[str, Any]] = {}

    def _token_id(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(secrets.choice(alphabet) for _ in range(TOKEN_ID_LENGTH))

    def issue_user_token(self, user: User, generation: int) -> str:
        claims = {
            "user": user.id,
            "token_id": self._token_id(),
            "full_name": user.full_name,
            "is_admin": user.is_admin,
            "read_metrics": False,
            "generation": generation,
            "iss": JWT_ISSUER,
            "exp": int(time.time()) + self.ttl_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def issue_metrics_token(self) -> str:
        claims = {
            "user": "",
            "token_id": self._token_id(),
            "full_name": "",
            "is_admin": False,
            "read_metrics": True,
            "generation": 0,
            "iss": JWT_ISSUER,
            "exp": int(time.time()) + self.ttl_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def decode(self, token: str) -> dict[str, Any]:
        """Verify signature and, when present, ``exp``/``nbf`` (no leeway), as jwt v5 does in GARM.

        A verified token's claims are remembered (a bounded map): verifying the same token on every
        request was ~10 % of a request's CPU. ``exp`` and ``nbf`` are checked again on every use; the
        user behind the token is checked by the caller, on every use too.
        """
        cached = self._verified.get(token)
        if cached is not None:
            now = time.time()
            exp, nbf = cached.get("exp"), cached.get("nbf")
            expired = isinstance(exp, (int, float)) and now >= exp
            if expired or (isinstance(nbf, (int, float)) and now < nbf):
                del self._verified[token]
                raise UnauthorizedError("invalid token")
            return cached
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=ACCEPTED_ALGORITHMS,
                options={"require": [], "verify_aud": False, "verify_iss": False},
            )
        except jwt.PyJWTError as exc:
            raise UnauthorizedError("invalid token") from exc
        if not registered_claims_are_numbers(claims):
            raise UnauthorizedError("invalid token")
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = claims
        return claims


def is_json_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def registered_claims_are_numbers(claims: dict[str, Any]) -> bool:
    """``exp``, ``nbf`` and ``iat`` absent or JSON numbers, as golang-jwt's ``NumericDate`` decodes them in
    GARM (garm@v0.1.5 auth/jwt.go:35): PyJWT would take ``"exp": "123"`` through ``int()``, and the
    cached claims would then never expire (issue 8 #8)."""
    return all(key not in claims or is_json_number(claims[key]) for key in ("exp", "nbf", "iat"))


def hash_password_sync(password: str) -> str:
    """GARM's ``bcrypt.GenerateFromPassword``, which refuses more than 72 bytes (GARM: a 500; bcrypt 5
    raised ValueError here, also a 500)."""
    encoded = password.encode()
    if len(encoded) > MAX_PASSWORD_BYTES:
        raise BadRequestError(f"password is too long (at most {MAX_PASSWORD_BYTES} bytes)")
    return bcrypt.hashpw(encoded, bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()


_dummy_hashes: dict[int, str] = {}


def dummy_password_hash() -> str:
    """A hash at the current cost to check a password against when the user does not exist (or is
    disabled), so that such a failure takes as long as a wrong password (issue 8 #9: 4 ms against 108 ms
    told which names exist)."""
    rounds = BCRYPT_ROUNDS
    if rounds not in _dummy_hashes:
        _dummy_hashes[rounds] = hash_password_sync(secrets.token_urlsafe(24))
    return _dummy_hashes[rounds]


def check_password_sync(password: str, password_hash: str) -> bool:
    """GARM's ``bcrypt.CompareHashAndPassword``, which reads only the first 72 bytes of the password (hashes
    made by older Go bcrypt versions from longer passwords match them); bcrypt 5 raises on longer ones."""
    try:
        return bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], password_hash.encode())
    except ValueError:
        return False


def password_is_strong(password: str) -> bool:
    """zxcvbn score 4, as GARM requires (checked on the first 72 bytes bcrypt actually uses)."""
    from zxcvbn import zxcvbn  # imported lazily: building its dictionaries takes ~100 ms

    if not password:
        return False  # zxcvbn cannot score an empty string
    return int(zxcvbn(password[:72])["score"]) >= MIN_PASSWORD_SCORE


def validate_new_user(username: str, email: str, password: str, full_name: str = "") -> None:
    """GARM's first-run checks, in GARM's order and with its messages (docs/garm-protocol.md#first-run),
    plus the lengths of the ``VARCHAR(254)`` columns: PostgreSQL answered a longer e-mail address or full
    name with a 500 (SQLite, like GARM, stored it)."""
    if not username or not email:
        raise BadRequestError("missing username or email")
    if not _EMAIL.match(email) or len(email) > MAX_EMAIL_LENGTH:
        raise BadRequestError("invalid email address")
    if len(username) > MAX_USERNAME_LENGTH or not username.isalnum() or not username.isascii():
        raise BadRequestError("invalid username")
    if len(full_name) > MAX_FULL_NAME_LENGTH:
        raise BadRequestError(f"full_name is too long (maximum {MAX_FULL_NAME_LENGTH} characters)")
    if not password_is_strong(password):
        raise BadRequestError("password is too weak")


class Authenticator:
    """The login, first-run and per-request token checks, over the user store."""

    def __init__(self, store: UserStore, tokens: TokenService, limiter: LoginLimiter | None = None) -> None:
        self.store = store
        self.tokens = tokens
        self.limiter = limiter if limiter is not None else LoginLimiter()

    async def first_run(self, *, username: str, email: str, full_name: str, password: str) -> User:
        if await self.store.has_admin_user():
            raise ConflictError("already initialized")
        validate_new_user(username, email, password, full_name)
        password_hash = await asyncio.to_thread(hash_password_sync, password)
        return await self.store.create_admin_user(
            username=username, email=email, full_name=full_name, password_hash=password_hash
        )

    async def login(self, username: str, password: str, *, address: str = "") -> str:
        """Every failure is the same 401 after the same bcrypt work, so a caller can probe which names
        exist neither by the answer nor by its time; too many failures are 429 (:mod:`login_limit`)."""
        if not username or not password:
            raise UnauthorizedError()
        attempted_at = time.monotonic()
        self.limiter.attempt(username, address, attempted_at)
        found = await self.store.find_user_for_login(username)
        usable = found is not None and found.user.enabled
        password_hash = found.password_hash if found is not None and usable else None

        def verify() -> bool:
            if password_hash is None:
                check_password_sync(password, dummy_password_hash())
                return False
            return check_password_sync(password, password_hash)

        if not await asyncio.to_thread(verify) or found is None:
            raise UnauthorizedError()
        self.limiter.succeeded(username, address, attempted_at)
        return self.tokens.issue_user_token(found.user, found.generation)

    async def authenticate(self, token: str) -> AuthContext:
        """Token valid, user exists and is enabled, and its password generation still matches."""
        claims = self.tokens.decode(token)
        user_id = claims.get("user")
        if not isinstance(user_id, str) or not user_id:
            raise UnauthorizedError()
        try:
            found: UserCredentials = await self.store.get_user_credentials(user_id)
        except NotFoundError as exc:
            raise UnauthorizedError() from exc
        generation = claims.get("generation")
        # GARM's claims hold a uint: Go's decoder refuses false and 0.0 (Python compares them equal to 0).
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise UnauthorizedError()
        if not found.user.enabled or generation != found.generation:
            raise UnauthorizedError()
        exp = claims.get("exp")
        return AuthContext(
            user_id=found.user.id,
            is_admin=found.user.is_admin,
            full_name=found.user.full_name,
            generation=found.generation,
            expires_at=float(exp) if isinstance(exp, (int, float)) else None,
        )

    async def change_password(self, user_id: str, new_password: str) -> User:
        if not password_is_strong(new_password):
            raise BadRequestError("password is too weak")
        password_hash = await asyncio.to_thread(hash_password_sync, new_password)
        return await self.store.update_user(user_id, password_hash=password_hash)
