"""How a route builder becomes a client method, for both faces at once.

``list_pools = route(routes.list_pools)``, declared once on the base both clients share
(:class:`~pygarm.client.rest.GarmClient` and :class:`~pygarm.client.rest.AsyncGarmClient`), gives each
face a method with the builder's signature and docstring that builds the :class:`Call` and sends it: a
blocking call on the sync face, a coroutine on the async one. The two faces of httpx each spell out their
verb methods; with some sixty routes that would be two long lists of identical signatures to keep in step
by hand, so here each route is declared once and bound per face when it is looked up. ``ParamSpec`` and
the overloads of ``__get__`` keep the bound methods fully typed for each face, and
``functools.update_wrapper`` keeps ``help()`` and ``inspect.signature()`` showing the builder's
parameters: an update builder's ``**changes: Unpack[…Changes]`` is shown as the keyword-only parameters
it stands for (:func:`spelled_out`), as type checkers see it.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec, Protocol, Self, TypeVar, cast, overload

from pygarm.client._core import UNSET, Call

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class SyncSender(Protocol):
    def send(self, call: Call[T]) -> T: ...


class AsyncSender(Protocol):
    async def send(self, call: Call[T]) -> T: ...


def spelled_out(build: Callable[..., Any]) -> inspect.Signature:
    """The signature of ``build``, with a trailing ``**changes: Unpack[SomeChanges]`` replaced by the
    keyword-only parameters it stands for, each defaulting to :data:`~pygarm.client._core.UNSET` (the
    ``TypedDict``'s keys, in order, with their annotations as written)."""
    signature = inspect.signature(build)
    params = list(signature.parameters.values())
    if not params or params[-1].kind is not inspect.Parameter.VAR_KEYWORD:
        return signature
    unpacked = typing.get_type_hints(build, include_extras=True).get(params.pop().name)
    if typing.get_origin(unpacked) is not typing.Unpack:
        return signature
    (changes,) = typing.get_args(unpacked)
    keywords = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=UNSET,
            annotation=getattr(annotation, "__forward_arg__", annotation),
        )
        for name, annotation in changes.__annotations__.items()
    ]
    return signature.replace(parameters=[*params, *keywords])


class route(Generic[P, T]):
    """Bind a route builder to a client: ``client.method(...)`` returns the decoded result, or a
    coroutine of it when the client's ``send`` is a coroutine function (the async face)."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__
        self.signature = spelled_out(build)

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: SyncSender, owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(self, obj: AsyncSender, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(
        self, obj: SyncSender | AsyncSender | None, owner: type[Any]
    ) -> Self | Callable[P, T] | Callable[P, Coroutine[Any, Any, T]]:
        if obj is None:
            return self
        build = self.build
        if inspect.iscoroutinefunction(obj.send):
            send_async = cast(Callable[[Call[T]], Coroutine[Any, Any, T]], obj.send)

            async def call_async(*args: P.args, **kwargs: P.kwargs) -> T:
                return await send_async(build(*args, **kwargs))

            return self._named(call_async)
        send = cast(Callable[[Call[T]], T], obj.send)

        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return send(build(*args, **kwargs))

        return self._named(call)

    def _named(self, method: F) -> F:
        functools.update_wrapper(method, self.build)
        method.__name__ = method.__qualname__ = self.name
        method.__signature__ = self.signature  # type: ignore[attr-defined]
        return method
