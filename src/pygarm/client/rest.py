"""The two faces of the REST client: :class:`GarmClient` (blocking) and :class:`AsyncGarmClient` (asyncio).

Both share one base, as httpx's ``Client`` and ``AsyncClient`` share ``BaseClient``: it holds the URLs,
the token and the httpx settings, builds each call's request, and declares every route method once (a
route builder from ``_routes.py`` or ``_entity_routes.py``, bound to the face by ``_binding.route``). A
face adds only the I/O: ``send(call)`` sends the built request and hands status and body to
:func:`~pygarm.client._core.read_response`, so the faces have the same methods with the same signatures
and differ only in ``await``.

Tests plug an ``httpx.MockTransport`` or ``httpx.ASGITransport`` in through ``transport=``.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx

from pygarm.client import _entity_routes as e
from pygarm.client import _routes as r
from pygarm.client._binding import route
from pygarm.client._core import DEFAULT_TIMEOUT_S, USER_AGENT, Call, auth_header, read_response, rest_base
from pygarm.client._protocol import EVENTS_PATH, FilterSpec, Gap, MatchSpec, build_filter, events_url
from pygarm.client._resume import Control, StreamOptions
from pygarm.client.errors import ConnectError
from pygarm.client.events import AsyncEventStream, EventStream
from pygarm.client.profiles import ProfileFile

__all__ = ["AsyncGarmClient", "GarmClient"]

T = TypeVar("T")
HttpT = TypeVar("HttpT", bound=httpx.Client | httpx.AsyncClient)
TransportT = TypeVar("TransportT", bound=httpx.BaseTransport | httpx.AsyncBaseTransport)
StreamT = TypeVar("StreamT", bound=EventStream | AsyncEventStream)
GapCallback = Callable[[Gap], None] | None


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx's default context (certifi's CAs, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), made once per
    process: httpx would load the CA bundle for every client, ~20 ms of CPU, even for an ``http://``
    server. A context is meant to be shared."""
    return httpx.create_ssl_context()


class _Base(Generic[HttpT, TransportT, StreamT]):
    """What both faces share: the URLs, the token, the httpx client's settings, the request of a call,
    the events stream's arguments, and every route method (each bound to the face's ``send`` by
    :class:`~pygarm.client._binding.route`). A face adds only what waits: ``send``, ``login`` and
    closing, and names its httpx client and events stream classes."""

    _event_stream: type[StreamT]

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        verify: bool | str = True,
        transport: TransportT | None = None,
    ) -> None:
        """``token`` may be set later by :meth:`login`; ``transport`` replaces httpx's network
        transport (a sync one for the blocking face, an async one for the asyncio face)."""
        self.base_url = base_url.rstrip("/")
        self.api_url = rest_base(self.base_url)
        self.token = token
        self._http = self._open_http(
            transport,
            base_url=self.api_url,
            timeout=timeout,
            verify=default_ssl_context() if verify is True else verify,
            headers={"User-Agent": USER_AGENT},
        )

    @staticmethod
    def _open_http(transport: TransportT | None, **options: Any) -> HttpT:
        """The face's httpx client (``httpx.Client`` or ``httpx.AsyncClient``) with these options."""
        raise NotImplementedError

    @classmethod
    def from_profile(cls, name: str | None = None, profiles: ProfileFile | None = None) -> Self:
        """A client for a garm-cli profile (the active one by default)."""
        profile = (profiles or ProfileFile.load()).require(name)
        return cls(profile.base_url, profile.bearer_token)

    def _request(self, call: Call[T]) -> httpx.Request:
        """The HTTP request of ``call``: under ``/api/v1``, with the token unless the route needs none."""
        headers = auth_header(self.token) if call.authenticated and self.token else {}
        return self._http.build_request(
            call.method, call.path, content=call.body, params=dict(call.query), headers=headers
        )

    def events(
        self,
        filters: FilterSpec = None,
        *,
        reconnect: bool = False,
        on_gap: GapCallback = None,
        resume: bool = False,
        since: int | None = None,
        seq: bool = False,
        snapshot: bool = False,
        ack: bool = False,
        bookmark: float | None = None,
        match: MatchSpec = None,
        on_control: Callable[[Control], None] | None = None,
    ) -> StreamT:
        """Typed events, with ``for`` on the blocking client and ``async for`` on the asyncio one;
        ``filters`` as in :func:`~pygarm.client.build_filter` (default: everything). The filter is
        checked here, before anything connects.

        pygarm's extensions (docs/events.md), all off by default (GARM's protocol): ``resume=True``
        reconnects after drops and restarts and continues from the last ``seq`` received, with no gap and
        no duplicate (``ResumeUnavailable`` if the server's log no longer reaches back); ``since=N``
        starts after ``seq`` N; ``snapshot`` first sends the current state (operation ``snapshot``);
        ``match`` adds field filters to every filter (``{"pool_id": id}``); ``seq``, ``ack`` and
        ``bookmark`` as on the wire; ``on_control`` receives the control frames. The stream's ``last_seq``
        is the position to persist."""
        message = build_filter(filters, match=match)
        options = StreamOptions(
            seq=seq, since=since, snapshot=snapshot, ack=ack, bookmark=bookmark, resume=resume
        )
        url = events_url(self.base_url, EVENTS_PATH)
        return self._event_stream(
            url,
            self.token or "",
            message,
            reconnect=reconnect,
            on_gap=on_gap,
            options=options,
            on_control=on_control,
        )

    def _connect_error(self, exc: httpx.TransportError) -> ConnectError:
        return ConnectError(f"cannot reach {self.base_url}: {exc or type(exc).__name__}")

    # Every route, declared once for both faces: a method per route builder, bound to ``send``.

    first_run = route(r.first_run)
    get_controller = route(r.get_controller)
    get_controller_info = route(r.get_controller_info)
    update_controller = route(r.update_controller)
    get_metrics_token = route(r.get_metrics_token)
    list_providers = route(r.list_providers)
    list_jobs = route(r.list_jobs)
    list_users = route(r.list_users)
    get_user = route(r.get_user)
    update_user = route(r.update_user)
    change_user_password = route(r.change_user_password)
    list_github_endpoints = route(r.list_github_endpoints)
    get_github_endpoint = route(r.get_github_endpoint)
    create_github_endpoint = route(r.create_github_endpoint)
    update_github_endpoint = route(r.update_github_endpoint)
    delete_github_endpoint = route(r.delete_github_endpoint)
    list_github_credentials = route(r.list_github_credentials)
    get_github_credentials = route(r.get_github_credentials)
    create_github_credentials = route(r.create_github_credentials)
    update_github_credentials = route(r.update_github_credentials)
    delete_github_credentials = route(r.delete_github_credentials)
    list_repositories = route(e.REPOSITORIES.list_all)
    get_repository = route(e.REPOSITORIES.get)
    create_repository = route(e.REPOSITORIES.create)
    update_repository = route(e.REPOSITORIES.update)
    delete_repository = route(e.REPOSITORIES.delete)
    list_repository_pools = route(e.REPOSITORIES.list_pools)
    create_repository_pool = route(e.REPOSITORIES.create_pool)
    get_repository_pool = route(e.REPOSITORIES.get_pool)
    update_repository_pool = route(e.REPOSITORIES.update_pool)
    delete_repository_pool = route(e.REPOSITORIES.delete_pool)
    list_repository_instances = route(e.REPOSITORIES.list_instances)
    list_organizations = route(e.ORGANIZATIONS.list_all)
    get_organization = route(e.ORGANIZATIONS.get)
    create_organization = route(e.ORGANIZATIONS.create)
    update_organization = route(e.ORGANIZATIONS.update)
    delete_organization = route(e.ORGANIZATIONS.delete)
    list_organization_pools = route(e.ORGANIZATIONS.list_pools)
    create_organization_pool = route(e.ORGANIZATIONS.create_pool)
    get_organization_pool = route(e.ORGANIZATIONS.get_pool)
    update_organization_pool = route(e.ORGANIZATIONS.update_pool)
    delete_organization_pool = route(e.ORGANIZATIONS.delete_pool)
    list_organization_instances = route(e.ORGANIZATIONS.list_instances)
    list_enterprises = route(e.ENTERPRISES.list_all)
    get_enterprise = route(e.ENTERPRISES.get)
    create_enterprise = route(e.ENTERPRISES.create)
    update_enterprise = route(e.ENTERPRISES.update)
    delete_enterprise = route(e.ENTERPRISES.delete)
    list_enterprise_pools = route(e.ENTERPRISES.list_pools)
    create_enterprise_pool = route(e.ENTERPRISES.create_pool)
    get_enterprise_pool = route(e.ENTERPRISES.get_pool)
    update_enterprise_pool = route(e.ENTERPRISES.update_pool)
    delete_enterprise_pool = route(e.ENTERPRISES.delete_pool)
    list_enterprise_instances = route(e.ENTERPRISES.list_instances)
    list_pools = route(e.list_pools)
    get_pool = route(e.get_pool)
    update_pool = route(e.update_pool)
    delete_pool = route(e.delete_pool)
    list_pool_instances = route(e.list_pool_instances)
    list_instances = route(e.list_instances)
    get_instance = route(e.get_instance)
    delete_instance = route(e.delete_instance)


class GarmClient(_Base[httpx.Client, httpx.BaseTransport, EventStream]):
    """A blocking client for one GARM/pygarm server.

    ``token`` is a JWT from :meth:`login` (or a garm-cli profile: :meth:`from_profile`). Every method
    raises :class:`~pygarm.client.errors.APIError` for an error answer and
    :class:`~pygarm.client.errors.ConnectError` when the server cannot be reached.
    """

    _event_stream = EventStream

    @staticmethod
    def _open_http(transport: httpx.BaseTransport | None, **options: Any) -> httpx.Client:
        return httpx.Client(transport=transport, **options)

    def send(self, call: Call[T]) -> T:
        """Send one built call and decode the answer (every route method ends here)."""
        try:
            response = self._http.send(self._request(call))
        except httpx.TransportError as exc:
            raise self._connect_error(exc) from exc
        return read_response(call, response.status_code, response.content)

    def login(self, username: str, password: str) -> str:
        """Log in, keep the token on this client for the calls that follow, and return it."""
        self.token = self.send(r.login(username, password)).token
        return self.token

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class AsyncGarmClient(_Base[httpx.AsyncClient, httpx.AsyncBaseTransport, AsyncEventStream]):
    """The asyncio twin of :class:`GarmClient`: the same methods, as coroutines; ``aclose()``."""

    _event_stream = AsyncEventStream

    @staticmethod
    def _open_http(transport: httpx.AsyncBaseTransport | None, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, **options)

    async def send(self, call: Call[T]) -> T:
        try:
            response = await self._http.send(self._request(call))
        except httpx.TransportError as exc:
            raise self._connect_error(exc) from exc
        return read_response(call, response.status_code, response.content)

    async def login(self, username: str, password: str) -> str:
        self.token = (await self.send(r.login(username, password))).token
        return self.token

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()
