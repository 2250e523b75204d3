"""GitHub endpoint routes against docs/garm-protocol.md#which-operations-emit-events,
docs/garm-protocol.md#github-endpoint, docs/garm-protocol.md#rest-routes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.github_helpers import (
    b64,
    changes_since,
    ghes_endpoint_body,
    key_material,
    last_seq,
    pat_body,
)

ENDPOINT_KEYS = ["name", "description", "api_base_url", "upload_base_url", "base_url"]
GITHUB_COM = (
    b'{"name":"github.com","description":"The github.com endpoint","api_base_url":"https://api.github.com/",'
    b'"upload_base_url":"https://uploads.github.com/","base_url":"https://github.com"}'
)
BASE = "/api/v1/github/endpoints"


def bad_request(details: str) -> dict[str, str]:
    return {"error": "Bad Request", "details": details}


async def test_list_has_the_default_endpoint(admin_client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#github-endpoint default values and key order; docs/garm-protocol.md#auth-chains
    both path forms."""
    for path in (BASE, BASE + "/"):
        response = await admin_client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.content == b"[" + GITHUB_COM + b"]\n"


async def test_create_returns_endpoint_and_emits_create(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    """docs/garm-protocol.md#github-endpoint shape with ``ca_cert_bundle`` as base64;
    docs/garm-protocol.md#which-operations-emit-events one ``github_endpoint/create`` = the REST body."""
    seq = await last_seq(app)
    response = await admin_client.post(BASE, json=ghes_endpoint_body())
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [*ENDPOINT_KEYS, "ca_cert_bundle"]
    assert body["name"] == "ghes" and body["base_url"] == "https://ghes.example.com"
    assert body["ca_cert_bundle"] == b64(key_material().cert_pem)
    get = await admin_client.get(BASE + "/ghes")
    assert get.content == response.content
    changes = await changes_since(app, seq)
    assert [(c.entity_type, c.operation) for c in changes] == [("github_endpoint", "create")]
    assert changes[0].payload + b"\n" == get.content
    listed = (await admin_client.get(BASE)).json()
    assert [endpoint["name"] for endpoint in listed] == ["github.com", "ghes"]


async def test_create_without_ca_bundle_omits_it(admin_client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#github-endpoint: ``ca_cert_bundle`` is omitempty; the trailing-slash form creates
    too (docs/garm-protocol.md#auth-chains)."""
    body = ghes_endpoint_body()
    del body["ca_cert_bundle"]
    response = await admin_client.post(BASE + "/", json=body)
    assert response.status_code == 200
    assert list(response.json()) == ENDPOINT_KEYS


CREATE_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"api_base_url": ""}, "missing api_base_url"),
    ({"api_base_url": "ftp://ghes.example.com"}, "invalid api_base_url"),
    ({"api_base_url": "no-scheme"}, "invalid api_base_url"),
    ({"upload_base_url": ""}, "missing upload_base_url"),
    ({"upload_base_url": "https://"}, "invalid upload_base_url"),
    ({"base_url": ""}, "missing base_url"),
    ({"base_url": "ghes.example.com"}, "invalid base_url"),
    ({"ca_cert_bundle": b64(b"not a pem")}, "invalid ca_cert_bundle"),
    ({"ca_cert_bundle": ""}, "invalid ca_cert_bundle"),
    ({"ca_cert_bundle": b64(key_material().pkcs1_pem)}, "invalid ca_cert_bundle"),
    # GARM's own order: a missing URL is reported before a missing name.
    ({"name": "", "api_base_url": ""}, "missing api_base_url"),
    # pygarm additions (docs/compatibility.md): a name is required and fits the varchar(64) column.
    ({"name": ""}, "missing name"),
    ({"name": "x" * 65}, "name is too long (maximum 64 characters)"),
]


@pytest.mark.parametrize(("overrides", "details"), CREATE_ERRORS)
async def test_create_validation(
    admin_client: httpx.AsyncClient, app: FastAPI, overrides: dict[str, Any], details: str
) -> None:
    """docs/garm-protocol.md#request-bodies: each ``CreateGithubEndpointParams.Validate`` rule → 400 with
    GARM's text, and no event."""
    seq = await last_seq(app)
    response = await admin_client.post(BASE, json=ghes_endpoint_body(**overrides))
    assert response.status_code == 400
    assert response.json() == bad_request(details)
    assert await changes_since(app, seq) == []


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"name": 5}', b'{"ca_cert_bundle": "***"}', b'{"description": ["x"]}']
)
async def test_create_undecodable_body(admin_client: httpx.AsyncClient, content: bytes) -> None:
    """docs/garm-protocol.md#json-encoding, docs/garm-protocol.md#error-mapping: malformed JSON, a type
    mismatch or bad base64 → 400 ``invalid request``."""
    response = await admin_client.post(BASE, content=content)
    assert response.status_code == 400
    assert response.json() == bad_request("invalid request")


async def test_create_null_and_case_insensitive_keys(admin_client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#json-encoding: keys match case-insensitively; ``null`` leaves a Go string
    untouched (empty)."""
    body = ghes_endpoint_body()
    del body["description"]
    body["Description"] = None
    body["API_BASE_URL"] = body.pop("api_base_url")
    response = await admin_client.post(BASE, json=body)
    assert response.status_code == 200
    assert response.json()["description"] == ""
    assert response.json()["api_base_url"] == "https://ghes.example.com/api/v3/"
    # A later null does not undo an earlier value, as Go's decoder processes keys in order.
    response = await admin_client.post(BASE, json={**ghes_endpoint_body(name="other"), "DESCRIPTION": None})
    assert response.json()["description"] == "GitHub Enterprise Server"


async def test_create_duplicate_is_conflict(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#route-rules: a duplicate name (names are case-insensitive,
    docs/garm-protocol.md#github-endpoint) → 409 ``duplicate``."""
    assert (await admin_client.post(BASE, json=ghes_endpoint_body())).status_code == 200
    seq = await last_seq(app)
    for name in ("ghes", "GHES", "GitHub.com"):
        response = await admin_client.post(BASE, json=ghes_endpoint_body(name=name))
        assert response.status_code == 409
        assert response.json() == {"error": "Conflict", "details": "duplicate"}
    assert await changes_since(app, seq) == []


async def test_get(admin_client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#rest-routes ``GET /github/endpoints/{name}``: any letter case finds it; unknown →
    404 ``not found``."""
    for path in (BASE + "/github.com", BASE + "/GitHub.COM/"):
        response = await admin_client.get(path)
        assert response.status_code == 200
        assert response.content == GITHUB_COM + b"\n"
    response = await admin_client.get(BASE + "/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "details": "not found"}


async def test_update_changes_given_fields_and_emits_update(
    admin_client: httpx.AsyncClient, app: FastAPI
) -> None:
    """docs/garm-protocol.md#request-bodies pointer fields: absent or null = unchanged;
    docs/garm-protocol.md#which-operations-emit-events one ``github_endpoint/update`` = GET body."""
    body = ghes_endpoint_body()
    del body["ca_cert_bundle"]
    await admin_client.post(BASE, json=body)
    seq = await last_seq(app)
    response = await admin_client.put(
        BASE + "/GHES",
        json={"description": "new", "base_url": None, "ca_cert_bundle": b64(key_material().cert_pem)},
    )
    assert response.status_code == 200
    updated = response.json()
    assert list(updated) == [*ENDPOINT_KEYS, "ca_cert_bundle"]
    assert updated["name"] == "ghes" and updated["description"] == "new"
    assert updated["base_url"] == body["base_url"] and updated["api_base_url"] == body["api_base_url"]
    get = await admin_client.get(BASE + "/ghes")
    assert get.content == response.content
    changes = await changes_since(app, seq)
    assert [(c.entity_type, c.operation) for c in changes] == [("github_endpoint", "update")]
    assert changes[0].payload + b"\n" == get.content

    response = await admin_client.put(BASE + "/ghes/", json={"api_base_url": "http://10.0.0.1:8080/api/v3/"})
    assert response.status_code == 200
    assert response.json()["api_base_url"] == "http://10.0.0.1:8080/api/v3/"
    assert response.json()["description"] == "new"


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"api_base_url": "ftp://x"}, "invalid api_base_url"),
        ({"upload_base_url": ""}, "invalid upload_base_url"),
        ({"base_url": "https://"}, "invalid base_url"),
        ({"ca_cert_bundle": b64(b"nope")}, "invalid ca_cert_bundle"),
    ],
)
async def test_update_validation(
    admin_client: httpx.AsyncClient, app: FastAPI, body: dict[str, Any], details: str
) -> None:
    """docs/garm-protocol.md#request-bodies ``UpdateGithubEndpointParams.Validate``: a given field must be
    valid (even an empty one)."""
    await admin_client.post(BASE, json=ghes_endpoint_body())
    seq = await last_seq(app)
    response = await admin_client.put(BASE + "/ghes", json=body)
    assert response.status_code == 400
    assert response.json() == bad_request(details)
    assert await changes_since(app, seq) == []


async def test_update_github_com_and_unknown(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#route-rules: ``github.com`` cannot be updated → 400 ``invalid request``; unknown
    → 404; bad JSON → 400."""
    seq = await last_seq(app)
    for path in (BASE + "/github.com", BASE + "/GitHub.com/"):
        response = await admin_client.put(path, json={"description": "mine"})
        assert response.status_code == 400
        assert response.json() == bad_request("invalid request")
    response = await admin_client.put(BASE + "/nope", json={"description": "x"})
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "details": "not found"}
    response = await admin_client.put(BASE + "/nope", content=b"[")
    assert response.status_code == 400
    assert response.json() == bad_request("invalid request")
    assert await changes_since(app, seq) == []


async def test_delete_emits_full_last_state(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#rest-routes: 204 with no body; pygarm's delete event carries the full last state
    (a superset of docs/garm-protocol.md#delete-payloads)."""
    await admin_client.post(BASE, json=ghes_endpoint_body())
    before = await admin_client.get(BASE + "/ghes")
    seq = await last_seq(app)
    response = await admin_client.delete(BASE + "/GHES")
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    changes = await changes_since(app, seq)
    assert [(c.entity_type, c.operation) for c in changes] == [("github_endpoint", "delete")]
    assert changes[0].payload + b"\n" == before.content
    assert (await admin_client.get(BASE + "/ghes")).status_code == 404


async def test_delete_unknown_is_204_without_event(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#rest-routes: deleting an unknown name still answers 204; pygarm emits nothing for
    it (GARM does)."""
    seq = await last_seq(app)
    for path in (BASE + "/nope", BASE + "/nope/"):
        response = await admin_client.delete(path)
        assert response.status_code == 204 and response.content == b""
    assert await changes_since(app, seq) == []


async def test_delete_github_com_and_in_use(admin_client: httpx.AsyncClient, app: FastAPI) -> None:
    """docs/garm-protocol.md#route-rules: ``github.com`` → 400 ``invalid request``; an endpoint used by
    credentials → 400 with a clear message (GARM answers 500 there)."""
    await admin_client.post(BASE, json=ghes_endpoint_body())
    assert (
        await admin_client.post("/api/v1/github/credentials", json=pat_body(endpoint="ghes"))
    ).status_code == 200
    seq = await last_seq(app)
    response = await admin_client.delete(BASE + "/github.com")
    assert response.status_code == 400
    assert response.json() == bad_request("invalid request")
    response = await admin_client.delete(BASE + "/ghes")
    assert response.status_code == 400
    assert response.json() == bad_request(
        "cannot delete endpoint ghes: it is used by credentials, repositories, organizations or enterprises"
    )
    assert await changes_since(app, seq) == []
    assert (await admin_client.get(BASE + "/ghes")).status_code == 200


async def test_routes_require_admin_token(admin_client: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    """docs/garm-protocol.md#auth-chains: the ``apiRouter`` chain; with URLs set, a missing token → 401
    ``Authentication failed``."""
    for method, path in [
        ("GET", BASE),
        ("POST", BASE),
        ("GET", BASE + "/x"),
        ("PUT", BASE + "/x"),
        ("DELETE", BASE + "/x"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.json() == {"error": "Authentication failed", "details": ""}
