"""GitHub credentials routes against docs/garm-protocol.md#which-operations-emit-events,
docs/garm-protocol.md#github-credentials, docs/garm-protocol.md#rest-routes,
docs/garm-protocol.md#error-mapping."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.github_helpers import (
    app_body,
    b64,
    changes_since,
    ghes_endpoint_body,
    insert_entity_rows,
    key_material,
    last_seq,
    pat_body,
    store_of,
)

CREDENTIALS_KEYS = [
    "id",
    "name",
    "description",
    "api_base_url",
    "upload_base_url",
    "base_url",
    "auth-type",
    "endpoint",
]
GITHUB_COM_ENDPOINT = {
    "name": "github.com",
    "description": "The github.com endpoint",
    "api_base_url": "https://api.github.com/",
    "upload_base_url": "https://uploads.github.com/",
    "base_url": "https://github.com",
}
ZERO_ENDPOINT = {"name": "", "description": "", "api_base_url": "", "upload_base_url": "", "base_url": ""}
ZERO_CREDENTIALS = {
    "id": 0,
    "api_base_url": "",
    "upload_base_url": "",
    "base_url": "",
    "auth-type": "",
    "endpoint": ZERO_ENDPOINT,
}
BASE = "/api/v1/github/credentials"


def bad_request(details: str) -> dict[str, str]:
    return {"error": "Bad Request", "details": details}


async def test_list_is_null_when_empty(admin_client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#empty-bodies-and-null-lists: both list paths answer ``null`` when there are no
    credentials."""
    for path in ("/api/v1/credentials", "/api/v1/credentials/", BASE, BASE + "/"):
        response = await admin_client.get(path)
        assert response.status_code == 200
        assert response.content == b"null\n"


async def test_create_pat(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#github-credentials shape (``auth-type`` with a hyphen, URLs from the endpoint, no
    ``ca_bundle`` without one); docs/garm-protocol.md#which-operations-emit-events one
    ``github_credentials/create`` whose payload is the REST GET body."""
    seq = await last_seq(app)
    response = await admin_client.post(BASE, json=pat_body())
    assert response.status_code == 200
    body = response.json()
    assert list(body) == CREDENTIALS_KEYS
    assert body == {
        "id": body["id"],
        "name": "pat-creds",
        "description": "a PAT",
        "api_base_url": "https://api.github.com/",
        "upload_base_url": "https://uploads.github.com/",
        "base_url": "https://github.com",
        "auth-type": "pat",
        "endpoint": GITHUB_COM_ENDPOINT,
    }
    assert isinstance(body["id"], int) and body["id"] > 0
    assert list(body["endpoint"]) == list(GITHUB_COM_ENDPOINT)
    get = await admin_client.get(f"{BASE}/{body['id']}")
    assert get.status_code == 200 and get.content == response.content
    changes = await changes_since(app, seq)
    assert [(c.entity_type, c.operation) for c in changes] == [("github_credentials", "create")]
    assert changes[0].payload + b"\n" == get.content
    for path in ("/api/v1/credentials", BASE + "/"):
        assert (await admin_client.get(path)).content == b"[" + response.content.rstrip(b"\n") + b"]\n"
    assert await store_of(app).get_credentials_secret(body["id"]) == (
        "pat",
        {"oauth2_token": "ghp_test_token_0123456789"},
    )


async def test_create_app_on_endpoint_with_ca(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#github-credentials: ``ca_bundle`` is the endpoint's ``ca_cert_bundle``; the
    PKCS#1 App key is sealed."""
    await admin_client.post("/api/v1/github/endpoints", json=ghes_endpoint_body())
    response = await admin_client.post(BASE + "/", json=app_body(endpoint="GHES"))
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "id",
        "name",
        "description",
        "api_base_url",
        "upload_base_url",
        "base_url",
        "ca_bundle",
        "auth-type",
        "endpoint",
    ]
    assert body["auth-type"] == "app"
    assert body["ca_bundle"] == b64(key_material().cert_pem) == body["endpoint"]["ca_cert_bundle"]
    assert body["api_base_url"] == "https://ghes.example.com/api/v3/" and body["endpoint"]["name"] == "ghes"
    auth_type, secret = await store_of(app).get_credentials_secret(body["id"])
    assert auth_type == "app"
    assert secret == {"app_id": 1234, "installation_id": 5678, "private_key_bytes": key_material().pkcs1_pem}


def _app(**fields: Any) -> dict[str, Any]:
    app = {"app_id": 1, "installation_id": 2, "private_key_bytes": b64(key_material().pkcs1_pem)}
    app.update(fields)
    return app


CREATE_ERRORS: list[tuple[dict[str, Any], str]] = [
    (pat_body(name=""), "missing name"),
    (pat_body(endpoint=""), "missing endpoint"),
    (pat_body(auth_type="token"), "invalid auth_type"),
    (pat_body(auth_type=""), "invalid auth_type"),
    (pat_body(pat={}), "missing oauth2_token"),
    (pat_body(pat=None), "missing oauth2_token"),
    (app_body(app=_app(app_id=0)), "missing app_id"),
    (app_body(app=_app(installation_id=0)), "missing installation_id"),
    (app_body(app=_app(private_key_bytes="")), "missing private_key_bytes"),
    (app_body(app=None), "missing app_id"),
    (app_body(app=_app(private_key_bytes=b64(b"not a key"))), "invalid private_key_bytes"),
    (app_body(app=_app(private_key_bytes=b64(key_material().pkcs8_pem))), "invalid private_key_bytes"),
    (app_body(app=_app(private_key_bytes=b64(key_material().cert_pem))), "invalid private_key_bytes"),
    (pat_body(name="n" * 65), "name is too long (maximum 64 characters)"),
]


@pytest.mark.parametrize(("body", "details"), CREATE_ERRORS)
async def test_create_validation(
    admin_client: httpx.AsyncClient, app: FastAPI, body: dict[str, Any], details: str
) -> None:
    """docs/garm-protocol.md#request-bodies ``CreateGithubCredentialsParams.Validate``: GARM's order and
    messages, all 400, no event."""
    seq = await last_seq(app)
    response = await admin_client.post(BASE, json=body)
    assert response.status_code == 400
    assert response.json() == bad_request(details)
    assert await changes_since(app, seq) == []


@pytest.mark.parametrize(
    "body",
    [
        app_body(app=_app(app_id="1")),
        app_body(app=_app(app_id=1.5)),
        app_body(app=_app(app_id=2**63)),
        app_body(app=_app(private_key_bytes="%%%")),
        pat_body(pat={"oauth2_token": 5}),
        pat_body(pat="token"),
    ],
)
async def test_create_undecodable_body(admin_client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    """docs/garm-protocol.md#json-encoding: type mismatches, out-of-range int64 and bad base64 fail decoding →
    400 ``invalid request``."""
    response = await admin_client.post(BASE, json=body)
    assert response.status_code == 400
    assert response.json() == bad_request("invalid request")


async def test_create_unknown_endpoint_and_duplicate(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#route-rules: unknown endpoint → 404 ``not found``; same name (any case), same
    user → 409 ``duplicate``."""
    response = await admin_client.post(BASE, json=pat_body(endpoint="nope"))
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "details": "not found"}
    assert (await admin_client.post(BASE, json=pat_body())).status_code == 200
    seq = await last_seq(app)
    response = await admin_client.post(BASE, json=app_body(name="PAT-Creds"))
    assert response.status_code == 409
    assert response.json() == {"error": "Conflict", "details": "duplicate"}
    assert await changes_since(app, seq) == []


@pytest.mark.parametrize("raw_id", ["abc", "-1", "+1", "1.0", " 1", str(2**64), "1e3"])
async def test_bad_ids_are_bad_requests(admin_client: httpx.AsyncClient, raw_id: str) -> None:
    """docs/garm-protocol.md#error-mapping: an id ``strconv.ParseUint`` rejects → 400 ``invalid request`` on
    GET, PUT and DELETE."""
    for method in ("GET", "PUT", "DELETE"):
        response = await admin_client.request(method, f"{BASE}/{raw_id}", json={"description": "x"})
        assert response.status_code == 400, (method, raw_id)
        assert response.json() == bad_request("invalid request")


async def test_unknown_ids(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#rest-routes: unknown id → 404 ``not found`` on GET/PUT; DELETE answers 204 and
    pygarm emits nothing."""
    seq = await last_seq(app)
    for raw_id in ("0", "42", str(2**64 - 1), "007"):
        for method in ("GET", "PUT"):
            response = await admin_client.request(method, f"{BASE}/{raw_id}", json={"description": "x"})
            assert response.status_code == 404, (method, raw_id)
            assert response.json() == {"error": "Not Found", "details": "not found"}
        response = await admin_client.delete(f"{BASE}/{raw_id}/")
        assert response.status_code == 204 and response.content == b""
    assert await changes_since(app, seq) == []


async def test_detailed_get_nests_entities_non_detailed(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    """docs/garm-protocol.md#github-credentials: ``GET /github/credentials/{id}`` nests repositories,
    organizations and enterprises built without associations: zero-valued ``credentials`` (with a zero
    ``endpoint``), zero ``endpoint``, no ``credentials_name``, ``pool`` omitted, balancer normalized to
    ``roundrobin``. Other views don't nest."""
    created = (await admin_client.post(BASE, json=pat_body())).json()
    ids = await insert_entity_rows(app, created["id"])
    response = await admin_client.get(f"{BASE}/{created['id']}")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [*CREDENTIALS_KEYS[:-1], "repositories", "organizations", "enterprises", "endpoint"]
    common = {
        "credentials_id": created["id"],
        "pool_manager_status": {"running": False},
        "pool_balancing_type": "roundrobin",
        "endpoint": ZERO_ENDPOINT,
    }
    assert body["repositories"] == [
        {"id": ids["repository"], "owner": "Octo", "name": "Hello", **common, "credentials": ZERO_CREDENTIALS}
    ]
    assert list(body["repositories"][0]) == [
        "id",
        "owner",
        "name",
        "credentials_id",
        "credentials",
        "pool_manager_status",
        "pool_balancing_type",
        "endpoint",
    ]
    assert list(body["repositories"][0]["credentials"]) == list(ZERO_CREDENTIALS)
    assert body["organizations"] == [
        {"id": ids["organization"], "name": "OctoOrg", **common, "credentials": ZERO_CREDENTIALS}
    ]
    assert list(body["organizations"][0]) == [
        "id",
        "name",
        "credentials",
        "credentials_id",
        "pool_manager_status",
        "pool_balancing_type",
        "endpoint",
    ]
    assert body["enterprises"] == [
        {
            "id": ids["enterprise"],
            "name": "OctoEnt",
            **common,
            "credentials": ZERO_CREDENTIALS,
            "pool_balancing_type": "pack",
        }
    ]
    listed = (await admin_client.get(BASE)).json()
    assert list(listed[0]) == CREDENTIALS_KEYS


async def test_update(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#request-bodies pointer semantics (absent/null = unchanged); a new PAT is sealed;
    docs/garm-protocol.md#which-operations-emit-events one ``github_credentials/update`` = the REST GET
    body."""
    created = (await admin_client.post(BASE, json=pat_body())).json()
    path = f"{BASE}/{created['id']}"
    seq = await last_seq(app)
    response = await admin_client.put(
        path, json={"Name": "renamed", "description": None, "pat": {"oauth2_token": "ghp_new"}}
    )
    assert response.status_code == 200
    assert response.json() == {**created, "name": "renamed"}
    get = await admin_client.get(path + "/")
    assert get.content == response.content
    changes = await changes_since(app, seq)
    assert [(c.entity_type, c.operation) for c in changes] == [("github_credentials", "update")]
    assert changes[0].payload + b"\n" == get.content
    assert await store_of(app).get_credentials_secret(created["id"]) == ("pat", {"oauth2_token": "ghp_new"})
    response = await admin_client.put(path + "/", json={"description": ""})
    assert response.status_code == 200 and "description" not in response.json()


@pytest.mark.parametrize(
    ("body", "status", "details"),
    [
        ({"app": _app()}, 400, "invalid request"),
        ({"pat": {"oauth2_token": "x"}, "app": _app()}, 400, "cannot update both PAT and App"),
        ({"pat": {}}, 400, "missing oauth2_token"),
        ({"app": _app(installation_id=0)}, 400, "missing installation_id"),
        ({"name": ""}, 400, "missing name"),
        ({"name": "APP-CREDS"}, 409, "duplicate"),
    ],
)
async def test_update_errors(
    admin_client: httpx.AsyncClient, app: FastAPI, body: dict[str, Any], status: int, details: str
) -> None:
    """docs/garm-protocol.md#request-bodies, docs/garm-protocol.md#route-rules: an App secret on PAT
    credentials → 400 ``invalid request``; both → 400; a taken name → 409 ``duplicate``; an empty name → 400
    (pygarm, docs/compatibility.md). No event for any of them."""
    created = (await admin_client.post(BASE, json=pat_body())).json()
    await admin_client.post(BASE, json=app_body())
    seq = await last_seq(app)
    response = await admin_client.put(f"{BASE}/{created['id']}", json=body)
    assert response.status_code == status
    assert response.json()["details"] == details
    assert await changes_since(app, seq) == []


async def test_update_pat_on_app_credentials(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#route-rules: a PAT for App credentials → 400 ``invalid request``; a new App
    secret is accepted."""
    created = (await admin_client.post(BASE, json=app_body())).json()
    path = f"{BASE}/{created['id']}"
    response = await admin_client.put(path, json={"pat": {"oauth2_token": "x"}})
    assert response.status_code == 400
    assert response.json() == bad_request("invalid request")
    response = await admin_client.put(path, json={"app": _app(app_id=99)})
    assert response.status_code == 200 and response.json() == created
    assert (await store_of(app).get_credentials_secret(created["id"]))[1]["app_id"] == 99


async def test_delete(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#rest-routes: 204 with no body; the delete event carries the full last state
    (pygarm's superset of docs/garm-protocol.md#delete-payloads)."""
    created = await admin_client.post(BASE, json=pat_body())
    path = f"{BASE}/{created.json()['id']}"
    seq = await last_seq(app)
    response = await admin_client.delete(path)
    assert response.status_code == 204 and response.content == b""
    changes = await changes_since(app, seq)
    assert [(c.entity_type, c.operation) for c in changes] == [("github_credentials", "delete")]
    assert changes[0].payload + b"\n" == created.content
    assert (await admin_client.get(path)).status_code == 404
    assert (await admin_client.get(BASE)).content == b"null\n"


async def test_delete_in_use(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#route-rules: credentials used by a repository/organization/enterprise → 400
    ``invalid request``, no event."""
    created = (await admin_client.post(BASE, json=pat_body())).json()
    await insert_entity_rows(app, created["id"])
    seq = await last_seq(app)
    response = await admin_client.delete(f"{BASE}/{created['id']}")
    assert response.status_code == 400
    assert response.json() == bad_request("invalid request")
    assert await changes_since(app, seq) == []
    assert (await admin_client.get(f"{BASE}/{created['id']}")).status_code == 200


async def test_routes_require_admin_token(admin_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#auth-chains: every credentials route sits behind the JWT check."""
    for method, path in [
        ("GET", "/api/v1/credentials"),
        ("GET", BASE),
        ("POST", BASE),
        ("GET", BASE + "/1"),
        ("PUT", BASE + "/1"),
        ("DELETE", BASE + "/1"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.json() == {"error": "Authentication failed", "details": ""}
