"""``/metrics``: GARM v0.1.5's route, config keys and token answers (docs/observability.md#the-route,
``garm@v0.1.5 apiserver/routers/routers.go:62-74``, ``garm@v0.1.5 auth/metrics.go:24-67``)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from pygarm.config import ConfigError, MetricsSection, Settings
from tests.api.entity_support import PROVIDERS
from tests.api.metrics_support import metrics_token, parse_exposition
from tests.conftest import TEST_JWT_SECRET, make_settings

AUTH_FAILED = b'{"error":"Authentication failed","details":""}\n'
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8; escaping=values"


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS, metrics={"enable": True})


def _token(**claims: Any) -> str:
    base = {
        "user": "",
        "token_id": "abcdefghijklmnop",
        "full_name": "",
        "is_admin": False,
        "read_metrics": True,
        "generation": 0,
        "iss": "garm",
        "exp": int(time.time()) + 3600,
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, TEST_JWT_SECRET, algorithm="HS256")


async def test_metrics_token_scrapes_before_first_run(app: FastAPI, client: httpx.AsyncClient) -> None:
    """No database lookup: a read_metrics token works on a server nobody initialized (observed on GARM)."""
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {metrics_token(app)}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    families = parse_exposition(response.text)
    garm = [name for name in families if name.startswith("garm_")]
    assert garm == ["garm_health", "garm_provider_info"]


async def test_token_from_the_api_route_scrapes(
    client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> None:
    token = (await admin_client.get("/api/v1/metrics-token")).json()["token"]
    claims = jwt.decode(token, TEST_JWT_SECRET, algorithms=["HS256"])
    assert claims["read_metrics"] is True and claims["user"] == ""
    for path in ("/metrics", "/metrics/"):
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, path
    # and it is refused on the REST API (no user "")
    response = await client.get("/api/v1/controller", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


REFUSED_HEADERS = [
    None,
    "",
    "Bearer",
    "Bearer garbage",
    "Bearer  {good}",  # a double space makes three parts
    "{good}",  # no scheme word
    "Bearer {good} extra",
    "Bearer {admin}",  # an admin login token has read_metrics false
    "Bearer {expired}",
    "Bearer {no_metrics}",
    "Bearer {string_flag}",  # "read_metrics": "true" is not a JSON true
    "Bearer {wrong_secret}",
    "Bearer {not_before}",
]


async def test_refusals_are_garms_401(app: FastAPI, client: httpx.AsyncClient, admin_token: str) -> None:
    """Every refusal is the same 401 JSON (``garm@v0.1.5 auth/jwt.go:89-98``)."""
    tokens = {
        "good": metrics_token(app),
        "admin": admin_token,
        "expired": _token(exp=int(time.time()) - 10),
        "no_metrics": _token(read_metrics=False),
        "string_flag": _token(read_metrics="true"),
        "wrong_secret": jwt.encode({"read_metrics": True}, "another-secret-entirely-32-bytes!", "HS256"),
        "not_before": _token(nbf=int(time.time()) + 3600),
    }
    for header in REFUSED_HEADERS:
        headers = {} if header is None else {"Authorization": header.format(**tokens)}
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401, header
        assert response.headers["content-type"] == "application/json"
        assert response.content == AUTH_FAILED


async def test_scheme_word_is_not_checked(client: httpx.AsyncClient) -> None:
    """GARM takes the second of two space-separated words; a token without ``exp`` is accepted."""
    for scheme in ("Bearer", "bearer", "Token"):
        response = await client.get("/metrics", headers={"Authorization": f"{scheme} {_token(exp=None)}"})
        assert response.status_code == 200, scheme


async def test_methods_and_paths(client: httpx.AsyncClient) -> None:
    """Other methods: gorilla's empty 405 before auth; OPTIONS: 200 without auth; near misses: Go's 404."""
    for method in ("POST", "PUT", "DELETE", "HEAD", "PATCH"):
        response = await client.request(method, "/metrics")
        assert response.status_code == 405, method
        assert response.content == b""
        assert "content-type" not in response.headers
    response = await client.options("/metrics")
    assert (response.status_code, response.content) == (200, b"")
    for path in ("/metrics/x", "/metricsx"):
        response = await client.get(path)
        assert (response.status_code, response.content) == (404, b"404 page not found\n"), path


async def test_gzip_when_asked(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {metrics_token(app)}", "Accept-Encoding": "gzip"}
    response = await client.get("/metrics", headers=headers)
    assert response.headers["content-encoding"] == "gzip"
    assert b"# TYPE garm_health gauge" in response.content  # httpx decoded it
    plain = await client.get("/metrics", headers={**headers, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


class TestDisabled:
    @pytest.fixture
    def settings(self, database_section: dict[str, Any]) -> Settings:
        return make_settings(database_section)  # no [metrics] section: disabled, as in GARM

    async def test_route_does_not_exist(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        for path, headers in (
            ("/metrics", {}),
            ("/metrics/", {}),
            ("/metrics", {"Authorization": f"Bearer {metrics_token(app)}"}),
        ):
            response = await client.get(path, headers=headers)
            assert response.status_code == 404
            assert response.content == b"404 page not found\n"
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert response.headers["x-content-type-options"] == "nosniff"

    async def test_metrics_token_route_still_works(self, admin_client: httpx.AsyncClient) -> None:
        response = await admin_client.get("/api/v1/metrics-token")
        assert response.status_code == 200
        assert list(response.json()) == ["token"]


class TestDisableAuth:
    @pytest.fixture
    def settings(self, database_section: dict[str, Any]) -> Settings:
        return make_settings(database_section, metrics={"enable": True, "disable_auth": True})

    async def test_no_header_needed(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert "# TYPE garm_health gauge" in response.text


@pytest.mark.parametrize(
    ("period", "seconds"), [("1s", 1.0), ("1m30s", 90.0), (90_000_000_000, 90.0), (0, 60.0), ("", 60.0)]
)
def test_period_is_a_go_duration(period: Any, seconds: float) -> None:
    """A string is ``time.ParseDuration``, an integer nanoseconds, zero or missing 60 s."""
    assert MetricsSection(enable=True, period=period).period_seconds == seconds
    assert MetricsSection().period_seconds == 60.0 and MetricsSection().enable is False


@pytest.mark.parametrize("period", ["-1s", -1, "soon", True])
def test_bad_period_is_refused_at_load(period: Any) -> None:
    """GARM panics on a negative period at start; pygarm refuses the config with the key's name."""
    database = {"passphrase": "p" * 32, "sqlite3": {"db_file": "/tmp/x.db"}}
    with pytest.raises(ConfigError, match=r"metrics\.period"):
        make_settings(database, metrics={"enable": True, "period": period})
