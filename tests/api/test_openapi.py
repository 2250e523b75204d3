"""``/openapi.json`` is a valid OpenAPI document and tells the truth (issue 8 #12): every ``$ref``
resolves, the operations that answer JSON declare the objects or arrays they answer (not strings), no
operation declares a 422 pygarm never gives, and errors are GARM's ``{"error","details"}`` body. That
the declared shapes match real answers is checked by the fuzz test (``test_fuzz.py``), which validates
every response against the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from pygarm.api.app import create_app
from pygarm.api.openapi import build_document
from tests.conftest import TEST_PASSPHRASE, make_settings

TEXT_ROUTES = {
    "/api/v1/metadata/runner-registration-token",
    "/api/v1/metadata/credentials/{file_name}",
    "/api/v1/metadata/system/service-name",
    "/api/v1/metadata/systemd/unit-file",
}
"""The instance-facing routes that answer text (as GARM does), not a JSON document."""


def make_app(db_file: Path) -> FastAPI:
    """The app without its lifespan: the document needs no database."""
    db = {"backend": "sqlite3", "passphrase": TEST_PASSPHRASE, "sqlite3": {"db_file": str(db_file)}}
    return create_app(make_settings(db))


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_app(tmp_path_factory.mktemp("openapi") / "x.db").openapi()


def test_every_route_has_a_documented_reply(tmp_path: Path) -> None:
    """A new route needs an entry in ``api/openapi.py``'s table, or the document would guess again."""
    build_document(make_app(tmp_path / "x.db"), strict=True)


async def test_served_document_is_the_built_one(tmp_path: Path, document: dict[str, Any]) -> None:
    transport = httpx.ASGITransport(app=make_app(tmp_path / "x.db"))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9997") as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == document


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from walk(child)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs = [node["$ref"] for node in walk(document) if isinstance(node, dict) and "$ref" in node]
    assert refs, "the document references its component schemas"
    for ref in refs:
        resolve(document, ref)
    assert "#/$defs/GithubPATParams" not in refs
    assert "#/components/schemas/GithubPATParams" in refs


def _kinds(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The JSON types a schema allows (through ``$ref`` and ``anyOf``)."""
    if "$ref" in schema:
        return _kinds(document, resolve(document, schema["$ref"]))
    if "anyOf" in schema:
        return set().union(*(_kinds(document, option) for option in schema["anyOf"]))
    return {schema["type"]} if "type" in schema else set()


def test_json_answers_declare_objects_or_arrays(document: dict[str, Any]) -> None:
    """Every operation that answers a JSON document says which (FastAPI alone declared a string for
    all of them, 14 GETs included)."""
    checked = 0
    for method, path, operation in operations(document):
        success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert len(success) == 1, (method, path)
        content = next(iter(success.values())).get("content", {})
        if method == "get" and path not in TEXT_ROUTES:
            assert "application/json" in content, (method, path)
        if "application/json" in content:
            kinds = _kinds(document, content["application/json"]["schema"])
            assert kinds and kinds <= {"object", "array", "null"}, (method, path, kinds)
            assert kinds - {"null"}, (method, path)
            checked += 1
    assert checked > 50


def test_lists_declare_arrays_of_the_entity(document: dict[str, Any]) -> None:
    jobs = document["paths"]["/api/v1/jobs"]["get"]["responses"]["200"]["content"]["application/json"]
    assert jobs["schema"] == {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}
    job = resolve(document, "#/components/schemas/Job")
    assert {"id", "run_id", "RepositoryOwner", "LockedBy", "Labels"} <= set(job["properties"])
    pool = document["paths"]["/api/v1/pools/{pool_id}"]["get"]["responses"]["200"]["content"]
    assert pool["application/json"]["schema"] == {"$ref": "#/components/schemas/Pool"}


def test_errors_are_garm_bodies_and_never_422(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        error = responses["default"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/APIErrorResponse"}
    body = resolve(document, "#/components/schemas/APIErrorResponse")
    assert set(body["properties"]) == {"error", "details"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_int64_bounds_stay_exact(document: dict[str, Any]) -> None:
    """FastAPI's own pass turns the bounds into floats (9.223372036854776e18 is beyond int64)."""
    app_params = resolve(document, "#/components/schemas/GithubAppParams")
    assert app_params["properties"]["app_id"]["maximum"] == 2**63 - 1
    assert isinstance(app_params["properties"]["app_id"]["maximum"], int)


def test_deletes_declare_their_status(document: dict[str, Any]) -> None:
    endpoint = document["paths"]["/api/v1/github/endpoints/{name}"]["delete"]["responses"]
    assert "204" in endpoint and "content" not in endpoint["204"]
    pool = document["paths"]["/api/v1/pools/{pool_id}"]["delete"]["responses"]
    assert "200" in pool and "content" not in pool["200"]
