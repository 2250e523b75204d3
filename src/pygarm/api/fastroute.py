"""A route handler that calls pygarm's endpoints without FastAPI's per-request dependency solver.

FastAPI solves an endpoint's dependencies on every request with a generic walk (path, query, header and
cookie parameters of the endpoint and of each sub-dependency, cache keys, scopes): profiled on
``PUT /api/v1/pools/{id}``, that walk was about a third of the event loop's CPU per request, more than
the endpoint itself (docs/performance.md). pygarm's REST endpoints only take ``str`` path parameters,
the ``Request``, and dependencies that are one async function of the request (the auth chain of
``api/deps.py``, the app context, the store). For such an endpoint :class:`FastRoute` builds, once, the
list of what each parameter is, and each request just fills it in, in the parameters' order (so the auth
chain runs, and fails, where it did). Any other endpoint (a query or body parameter, a sync function, a
dependency with parameters of its own) keeps FastAPI's handler unchanged.

The route stays an ``APIRoute``: the same ``request_response`` wrapping, exception handlers, and the
same dependant, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from fastapi import params
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

Filler = Callable[[Request], Any]
"""How one parameter gets its value from the request: its value, or an awaitable of it."""


def _path_value(name: str) -> Filler:
    def fill(request: Request) -> Any:
        return request.path_params[name]

    return fill


def _request(request: Request) -> Request:
    return request


def _dependency(annotation: Any) -> Callable[[Request], Awaitable[Any]] | None:
    """The dependency of ``Annotated[T, Depends(fn)]`` when ``fn`` is ``async def fn(request)``."""
    if get_origin(annotation) is not Annotated:
        return None
    marks = [mark for mark in get_args(annotation)[1:] if isinstance(mark, params.Depends)]
    if len(marks) != 1 or type(marks[0]) is not params.Depends or marks[0].dependency is None:
        return None
    function = marks[0].dependency
    if not inspect.iscoroutinefunction(function):
        return None
    hints = get_type_hints(function)
    arguments = list(inspect.signature(function).parameters.values())
    if len(arguments) != 1 or hints.get(arguments[0].name) not in (Request, HTTPConnection):
        return None
    dependency: Callable[[Request], Awaitable[Any]] = function
    return dependency


def plan(endpoint: Callable[..., Any], path_params: set[str]) -> list[tuple[str, Filler, bool]] | None:
    """For each parameter of ``endpoint``: its name, how to fill it, and whether that is awaited.

    None when any parameter is something else, so that FastAPI's handler serves the endpoint."""
    if not inspect.iscoroutinefunction(endpoint):
        return None
    try:
        hints = get_type_hints(endpoint, include_extras=True)
    except (NameError, TypeError):
        return None
    returned = hints.get("return")
    if not (inspect.isclass(returned) and issubclass(returned, Response)):
        return None
    steps: list[tuple[str, Filler, bool]] = []
    seen: set[Any] = set()
    for parameter in inspect.signature(endpoint).parameters.values():
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            return None
        if parameter.default is not parameter.empty:
            return None
        annotation = hints.get(parameter.name)
        if annotation is Request:
            steps.append((parameter.name, _request, False))
        elif annotation is str and parameter.name in path_params:
            steps.append((parameter.name, _path_value(parameter.name), False))
        elif (dependency := _dependency(annotation)) is not None and dependency not in seen:
            seen.add(dependency)  # FastAPI calls a repeated dependency once: not handled here
            steps.append((parameter.name, dependency, True))
        else:
            return None
    return steps


class FastRoute(APIRoute):
    """An ``APIRoute`` whose handler fills the endpoint's parameters from :func:`plan` when it can."""

    fast = False
    """Whether the last handler built for this route is the planned one."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        steps = None if self.dependencies else plan(self.endpoint, set(self.param_convertors))
        self.fast = steps is not None
        if steps is None:
            return super().get_route_handler()
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            values: dict[str, Any] = {}
            for name, fill, awaited in steps:
                values[name] = await fill(request) if awaited else fill(request)
            response: Response = await endpoint(**values)
            return response

        return handler
