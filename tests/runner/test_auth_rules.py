"""``runner/auth.py`` without a server: GARM's token claims, the first-run checks with their messages, the
72-byte bcrypt limit, and the login/token decisions over an in-memory user store
(docs/garm-protocol.md#auth-chains, docs/garm-protocol.md#first-run, docs/garm-protocol.md#user-jwt)."""

from __future__ import annotations

import string
import time
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import jwt
import pytest

from pygarm.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
)
from pygarm.params.models import User
from pygarm.runner import auth
from pygarm.runner.auth import (
    Authenticator,
    TokenService,
    check_password_sync,
    hash_password_sync,
    registered_claims_are_numbers,
    validate_new_user,
)
from pygarm.runner.login_limit import LoginLimiter, LoginLimits
from pygarm.store.users import UserCredentials

SECRET = "unit-test-jwt-secret-" + "x" * 44
"""64 bytes: PyJWT warns about shorter HS512 keys."""
STRONG = "Vq7#mZ2!pLx9@rT4-garm-admin"


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, SECRET, algorithms=["HS256"])


def test_user_token_claims_are_garms() -> None:
    tokens = TokenService(SECRET, ttl_seconds=3600)
    before = int(time.time())
    token = tokens.issue_user_token(User(id="u1", full_name="Ada", is_admin=True), generation=3)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = claims_of(token)
    token_id, exp = claims.pop("token_id"), claims.pop("exp")
    assert claims == {
        "user": "u1",
        "full_name": "Ada",
        "is_admin": True,
        "read_metrics": False,
        "generation": 3,
        "iss": "garm",
    }
    assert before + 3600 <= exp <= int(time.time()) + 3600
    assert len(token_id) == 16 and set(token_id) <= set(string.ascii_letters + string.digits)
    assert claims_of(tokens.issue_user_token(User(id="u1"), 0))["token_id"] != token_id


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_any_hmac_algorithm_is_accepted_on_decode(algorithm: str) -> None:
    token = jwt.encode({"user": "u", "generation": 0}, SECRET, algorithm=algorithm)
    assert TokenService(SECRET, 60).decode(token) == {"user": "u", "generation": 0}


def test_decode_refuses_another_secret_and_an_expired_or_early_token() -> None:
    tokens = TokenService(SECRET, 60)
    now = int(time.time())
    for claims in ({"exp": now - 1}, {"nbf": now + 60}):
        with pytest.raises(UnauthorizedError, match="invalid token"):
            tokens.decode(jwt.encode({"user": "u", **claims}, SECRET, algorithm="HS256"))
    with pytest.raises(UnauthorizedError, match="invalid token"):
        tokens.decode(jwt.encode({"user": "u"}, SECRET + "x", algorithm="HS256"))
    # No iss, aud or exp is required (GARM's jwt v5 parser without options).
    assert (
        tokens.decode(jwt.encode({"iss": "other", "aud": "x"}, SECRET, algorithm="HS256"))["iss"] == "other"
    )


def test_a_remembered_token_is_checked_against_nbf_and_exp_on_every_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = TokenService(SECRET, 60)
    now = time.time()
    token = jwt.encode({"user": "u", "nbf": int(now) - 5, "exp": int(now) + 10}, SECRET, algorithm="HS256")
    assert tokens.decode(token)["user"] == "u"
    clock = SimpleNamespace(time=lambda: now - 10, monotonic=time.monotonic)
    monkeypatch.setattr(auth, "time", clock)
    with pytest.raises(UnauthorizedError):
        tokens.decode(token)  # before nbf: refused, and forgotten
    monkeypatch.undo()
    assert tokens.decode(token)["user"] == "u"  # verified again
    exp = int(now) + 10
    monkeypatch.setattr(auth, "time", SimpleNamespace(time=lambda: float(exp), monotonic=time.monotonic))
    with pytest.raises(UnauthorizedError):
        tokens.decode(token)  # exactly at exp: expired


def test_the_verified_token_memory_is_bounded_and_drops_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "VERIFIED_TOKENS_KEPT", 2)
    tokens = TokenService(SECRET, 60)
    issued = [jwt.encode({"user": f"u{n}"}, SECRET, algorithm="HS256") for n in range(3)]
    for token in issued:
        tokens.decode(token)
    assert list(tokens._verified) == issued[1:]


@pytest.mark.parametrize(
    ("claims", "valid"),
    [
        ({}, True),
        ({"exp": 1, "nbf": 2.5, "iat": 0}, True),
        ({"exp": "1"}, False),
        ({"nbf": None}, False),
        ({"iat": True}, False),
        ({"exp": 1, "iat": "0"}, False),
    ],
)
def test_registered_claims_must_be_json_numbers(claims: dict[str, Any], valid: bool) -> None:
    assert registered_claims_are_numbers(claims) is valid


@pytest.mark.parametrize(
    ("username", "email", "password", "full_name", "message"),
    [
        ("", "a@b.c", STRONG, "", "missing username or email"),
        ("admin", "", STRONG, "", "missing username or email"),
        ("admin", "not-an-address", STRONG, "", "invalid email address"),
        ("admin", "a b@c.d", STRONG, "", "invalid email address"),
        ("admin", "a@b@c", STRONG, "", "invalid email address"),
        ("admin", "a" * 250 + "@b.cd", STRONG, "", "invalid email address"),
        ("a" * 65, "a@b.c", STRONG, "", "invalid username"),
        ("ad-min", "a@b.c", STRONG, "", "invalid username"),
        ("adminé", "a@b.c", STRONG, "", "invalid username"),
        ("admin", "a@b.c", STRONG, "x" * 255, "full_name is too long (maximum 254 characters)"),
        ("admin", "a@b.c", "password", "", "password is too weak"),
        ("admin", "a@b.c", "", "", "password is too weak"),
    ],
)
def test_first_run_checks_in_garms_order(
    username: str, email: str, password: str, full_name: str, message: str
) -> None:
    with pytest.raises(BadRequestError) as raised:
        validate_new_user(username, email, password, full_name)
    assert str(raised.value) == message


def test_the_longest_accepted_values() -> None:
    validate_new_user("a" * 64, "a" * 249 + "@b.cd", STRONG, "x" * 254)


def test_bcrypt_reads_72_bytes_and_refuses_to_hash_more() -> None:
    password = "p" * 71 + "é"  # 73 bytes
    with pytest.raises(BadRequestError, match=r"^password is too long \(at most 72 bytes\)$"):
        hash_password_sync(password)
    hashed = hash_password_sync("p" * 72)
    assert check_password_sync("p" * 72, hashed)
    assert check_password_sync("p" * 72 + "anything", hashed)  # Go's bcrypt compares the first 72 bytes
    assert not check_password_sync("p" * 71, hashed)
    assert not check_password_sync("p" * 72, "not a bcrypt hash")


class Users:
    """The part of the user store the authenticator uses, in memory."""

    def __init__(self, *credentials: UserCredentials) -> None:
        self.by_id = {c.user.id: c for c in credentials}
        self.created: list[dict[str, str]] = []

    async def has_admin_user(self) -> bool:
        return any(c.user.is_admin for c in self.by_id.values())

    async def create_admin_user(self, **fields: str) -> User:
        self.created.append(fields)
        return User(id="new", username=fields["username"], is_admin=True, enabled=True)

    async def find_user_for_login(self, name: str) -> UserCredentials | None:
        for found in self.by_id.values():
            if name in (found.user.username, found.user.email):
                return found
        return None

    async def get_user_credentials(self, user_id: str) -> UserCredentials:
        if user_id not in self.by_id:
            raise NotFoundError("user not found")
        return self.by_id[user_id]

    async def update_user(self, user_id: str, *, password_hash: str) -> User:
        found = self.by_id[user_id]
        self.by_id[user_id] = replace(found, password_hash=password_hash, generation=found.generation + 1)
        return found.user


ADA = User(id="u1", username="ada", email="ada@example.com", full_name="Ada", enabled=True, is_admin=True)


def authenticator(*credentials: UserCredentials, limiter: LoginLimiter | None = None) -> Authenticator:
    return Authenticator(Users(*credentials), TokenService(SECRET, 600), limiter)  # type: ignore[arg-type]


async def test_login_by_name_or_email_issues_a_token_of_the_current_generation() -> None:
    ada = UserCredentials(ADA, hash_password_sync(STRONG), 2)
    auth_ = authenticator(ada)
    for name in ("ada", "ada@example.com"):
        claims = claims_of(await auth_.login(name, STRONG))
        assert (claims["user"], claims["generation"], claims["is_admin"]) == ("u1", 2, True)


@pytest.mark.parametrize(
    ("name", "password"),
    [("ada", "wrong"), ("nobody", STRONG), ("", STRONG), ("ada", ""), ("off", STRONG)],
)
async def test_every_login_failure_is_the_same_401(name: str, password: str) -> None:
    ada = UserCredentials(ADA, hash_password_sync(STRONG), 0)
    off = UserCredentials(
        ADA.model_copy(update={"id": "u2", "username": "off", "email": "", "enabled": False}),
        ada.password_hash,
        0,
    )
    with pytest.raises(UnauthorizedError) as raised:
        await authenticator(ada, off).login(name, password)
    assert str(raised.value) == str(UnauthorizedError())


async def test_a_successful_login_clears_the_failures_of_that_name() -> None:
    ada = UserCredentials(ADA, hash_password_sync(STRONG), 0)
    limits = LoginLimits(per_username=2, per_address=100)
    auth_ = authenticator(ada, limiter=LoginLimiter(limits))
    for _ in range(3):
        with pytest.raises(UnauthorizedError):
            await auth_.login("ada", "wrong", address="a")
        await auth_.login("ada", STRONG, address="a")


async def test_authenticate_checks_the_user_and_its_generation_on_every_use() -> None:
    ada = UserCredentials(ADA, "hash", 1)
    auth_ = authenticator(ada)
    users = auth_.store
    assert isinstance(users, Users)
    token = auth_.tokens.issue_user_token(ADA, 1)
    context = await auth_.authenticate(token)
    assert (context.user_id, context.is_admin, context.full_name, context.generation) == (
        "u1",
        True,
        "Ada",
        1,
    )
    assert context.expires_at == float(claims_of(token)["exp"])
    users.by_id["u1"] = UserCredentials(ADA, "hash", 2)  # the password changed
    with pytest.raises(UnauthorizedError):
        await auth_.authenticate(token)
    users.by_id["u1"] = UserCredentials(ADA.model_copy(update={"enabled": False}), "hash", 1)
    with pytest.raises(UnauthorizedError):
        await auth_.authenticate(token)
    del users.by_id["u1"]
    with pytest.raises(UnauthorizedError):
        await auth_.authenticate(token)


@pytest.mark.parametrize(
    "claims", [{}, {"user": ""}, {"user": 7}, {"user": "u1"}, {"user": "u1", "generation": True}]
)
async def test_authenticate_refuses_a_token_without_a_user_or_a_generation(claims: dict[str, Any]) -> None:
    auth_ = authenticator(UserCredentials(ADA, "hash", 1))
    with pytest.raises(UnauthorizedError):
        await auth_.authenticate(jwt.encode(claims, SECRET, algorithm="HS256"))


async def test_a_token_without_exp_never_expires_its_context() -> None:
    auth_ = authenticator(UserCredentials(ADA, "hash", 0))
    context = await auth_.authenticate(jwt.encode({"user": "u1", "generation": 0}, SECRET, algorithm="HS256"))
    assert context.expires_at is None


async def test_first_run_creates_the_admin_once() -> None:
    auth_ = authenticator()
    users = auth_.store
    assert isinstance(users, Users)
    user = await auth_.first_run(username="ada", email="ada@example.com", full_name="Ada", password=STRONG)
    assert user.username == "ada"
    [created] = users.created
    assert {k: v for k, v in created.items() if k != "password_hash"} == {
        "username": "ada",
        "email": "ada@example.com",
        "full_name": "Ada",
    }
    assert check_password_sync(STRONG, created["password_hash"])
    with pytest.raises(BadRequestError, match=r"^invalid username$"):
        await auth_.first_run(username="a-b", email="ada@example.com", full_name="", password=STRONG)
    with pytest.raises(ConflictError, match=r"^already initialized$"):
        await authenticator(UserCredentials(ADA, "hash", 0)).first_run(
            username="ada", email="ada@example.com", full_name="", password=STRONG
        )


async def test_change_password_requires_a_strong_one_and_stores_its_hash() -> None:
    auth_ = authenticator(UserCredentials(ADA, "old", 0))
    users = auth_.store
    assert isinstance(users, Users)
    with pytest.raises(BadRequestError, match=r"^password is too weak$"):
        await auth_.change_password("u1", "password")
    assert users.by_id["u1"].password_hash == "old"
    await auth_.change_password("u1", STRONG)
    assert check_password_sync(STRONG, users.by_id["u1"].password_hash)


async def test_successful_logins_do_not_use_up_the_address_limit() -> None:
    ada = UserCredentials(ADA, hash_password_sync(STRONG), 0)
    auth_ = authenticator(ada, limiter=LoginLimiter(LoginLimits(per_username=2, per_address=2)))
    for _ in range(4):
        claims_of(await auth_.login("ada", STRONG, address="192.0.2.7"))


async def test_the_limiter_given_is_the_one_applied() -> None:
    ada = UserCredentials(ADA, hash_password_sync(STRONG), 0)
    auth_ = authenticator(ada, limiter=LoginLimiter(LoginLimits(per_username=1, per_address=100)))
    with pytest.raises(UnauthorizedError):
        await auth_.login("ada", "wrong")
    with pytest.raises(TooManyRequestsError):
        await auth_.login("ada", STRONG)


async def test_an_empty_name_or_password_is_refused_before_it_counts_as_an_attempt() -> None:
    ada = UserCredentials(ADA, hash_password_sync(STRONG), 0)
    auth_ = authenticator(ada, limiter=LoginLimiter(LoginLimits(per_username=1, per_address=1)))
    for name, password in (("ada", ""), ("", STRONG)):
        with pytest.raises(UnauthorizedError):
            await auth_.login(name, password, address="a")
    claims_of(await auth_.login("ada", STRONG, address="a"))
