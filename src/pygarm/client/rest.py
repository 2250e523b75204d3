"""The two faces of the REST client: :class:`GarmClient` (blocking) and :class:`AsyncGarmClient` (asyncio).

Both hold an httpx client and implement one method, ``send(call)``: put the token on the request, send
it, hand status and body to :func:`~pygarm.client._core.read_response`. Every route method is a route
builder from ``_routes.py`` bound with one line per face (``_binding.py``), so the faces have the same
methods with the same signatures and differ only in ``await``.

Tests plug an ``httpx.MockTransport`` or ``httpx.ASGITransport`` in through ``transport=``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

import httpx

from pygarm.client import _entity_routes as e
from pygarm.client import _routes as r
from pygarm.client._binding import async_route, sync_route
from pygarm.client._core import DEFAULT_TIMEOUT_S, USER_AGENT, Call, auth_header, read_response, rest_base
from pygarm.client._protocol import EVENTS_PATH, FilterSpec, Gap, build_filter, events_url
from pygarm.client.errors import ConnectError
from pygarm.client.events import AsyncEventStream, EventStream
from pygarm.client.profiles import ProfileFile

__all__ = ["AsyncGarmClient", "GarmClient"]

T = TypeVar("T")
GapCallback = Callable[[Gap], None] | None


class _Base:
    """What both faces share: the URLs, the token and the headers of a call."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_url = rest_base(self.base_url)
        self.token = token

    def _headers(self, call: Call[T]) -> dict[str, str]:
        if call.authenticated and self.token:
            return auth_header(self.token)
        return {}

    def _events_args(self, filters: FilterSpec) -> tuple[str, str, bytes]:
        """URL, token and filter message of an events stream; the filter is checked before connecting."""
        message = build_filter(filters)
        return events_url(self.base_url, EVENTS_PATH), self.token or "", message

    def _connect_error(self, exc: httpx.TransportError) -> ConnectError:
        return ConnectError(f"cannot reach {self.base_url}: {exc or type(exc).__name__}")


class GarmClient(_Base):
    """A blocking client for one GARM/pygarm server.

    ``token`` is a JWT from :meth:`login` (or a garm-cli profile: :meth:`from_profile`). Every method
    raises :class:`~pygarm.client.errors.APIError` for an error answer and
    :class:`~pygarm.client.errors.ConnectError` when the server cannot be reached.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token)
        self._http = httpx.Client(
            base_url=self.api_url,
            timeout=timeout,
            verify=verify,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    @classmethod
    def from_profile(cls, name: str | None = None, profiles: ProfileFile | None = None) -> GarmClient:
        """A client for a garm-cli profile (the active one by default)."""
        profile = (profiles or ProfileFile.load()).require(name)
        return cls(profile.base_url, profile.bearer_token)

    def send(self, call: Call[T]) -> T:
        """Send one built call and decode the answer (every route method ends here)."""
        try:
            response = self._http.request(
                call.method,
                call.path,
                content=call.body,
                params=dict(call.query),
                headers=self._headers(call),
            )
        except httpx.TransportError as exc:
            raise self._connect_error(exc) from exc
        return read_response(call, response.status_code, response.content)

    def login(self, username: str, password: str) -> str:
        """Log in, keep the token on this client for the calls that follow, and return it."""
        self.token = self.send(r.login(username, password)).token
        return self.token

    def events(
        self, filters: FilterSpec = None, *, reconnect: bool = False, on_gap: GapCallback = None
    ) -> EventStream:
        """Typed events; ``filters`` as in :func:`~pygarm.client.build_filter` (default: everything)."""
        url, token, message = self._events_args(filters)
        return EventStream(url, token, message, reconnect=reconnect, on_gap=on_gap)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    first_run = sync_route(r.first_run)
    get_controller = sync_route(r.get_controller)
    get_controller_info = sync_route(r.get_controller_info)
    update_controller = sync_route(r.update_controller)
    get_metrics_token = sync_route(r.get_metrics_token)
    list_providers = sync_route(r.list_providers)
    list_jobs = sync_route(r.list_jobs)
    list_users = sync_route(r.list_users)
    get_user = sync_route(r.get_user)
    update_user = sync_route(r.update_user)
    change_user_password = sync_route(r.change_user_password)
    list_github_endpoints = sync_route(r.list_github_endpoints)
    get_github_endpoint = sync_route(r.get_github_endpoint)
    create_github_endpoint = sync_route(r.create_github_endpoint)
    update_github_endpoint = sync_route(r.update_github_endpoint)
    delete_github_endpoint = sync_route(r.delete_github_endpoint)
    list_github_credentials = sync_route(r.list_github_credentials)
    get_github_credentials = sync_route(r.get_github_credentials)
    create_github_credentials = sync_route(r.create_github_credentials)
    update_github_credentials = sync_route(r.update_github_credentials)
    delete_github_credentials = sync_route(r.delete_github_credentials)
    list_repositories = sync_route(e.REPOSITORIES.list_all)
    get_repository = sync_route(e.REPOSITORIES.get)
    create_repository = sync_route(e.REPOSITORIES.create)
    update_repository = sync_route(e.REPOSITORIES.update)
    delete_repository = sync_route(e.REPOSITORIES.delete)
    list_repository_pools = sync_route(e.REPOSITORIES.list_pools)
    create_repository_pool = sync_route(e.REPOSITORIES.create_pool)
    get_repository_pool = sync_route(e.REPOSITORIES.get_pool)
    update_repository_pool = sync_route(e.REPOSITORIES.update_pool)
    delete_repository_pool = sync_route(e.REPOSITORIES.delete_pool)
    list_repository_instances = sync_route(e.REPOSITORIES.list_instances)
    list_organizations = sync_route(e.ORGANIZATIONS.list_all)
    get_organization = sync_route(e.ORGANIZATIONS.get)
    create_organization = sync_route(e.ORGANIZATIONS.create)
    update_organization = sync_route(e.ORGANIZATIONS.update)
    delete_organization = sync_route(e.ORGANIZATIONS.delete)
    list_organization_pools = sync_route(e.ORGANIZATIONS.list_pools)
    create_organization_pool = sync_route(e.ORGANIZATIONS.create_pool)
    get_organization_pool = sync_route(e.ORGANIZATIONS.get_pool)
    update_organization_pool = sync_route(e.ORGANIZATIONS.update_pool)
    delete_organization_pool = sync_route(e.ORGANIZATIONS.delete_pool)
    list_organization_instances = sync_route(e.ORGANIZATIONS.list_instances)
    list_enterprises = sync_route(e.ENTERPRISES.list_all)
    get_enterprise = sync_route(e.ENTERPRISES.get)
    create_enterprise = sync_route(e.ENTERPRISES.create)
    update_enterprise = sync_route(e.ENTERPRISES.update)
    delete_enterprise = sync_route(e.ENTERPRISES.delete)
    list_enterprise_pools = sync_route(e.ENTERPRISES.list_pools)
    create_enterprise_pool = sync_route(e.ENTERPRISES.create_pool)
    get_enterprise_pool = sync_route(e.ENTERPRISES.get_pool)
    update_enterprise_pool = sync_route(e.ENTERPRISES.update_pool)
    delete_enterprise_pool = sync_route(e.ENTERPRISES.delete_pool)
    list_enterprise_instances = sync_route(e.ENTERPRISES.list_instances)
    list_pools = sync_route(e.list_pools)
    get_pool = sync_route(e.get_pool)
    update_pool = sync_route(e.update_pool)
    delete_pool = sync_route(e.delete_pool)
    list_pool_instances = sync_route(e.list_pool_instances)
    list_instances = sync_route(e.list_instances)
    get_instance = sync_route(e.get_instance)
    delete_instance = sync_route(e.delete_instance)


class AsyncGarmClient(_Base):
    """The asyncio twin of :class:`GarmClient`: the same methods, as coroutines; ``aclose()``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        verify: bool | str = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token)
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            timeout=timeout,
            verify=verify,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )

    @classmethod
    def from_profile(cls, name: str | None = None, profiles: ProfileFile | None = None) -> AsyncGarmClient:
        profile = (profiles or ProfileFile.load()).require(name)
        return cls(profile.base_url, profile.bearer_token)

    async def send(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method,
                call.path,
                content=call.body,
                params=dict(call.query),
                headers=self._headers(call),
            )
        except httpx.TransportError as exc:
            raise self._connect_error(exc) from exc
        return read_response(call, response.status_code, response.content)

    async def login(self, username: str, password: str) -> str:
        self.token = (await self.send(r.login(username, password))).token
        return self.token

    def events(
        self, filters: FilterSpec = None, *, reconnect: bool = False, on_gap: GapCallback = None
    ) -> AsyncEventStream:
        """``async for event in client.events(...)``; see :meth:`GarmClient.events`."""
        url, token, message = self._events_args(filters)
        return AsyncEventStream(url, token, message, reconnect=reconnect, on_gap=on_gap)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    first_run = async_route(r.first_run)
    get_controller = async_route(r.get_controller)
    get_controller_info = async_route(r.get_controller_info)
    update_controller = async_route(r.update_controller)
    get_metrics_token = async_route(r.get_metrics_token)
    list_providers = async_route(r.list_providers)
    list_jobs = async_route(r.list_jobs)
    list_users = async_route(r.list_users)
    get_user = async_route(r.get_user)
    update_user = async_route(r.update_user)
    change_user_password = async_route(r.change_user_password)
    list_github_endpoints = async_route(r.list_github_endpoints)
    get_github_endpoint = async_route(r.get_github_endpoint)
    create_github_endpoint = async_route(r.create_github_endpoint)
    update_github_endpoint = async_route(r.update_github_endpoint)
    delete_github_endpoint = async_route(r.delete_github_endpoint)
    list_github_credentials = async_route(r.list_github_credentials)
    get_github_credentials = async_route(r.get_github_credentials)
    create_github_credentials = async_route(r.create_github_credentials)
    update_github_credentials = async_route(r.update_github_credentials)
    delete_github_credentials = async_route(r.delete_github_credentials)
    list_repositories = async_route(e.REPOSITORIES.list_all)
    get_repository = async_route(e.REPOSITORIES.get)
    create_repository = async_route(e.REPOSITORIES.create)
    update_repository = async_route(e.REPOSITORIES.update)
    delete_repository = async_route(e.REPOSITORIES.delete)
    list_repository_pools = async_route(e.REPOSITORIES.list_pools)
    create_repository_pool = async_route(e.REPOSITORIES.create_pool)
    get_repository_pool = async_route(e.REPOSITORIES.get_pool)
    update_repository_pool = async_route(e.REPOSITORIES.update_pool)
    delete_repository_pool = async_route(e.REPOSITORIES.delete_pool)
    list_repository_instances = async_route(e.REPOSITORIES.list_instances)
    list_organizations = async_route(e.ORGANIZATIONS.list_all)
    get_organization = async_route(e.ORGANIZATIONS.get)
    create_organization = async_route(e.ORGANIZATIONS.create)
    update_organization = async_route(e.ORGANIZATIONS.update)
    delete_organization = async_route(e.ORGANIZATIONS.delete)
    list_organization_pools = async_route(e.ORGANIZATIONS.list_pools)
    create_organization_pool = async_route(e.ORGANIZATIONS.create_pool)
    get_organization_pool = async_route(e.ORGANIZATIONS.get_pool)
    update_organization_pool = async_route(e.ORGANIZATIONS.update_pool)
    delete_organization_pool = async_route(e.ORGANIZATIONS.delete_pool)
    list_organization_instances = async_route(e.ORGANIZATIONS.list_instances)
    list_enterprises = async_route(e.ENTERPRISES.list_all)
    get_enterprise = async_route(e.ENTERPRISES.get)
    create_enterprise = async_route(e.ENTERPRISES.create)
    update_enterprise = async_route(e.ENTERPRISES.update)
    delete_enterprise = async_route(e.ENTERPRISES.delete)
    list_enterprise_pools = async_route(e.ENTERPRISES.list_pools)
    create_enterprise_pool = async_route(e.ENTERPRISES.create_pool)
    get_enterprise_pool = async_route(e.ENTERPRISES.get_pool)
    update_enterprise_pool = async_route(e.ENTERPRISES.update_pool)
    delete_enterprise_pool = async_route(e.ENTERPRISES.delete_pool)
    list_enterprise_instances = async_route(e.ENTERPRISES.list_instances)
    list_pools = async_route(e.list_pools)
    get_pool = async_route(e.get_pool)
    update_pool = async_route(e.update_pool)
    delete_pool = async_route(e.delete_pool)
    list_pool_instances = async_route(e.list_pool_instances)
    list_instances = async_route(e.list_instances)
    get_instance = async_route(e.get_instance)
    delete_instance = async_route(e.delete_instance)
