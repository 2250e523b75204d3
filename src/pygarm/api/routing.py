"""Route registration and request decoding shared by every resource module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter
from fastapi.types import DecoratedCallable
from pydantic import ValidationError
from starlette.requests import Request

from pygarm.api.responses import GoJSONResponse
from pygarm.errors import BadRequestError
from pygarm.params.base import GoRequest
from pygarm.params.storable import require_storable

RequestT = TypeVar("RequestT", bound=GoRequest)


class GarmRouter(APIRouter):
    """An APIRouter whose every route also answers with a trailing slash, as GARM registers both
    forms (docs/garm-protocol.md#auth-chains) instead of redirecting."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_response_class", GoJSONResponse)
        super().__init__(**kwargs)

    def api_route(self, path: str, **kwargs: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        register = super().api_route(path, **kwargs)
        register_slash = super().api_route(path + "/", **{**kwargs, "include_in_schema": False})

        def decorator(func: DecoratedCallable) -> DecoratedCallable:
            register_slash(func)
            return register(func)

        return decorator

    def get(self, path: str, **kwargs: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        return self.api_route(path, methods=["GET"], **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        return self.api_route(path, methods=["POST"], **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        return self.api_route(path, methods=["PUT"], **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[DecoratedCallable], DecoratedCallable]:
        return self.api_route(path, methods=["DELETE"], **kwargs)


async def decode_body(request: Request, model: type[RequestT]) -> RequestT:
    """Decode like ``json.NewDecoder(r.Body).Decode(&x)``: any failure is 400 ``invalid request``."""
    body = await request.body()
    try:
        data = orjson.loads(body)
        require_storable(data)
        # Go decodes `null` into an untouched struct; validation then reports the missing fields.
        return model.model_validate({} if data is None else data)
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise BadRequestError("invalid request") from exc


def body_schema(model: type[GoRequest]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for a route that decodes its body with :func:`decode_body`."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema(by_alias=True)}},
        }
    }
