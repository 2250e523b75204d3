"""How a route builder becomes a client method, once for each face.

``list_pools = sync_route(routes.list_pools)`` on :class:`~pygarm.client.rest.GarmClient` gives a method
with the builder's signature and docstring that builds the :class:`Call` and sends it; ``async_route``
does the same for :class:`~pygarm.client.rest.AsyncGarmClient`, returning a coroutine. The two faces of
httpx each spell out their verb methods; with some sixty routes that would be two long lists of
identical signatures to keep in step by hand, so here each route is declared once and bound twice.
``ParamSpec`` keeps the bound methods fully typed, and ``functools.update_wrapper`` keeps ``help()``
and ``inspect.signature()`` showing the builder's parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec, Protocol, Self, TypeVar, overload

from pygarm.client._core import Call

P = ParamSpec("P")
T = TypeVar("T")


class SyncSender(Protocol):
    def send(self, call: Call[T]) -> T: ...


class AsyncSender(Protocol):
    async def send(self, call: Call[T]) -> T: ...


class sync_route(Generic[P, T]):
    """Bind a route builder to a blocking client: ``client.method(...)`` returns the decoded result."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: SyncSender, owner: type[Any]) -> Callable[P, T]: ...

    def __get__(self, obj: SyncSender | None, owner: type[Any]) -> Self | Callable[P, T]:
        if obj is None:
            return self
        build = self.build

        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return obj.send(build(*args, **kwargs))

        functools.update_wrapper(method, build)
        method.__name__ = method.__qualname__ = self.name
        return method


class async_route(Generic[P, T]):
    """Bind a route builder to an asyncio client: ``await client.method(...)``."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: AsyncSender, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(
        self, obj: AsyncSender | None, owner: type[Any]
    ) -> Self | Callable[P, Coroutine[Any, Any, T]]:
        if obj is None:
            return self
        build = self.build

        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await obj.send(build(*args, **kwargs))

        functools.update_wrapper(method, build)
        method.__name__ = method.__qualname__ = self.name
        return method
