"""First-run, login and controller routes against docs/garm-protocol.md#controller-info,
docs/garm-protocol.md#rest-routes, docs/garm-protocol.md#auth-chains."""

from __future__ import annotations

import httpx
import jwt
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME, CONTROLLER_URLS, TEST_JWT_SECRET


async def test_first_run_returns_user_in_go_key_order(client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#user: User keys and order; no password or generation in the body."""
    response = await client.post(
        "/api/v1/first-run",
        json={
            "username": ADMIN_USERNAME,
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "full_name": "Admin",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content.endswith(b"}\n")
    body = response.json()
    assert list(body) == [
        "id",
        "created_at",
        "updated_at",
        "email",
        "username",
        "full_name",
        "enabled",
        "is_admin",
    ]
    assert body["username"] == ADMIN_USERNAME and body["enabled"] is True and body["is_admin"] is True
    assert ADMIN_PASSWORD not in response.text and "$2b$" not in response.text


async def test_first_run_twice_is_conflict(client: httpx.AsyncClient, admin_token: str) -> None:
    """docs/garm-protocol.md#first-run: a second first-run answers 409 already initialized."""
    response = await client.post(
        "/api/v1/first-run", json={"username": "other", "email": "o@x.io", "password": "x"}
    )
    assert response.status_code == 409
    assert response.json() == {"error": "Conflict", "details": "already initialized"}


async def test_first_run_validation(client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#first-run: each rule answers 400 with GARM's text."""
    cases = [
        ({"username": "", "email": "a@b.c", "password": ADMIN_PASSWORD}, "missing username or email"),
        ({"username": "a", "email": "nope", "password": ADMIN_PASSWORD}, "invalid email address"),
        ({"username": "a-b", "email": "a@b.c", "password": ADMIN_PASSWORD}, "invalid username"),
        ({"username": "abc", "email": "a@b.c", "password": "password1"}, "password is too weak"),
    ]
    for body, details in cases:
        response = await client.post("/api/v1/first-run", json=body)
        assert response.status_code == 400, body
        assert response.json() == {"error": "Bad Request", "details": details}
    response = await client.post("/api/v1/first-run", content=b"{not json")
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": "invalid request"}


async def test_login_claims(client: httpx.AsyncClient, admin_token: str) -> None:
    """docs/garm-protocol.md#user-jwt: HS256 with GARM's claims and nothing else."""
    claims = jwt.decode(admin_token, TEST_JWT_SECRET.encode(), algorithms=["HS256"])
    assert set(claims) == {
        "user",
        "token_id",
        "full_name",
        "is_admin",
        "read_metrics",
        "generation",
        "iss",
        "exp",
    }
    assert claims["iss"] == "garm" and claims["is_admin"] is True and claims["read_metrics"] is False
    assert len(claims["token_id"]) == 16 and claims["token_id"].isalnum()
    assert jwt.get_unverified_header(admin_token)["alg"] == "HS256"


async def test_login_by_email_and_failures(client: httpx.AsyncClient, admin_token: str) -> None:
    """docs/garm-protocol.md#login: e-mail works as the login name; every failure is the same 401."""
    response = await client.post(
        "/api/v1/auth/login", json={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200 and list(response.json()) == ["token"]
    for body in (
        {"username": ADMIN_USERNAME, "password": "wrong"},
        {"username": "", "password": ""},
        {"username": "ghost", "password": ADMIN_PASSWORD},
    ):
        response = await client.post("/api/v1/auth/login", json=body)
        assert response.status_code == 401
        assert response.json() == {"error": "Not Authorized", "details": ""}
    response = await client.post("/api/v1/auth/login", content=b"[")
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": "invalid request"}


async def test_urls_required_before_auth(client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#init-and-urls-required: until the URLs are set, apiRouter routes answer 409 even
    without a token."""
    await client.post(
        "/api/v1/first-run",
        json={"username": ADMIN_USERNAME, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
    )
    response = await client.get("/api/v1/repositories")
    assert response.status_code == 409
    assert response.json() == {
        "error": "urls_required",
        "details": "Missing required URLs. Make sure you update the metadata, callback and webhook URLs",
    }


async def test_missing_or_bad_token(admin_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#user-jwt: no header, a malformed header or a bad signature → 401 Authentication
    failed."""
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Bearer " + jwt.encode({"user": "x"}, "other", algorithm="HS256")},
    ):
        response = await client.get("/api/v1/controller", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "Authentication failed", "details": ""}


async def test_controller_get_and_update(admin_client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#controller-info: key order, controller_webhook_url, hostname only on GET
    (docs/garm-protocol.md#controller-info)."""
    response = await admin_client.get("/api/v1/controller")
    assert response.status_code == 200
    info = response.json()
    assert list(info) == [
        "controller_id",
        "hostname",
        "metadata_url",
        "callback_url",
        "webhook_url",
        "controller_webhook_url",
        "minimum_job_age_backoff",
        "version",
    ]
    assert info["hostname"] != ""
    assert info["webhook_url"] == CONTROLLER_URLS["webhook_url"]
    assert info["controller_webhook_url"] == CONTROLLER_URLS["webhook_url"] + "/" + info["controller_id"]
    assert info["minimum_job_age_backoff"] == 30
    response = await admin_client.put("/api/v1/controller", json={"minimum_job_age_backoff": 45})
    assert response.status_code == 200
    assert response.json()["hostname"] == "" and response.json()["minimum_job_age_backoff"] == 45
    assert response.json()["metadata_url"] == CONTROLLER_URLS["metadata_url"]
    response = await admin_client.put("/api/v1/controller", json={"callback_url": "no-scheme"})
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": "invalid callback_url"}
    response = await admin_client.get("/api/v1/controller-info/")
    assert response.status_code == 200 and response.json()["minimum_job_age_backoff"] == 45


async def test_unknown_routes(admin_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#unknown-routes: unknown /api/v1 path → 404 JSON after auth; outside → Go's plain
    404."""
    response = await admin_client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "details": "Resource not found"}
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 401
    response = await client.get("/elsewhere")
    assert response.status_code == 404 and response.text == "404 page not found\n"


async def test_metrics_token_and_providers(admin_client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#metrics-auth claims of the metrics token; docs/garm-protocol.md#rest-routes
    providers is [] when none are configured."""
    response = await admin_client.get("/api/v1/metrics-token")
    claims = jwt.decode(response.json()["token"], TEST_JWT_SECRET.encode(), algorithms=["HS256"])
    assert claims["read_metrics"] is True and claims["is_admin"] is False and claims["user"] == ""
    response = await admin_client.get("/api/v1/providers")
    assert response.status_code == 200 and response.content == b"[]\n"


def test_a_remembered_token_still_expires() -> None:
    """docs/garm-protocol.md#user-jwt: ``exp`` is checked on every use, also once the token's signature was
    verified before."""
    import time
    from types import SimpleNamespace

    import pytest

    from pygarm.errors import UnauthorizedError
    from pygarm.params.models import User
    from pygarm.runner import auth
    from pygarm.runner.auth import TokenService

    tokens = TokenService(TEST_JWT_SECRET, ttl_seconds=1)
    token = tokens.issue_user_token(User(id="u", is_admin=True), generation=0)
    assert tokens.decode(token)["user"] == "u"
    later = SimpleNamespace(time=lambda: time.time() + 1.1, monotonic=time.monotonic)
    with pytest.MonkeyPatch.context() as patch:  # 1.1 s later, without waiting for it
        patch.setattr(auth, "time", later)
        with pytest.raises(UnauthorizedError):
            tokens.decode(token)
    with pytest.raises(UnauthorizedError):
        tokens.decode(token[:-2] + "xx")


def test_passwords_are_hashed_with_garms_bcrypt_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite hashes with bcrypt's minimum cost to save time; the server uses Go's DefaultCost (10)."""
    from pygarm.runner import auth as auth_rules
    from tests.conftest import PRODUCTION_BCRYPT_ROUNDS

    assert PRODUCTION_BCRYPT_ROUNDS == 10
    monkeypatch.setattr(auth_rules, "BCRYPT_ROUNDS", PRODUCTION_BCRYPT_ROUNDS)
    password_hash = auth_rules.hash_password_sync("correct horse battery staple")
    assert password_hash.startswith("$2b$10$")
    assert auth_rules.check_password_sync("correct horse battery staple", password_hash)


async def test_claims_of_the_wrong_json_type_are_refused(client: httpx.AsyncClient, admin_token: str) -> None:
    """issue 8 #8: GARM's golang-jwt refuses ``exp``/``nbf``/``iat`` that are not JSON numbers and a
    ``generation`` that is not an unsigned integer; PyJWT took ``"exp": "<digits>"`` through ``int()`` and
    Python compared ``false`` and ``0.0`` equal to generation 0. The original token still works."""
    claims = jwt.decode(admin_token, TEST_JWT_SECRET.encode(), algorithms=["HS256"])
    assert claims["generation"] == 0
    for change in (
        {"exp": str(claims["exp"])},
        {"nbf": "0"},
        {"iat": "0"},
        {"exp": True},
        {"generation": False},
        {"generation": 0.0},
    ):
        token = jwt.encode({**claims, **change}, TEST_JWT_SECRET, algorithm="HS256")
        for _ in range(2):  # a second use goes through the verified-token cache
            response = await client.get("/api/v1/controller", headers={"Authorization": f"Bearer {token}"})
            assert (change, response.status_code) == (change, 401)
            assert response.json() == {"error": "Authentication failed", "details": ""}
    response = await client.get("/api/v1/controller", headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 200


def test_metrics_token_has_garms_claims() -> None:
    """GARM's metrics token (garm-cli metrics-token create): HS256, read_metrics, no user, generation 0."""
    import time

    import jwt

    from pygarm.runner.auth import JWT_ISSUER, TokenService

    token = TokenService(TEST_JWT_SECRET, ttl_seconds=3600).issue_metrics_token()
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, TEST_JWT_SECRET, algorithms=["HS256"])
    token_id, exp = claims.pop("token_id"), claims.pop("exp")
    assert claims == {
        "user": "",
        "full_name": "",
        "is_admin": False,
        "read_metrics": True,
        "generation": 0,
        "iss": JWT_ISSUER,
    }
    assert isinstance(token_id, str) and token_id
    assert abs(exp - (time.time() + 3600)) < 60
