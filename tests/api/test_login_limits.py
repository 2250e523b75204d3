"""Login cannot be used to probe names or to guess passwords at speed (issue 8 #9): a failure for an unknown
or disabled user does the same bcrypt work as a wrong password, and failed logins are limited per name and
per client address (``[login_limit]``, 429 with ``Retry-After``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import pygarm.runner.auth as auth_rules
from pygarm.config import ConfigError, Settings, parse_settings
from pygarm.errors import TooManyRequestsError
from pygarm.runner.login_limit import MAX_TRACKED_KEYS, LoginLimiter, LoginLimits
from tests.api.test_users import insert_admin
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, TEST_JWT_SECRET, TEST_PASSPHRASE, make_settings

LOGIN = "/api/v1/auth/login"
UNAUTHORIZED = {"error": "Not Authorized", "details": ""}
THROTTLED = {"error": "Too Many Requests", "details": "too many failed logins, retry later"}


@pytest.fixture
def settings(database_section: dict[str, Any], request: pytest.FixtureRequest) -> Settings:
    limits = getattr(request, "param", {"per_username": 3, "per_address": 0})
    return make_settings(database_section, login_limit=limits)


class BcryptCalls:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hashes: list[str] = []
        real = auth_rules.check_password_sync

        def record(password: str, password_hash: str) -> bool:
            self.hashes.append(password_hash)
            return real(password, password_hash)

        monkeypatch.setattr(auth_rules, "check_password_sync", record)


async def stored_hash(app: FastAPI) -> str:
    found = await app.state.ctx.store.find_user_for_login(ADMIN_USERNAME)
    return str(found.password_hash)


async def test_unknown_and_disabled_users_cost_a_bcrypt_check_like_a_wrong_password(
    app: FastAPI, client: httpx.AsyncClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await insert_admin(app, "dormant", enabled=False)
    calls = BcryptCalls(monkeypatch)
    real_hash = await stored_hash(app)
    for username in ("nobody", "dormant", ADMIN_USERNAME):
        response = await client.post(LOGIN, json={"username": username, "password": "wrong-password"})
        assert (response.status_code, response.json()) == (401, UNAUTHORIZED), username
    assert len(calls.hashes) == 3
    unknown, disabled, wrong = calls.hashes
    assert wrong == real_hash
    # The stand-in hash has the real hashes' algorithm and cost ("$2b$10$" in production), so it takes as
    # long to check; the disabled user's own hash is not checked (no answer may depend on it).
    assert unknown == disabled != real_hash
    assert unknown[:7] == real_hash[:7] == f"$2b${auth_rules.BCRYPT_ROUNDS:02d}$"


async def test_failed_logins_per_name_are_limited_with_429_and_retry_after(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    for _ in range(3):
        response = await client.post(LOGIN, json={"username": ADMIN_USERNAME, "password": "wrong"})
        assert (response.status_code, response.json()) == (401, UNAUTHORIZED)
    for password in ("wrong", ADMIN_PASSWORD):  # even the right password waits: the name is locked
        response = await client.post(LOGIN, json={"username": "ADMIN", "password": password})
        assert (response.status_code, response.json()) == (429, THROTTLED)
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    other = await client.post(LOGIN, json={"username": "someone-else", "password": "wrong"})
    assert (other.status_code, other.json()) == (401, UNAUTHORIZED)


async def test_unknown_names_are_limited_like_known_ones(client: httpx.AsyncClient, admin_token: str) -> None:
    statuses = [
        (await client.post(LOGIN, json={"username": "ghost", "password": "x"})).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


async def test_a_successful_login_clears_the_names_failures(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    for _ in range(2):
        assert (
            await client.post(LOGIN, json={"username": ADMIN_USERNAME, "password": "x"})
        ).status_code == 401
    good = await client.post(LOGIN, json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert good.status_code == 200
    for _ in range(3):
        assert (
            await client.post(LOGIN, json={"username": ADMIN_USERNAME, "password": "x"})
        ).status_code == 401


@pytest.mark.parametrize("settings", [{"per_username": 0, "per_address": 3}], indirect=True)
async def test_failed_logins_per_address_are_limited_across_names(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    for index in range(3):
        response = await client.post(LOGIN, json={"username": f"user{index}", "password": "x"})
        assert response.status_code == 401
    response = await client.post(LOGIN, json={"username": "user9", "password": "x"})
    assert (response.status_code, response.json()) == (429, THROTTLED)
    assert "Retry-After" in response.headers


def test_window_slides_and_retry_after_counts_down() -> None:
    limiter = LoginLimiter(LoginLimits(per_username=2, per_address=0, window=60.0))
    limiter.attempt("Admin", "10.0.0.1", 100.0)
    limiter.attempt("admin", "10.0.0.2", 130.0)
    with pytest.raises(TooManyRequestsError) as refused:
        limiter.attempt("ADMIN", "10.0.0.3", 145.5)
    assert refused.value.retry_after == 15  # the first failure leaves the window at 160
    limiter.attempt("admin", "10.0.0.3", 160.0)  # that one has left: one more is let through
    with pytest.raises(TooManyRequestsError):
        limiter.attempt("admin", "10.0.0.3", 170.0)


def test_a_success_gives_back_its_address_attempt_only() -> None:
    limiter = LoginLimiter(LoginLimits(per_username=0, per_address=2, window=60.0))
    limiter.attempt("a", "10.0.0.1", 1.0)
    limiter.attempt("b", "10.0.0.1", 2.0)
    limiter.succeeded("b", "10.0.0.1", 2.0)
    limiter.attempt("c", "10.0.0.1", 3.0)
    with pytest.raises(TooManyRequestsError):
        limiter.attempt("d", "10.0.0.1", 4.0)


def test_memory_is_bounded_by_the_number_of_tracked_names() -> None:
    limiter = LoginLimiter(LoginLimits(per_username=1, per_address=0, window=60.0))
    for index in range(MAX_TRACKED_KEYS + 10):
        limiter.attempt(f"name{index}", "", 1.0)
    assert len(limiter._names._failures) == MAX_TRACKED_KEYS
    limiter.attempt("name0", "", 2.0)  # the oldest names were dropped first
    with pytest.raises(TooManyRequestsError):
        limiter.attempt(f"name{MAX_TRACKED_KEYS + 9}", "", 2.0)


def _config(**login_limit: Any) -> dict[str, Any]:
    return {
        "jwt_auth": {"secret": TEST_JWT_SECRET},
        "database": {
            "backend": "sqlite3",
            "passphrase": TEST_PASSPHRASE,
            "sqlite3": {"db_file": "/x/garm.db"},
        },
        "login_limit": login_limit,
    }


def test_login_limit_config_defaults_and_errors() -> None:
    section = parse_settings(_config()).login_limit
    assert (section.per_username, section.per_address, section.window) == (10, 30, "1m")
    with pytest.raises(ConfigError, match=r"login_limit\.per_username"):
        parse_settings(_config(per_username=-1))
    with pytest.raises(ConfigError, match=r"login_limit\.window: .*positive"):
        parse_settings(_config(window="0s"))


def test_huge_login_limits_are_config_errors() -> None:
    """``deque(maxlen=10**20)`` overflows: the first failed login would have answered 500."""
    with pytest.raises(ConfigError, match=r"login_limit\.per_address: .*1000000"):
        parse_settings(_config(per_address=10**20))
    assert parse_settings(_config(per_username=1_000_000)).login_limit.per_username == 1_000_000


def test_tracked_names_cost_the_same_whatever_their_length() -> None:
    """Login bodies may be 64 KiB: 10,000 such names kept verbatim would be 640 MiB."""
    limiter = LoginLimiter(LoginLimits(per_username=1, per_address=0, window=60.0))
    limiter.attempt("N" * 60_000, "", 1.0)
    [key] = limiter._names._failures
    assert len(key) == 16
    with pytest.raises(TooManyRequestsError):
        limiter.attempt("n" * 60_000, "", 2.0)  # the same name, any case
