"""``/openapi.json``: FastAPI's document made valid and true (issue 8 #12).

The handlers return ready-made responses (the Go encoder's bytes), so FastAPI cannot see what they
answer: it would declare every response a string, add 422 answers pygarm never gives, and leave the
request bodies' nested models under ``#/$defs/…``, which does not resolve in an OpenAPI document. This
module rewrites each operation from :data:`REPLIES` (route name → what a success answers) and moves
every nested model into ``components/schemas``. Every error is GARM's ``{"error","details"}`` body
(docs/garm-protocol.md#error-mapping), declared as the ``default`` response. A route missing from
:data:`REPLIES` is a programming error that ``tests/api/test_openapi.py`` catches (it builds the document
with ``strict``); the server still serves FastAPI's guess for it rather than fail.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from pygarm.params import models
from pygarm.store.entity_kinds import KINDS, EntityKind

REF_PREFIX: Final = "#/components/schemas/"
JSON: Final = "application/json"


@dataclass(frozen=True)
class Reply:
    """What a route answers on success: a status and a JSON body of ``shape`` (a type), a body of
    ``media_type`` described in words, or nothing."""

    description: str
    shape: Any = None
    status: int = 200
    media_type: str = JSON


EMPTY = Reply("Done; an empty body with GARM's `Content-Type: application/json`.")
NO_CONTENT = Reply("Deleted (or did not exist).", status=204)
ENTITY_MODELS: Final = {
    EntityKind.REPOSITORY: models.Repository,
    EntityKind.ORGANIZATION: models.Organization,
    EntityKind.ENTERPRISE: models.Enterprise,
}


def _entity_replies() -> dict[str, Reply]:
    replies: dict[str, Reply] = {}
    for kind, model in ENTITY_MODELS.items():
        name = kind.value
        plural = KINDS[kind].api_collection
        replies |= {
            f"list_{name}": Reply(f"All {plural}; `null` when there are none.", list[model] | None),  # type: ignore[valid-type]
            f"create_{name}": Reply(f"The new {name}.", model),
            f"get_{name}": Reply(f"The {name}, with its pools and pool manager status.", model),
            f"update_{name}": Reply(f"The {name} as updated.", model),
            f"delete_{name}": EMPTY,
            f"list_{name}_pools": Reply(f"The {name}'s pools.", list[models.Pool]),
            f"create_{name}_pool": Reply("The new pool.", models.Pool),
            f"get_{name}_pool": Reply("The pool.", models.Pool),
            f"update_{name}_pool": Reply("The pool as updated.", models.Pool),
            f"delete_{name}_pool": EMPTY,
            f"list_{name}_instances": Reply(f"The runners of the {name}'s pools.", list[models.Instance]),
        }
        if kind is not EntityKind.ENTERPRISE:
            replies |= {
                f"install_{name}_webhook": Reply("The hook as installed on GitHub.", models.HookInfo),
                f"uninstall_{name}_webhook": EMPTY,
                f"get_{name}_webhook": Reply("The hook GitHub has for this controller.", models.HookInfo),
            }
    return replies


REPLIES: Final[dict[str, Reply]] = {
    "list_all_pools": Reply("Every pool.", list[models.Pool]),
    "get_pool": Reply("The pool, with its runners.", models.Pool),
    "update_pool": Reply("The pool as updated.", models.Pool),
    "delete_pool": EMPTY,
    "list_pool_instances": Reply("The pool's runners.", list[models.Instance]),
    "list_all_instances": Reply("Every runner.", list[models.Instance]),
    "get_instance": Reply("The runner.", models.Instance),
    "delete_instance": EMPTY,
    "list_all_jobs": Reply("Every recorded workflow job.", list[models.Job]),
    "get_controller": Reply("The controller.", models.ControllerInfo),
    "update_controller": Reply("The controller as updated.", models.ControllerInfo),
    "get_controller_info_legacy": Reply("The controller.", models.ControllerInfo),
    "metrics_token": Reply("A token for the metrics endpoint.", models.JWTResponse),
    "list_providers": Reply("The configured providers.", list[models.Provider]),
    "first_run": Reply("The first admin user.", models.User),
    "login": Reply("A JWT for the admin API.", models.JWTResponse),
    "list_endpoints": Reply(
        "Every GitHub endpoint; `null` when there are none.", list[models.GithubEndpoint] | None
    ),
    "create_endpoint": Reply("The new endpoint.", models.GithubEndpoint),
    "get_endpoint": Reply("The endpoint.", models.GithubEndpoint),
    "update_endpoint": Reply("The endpoint as updated.", models.GithubEndpoint),
    "delete_endpoint": NO_CONTENT,
    "list_credentials_legacy": Reply(
        "Every credential (no secrets); `null` when there are none.", list[models.GithubCredentials] | None
    ),
    "list_credentials": Reply(
        "Every credential (no secrets); `null` when there are none.", list[models.GithubCredentials] | None
    ),
    "create_credentials": Reply("The new credentials (no secrets).", models.GithubCredentials),
    "get_credentials": Reply("The credentials and what uses them (no secrets).", models.GithubCredentials),
    "update_credentials": Reply("The credentials as updated (no secrets).", models.GithubCredentials),
    "delete_credentials": NO_CONTENT,
    "list_users": Reply("Every user.", list[models.User]),
    "get_user": Reply("The user.", models.User),
    "update_user": Reply("The user as updated.", models.User),
    "change_password": Reply("The user (every token issued before is now refused).", models.User),
    "instance_status": EMPTY,
    "instance_system_info": EMPTY,
    "runner_registration_token": Reply(
        "The registration token itself, not JSON-encoded, under GARM's `Content-Type: application/json`."
    ),
    "jit_credentials_file": Reply(
        "The runner's JIT configuration file, decoded.", {"type": "string", "format": "binary"},
        media_type="application/octet-stream",
    ),
    "runner_service_name": Reply("The runner's service name.", {"type": "string"}, media_type="text/plain"),
    "systemd_unit_file": Reply("The runner's systemd unit.", {"type": "string"}, media_type="text/plain"),
    "root_certificate_bundle": Reply(
        "The CA bundle of the runner's endpoint; `null` without one.", models.CertificateBundle | None
    ),
    "get_leadership": Reply(
        "Which replica runs which background job; `{\"mode\": \"single\"}` on one process.",
        {
            "type": "object",
            "required": ["mode"],
            "properties": {
                "mode": {"type": "string", "enum": ["single", "replicas"]},
                "replica": {"type": "string"},
                "acting": {"type": "array", "items": {"type": "string"}},
                "leases": {"type": "array", "items": {"type": "object"}},
                "replicas": {"type": "array", "items": {"type": "object"}},
            },
        },
    ),
    "webhook": EMPTY,
    "controller_webhook": EMPTY,
    **_entity_replies(),
}


def _schema(shape: Any, components: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of a type (its nested models moved into ``components``), or ``shape`` itself when
    it already is a schema."""
    if isinstance(shape, dict):
        return dict(shape)
    schema = TypeAdapter(shape).json_schema(by_alias=True, ref_template=REF_PREFIX + "{model}")
    schema = _hoist(schema, components)
    if set(schema) == {"$ref"}:  # a recursive model: pydantic already made it a reference
        return schema
    if isinstance(shape, type) and issubclass(shape, BaseModel):  # a model itself: by reference
        _add_component(components, shape.__name__, schema)
        return {"$ref": REF_PREFIX + shape.__name__}
    return schema


def _hoist(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Move ``$defs`` into ``components`` and point every ``#/$defs/X`` there; a name already taken by a
    different schema is an error (two models with one title)."""
    schema = _rewrite_refs(schema)
    for name, definition in schema.pop("$defs", {}).items():
        _add_component(components, name, definition)
    return schema


def _add_component(components: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    if components.setdefault(name, schema) != schema:
        raise ValueError(f"two different schemas are named {name}")


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: value.replace("#/$defs/", REF_PREFIX)
            if key == "$ref" and isinstance(value, str)
            else _rewrite_refs(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _operation_responses(reply: Reply, components: dict[str, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": reply.description}
    if reply.shape is not None:
        success["content"] = {reply.media_type: {"schema": _schema(reply.shape, components)}}
    error_schema = _schema(models.APIErrorResponse, components)
    return {
        str(reply.status): success,
        "default": {
            "description": "GARM's error body (docs/garm-protocol.md#error-mapping).",
            "content": {JSON: {"schema": error_schema}},
        },
    }


def build_document(app: FastAPI, *, strict: bool = False) -> dict[str, Any]:
    """The OpenAPI document of ``app``; ``strict``: raise if a documented route has no entry in
    :data:`REPLIES`."""
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components: dict[str, Any] = {}
    routes = {
        (method.lower(), route.path): route
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            route = routes[(method, path)]
            reply = REPLIES.get(route.name)
            if reply is not None:
                operation["responses"] = _operation_responses(reply, components)
            elif strict:
                raise KeyError(f"no documented reply for route {route.name} ({method.upper()} {path})")
            else:  # a route added without an entry: still serve the document (the tests build it strictly)
                operation["responses"].pop("422", None)
            # FastAPI's copy went through its OpenAPI model, which turns int64 bounds into floats and
            # drops null defaults: take the route's own.
            body = (route.openapi_extra or {}).get("requestBody")
            if body is not None:
                body = copy.deepcopy(body)
                content = body["content"][JSON]
                content["schema"] = _hoist(content["schema"], components)
                operation["requestBody"] = body
    fastapi_schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        fastapi_schemas.pop(name, None)
    for name, schema in fastapi_schemas.items():
        _add_component(components, name, schema)
    document["components"] = {"schemas": dict(sorted(components.items()))}
    return document


def install(app: FastAPI) -> None:
    """Serve :func:`build_document` at ``/openapi.json`` (built once, on first request)."""
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            cached.update(build_document(app))
        return cached

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["REPLIES", "Reply", "build_document", "install"]
