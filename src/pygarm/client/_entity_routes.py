"""Route builders for repositories, organizations, enterprises, pools and runners (see ``_routes.py``).

GARM serves the same eleven routes under ``/repositories``, ``/organizations`` and ``/enterprises``;
:class:`EntityRoutes` builds them for one collection, and the clients bind each instance's methods.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from pygarm.client._core import (
    UNSET,
    Call,
    Unset,
    decode_list,
    decode_model,
    decode_nothing,
    encode_body,
    given,
    make_request,
    path,
)
from pygarm.params.base import GoRequest
from pygarm.params.entity_requests import (
    CreateEnterpriseParams,
    CreateOrgParams,
    CreatePoolParams,
    CreateRepoParams,
    UpdateEntityParams,
    UpdatePoolParams,
)
from pygarm.params.models import Enterprise, Instance, Organization, Pool, Repository

EntityT = TypeVar("EntityT", bound=BaseModel)
CreateT = TypeVar("CreateT", bound=GoRequest)


# --- repositories, organizations, enterprises and their pools ---------------------------------------


class EntityRoutes(Generic[EntityT, CreateT]):
    """The eleven routes GARM serves identically under ``/repositories``, ``/organizations`` and
    ``/enterprises``; one instance per collection."""

    def __init__(self, collection: str, model: type[EntityT], create_model: type[CreateT]) -> None:
        self.collection = collection
        self.model = model
        self.create_model = create_model

    def _path(self, suffix: str, *params: str) -> str:
        return path("/" + self.collection + suffix, *params)

    def list_all(self) -> Call[list[EntityT]]:
        """``GET /<collection>``: all of them (GARM answers ``null`` for none; this returns ``[]``)."""
        return Call("GET", "/" + self.collection, decode_list(self.model))

    def get(self, entity_id: str) -> Call[EntityT]:
        """``GET /<collection>/{id}``: with its pools."""
        return Call("GET", self._path("/{}", entity_id), decode_model(self.model))

    def create(self, params: CreateT) -> Call[EntityT]:
        """``POST /<collection>``."""
        return Call("POST", "/" + self.collection, decode_model(self.model), encode_body(params))

    def update(
        self,
        entity_id: str,
        *,
        credentials_name: str | Unset = UNSET,
        webhook_secret: str | Unset = UNSET,
        pool_balancer_type: str | Unset = UNSET,
    ) -> Call[EntityT]:
        """``PUT /<collection>/{id}``: new credentials, webhook secret or pool balancer type."""
        values = given(
            credentials_name=credentials_name,
            webhook_secret=webhook_secret,
            pool_balancer_type=pool_balancer_type,
        )
        body = encode_body(make_request(UpdateEntityParams, **values))
        return Call("PUT", self._path("/{}", entity_id), decode_model(self.model), body)

    def delete(self, entity_id: str, *, keep_webhook: bool = False) -> Call[None]:
        """``DELETE /<collection>/{id}``: refused while it has pools."""
        query = {"keepWebhook": "true"} if keep_webhook else {}
        return Call("DELETE", self._path("/{}", entity_id), decode_nothing, query=query)

    def list_pools(self, entity_id: str) -> Call[list[Pool]]:
        """``GET /<collection>/{id}/pools``."""
        return Call("GET", self._path("/{}/pools", entity_id), decode_list(Pool))

    def create_pool(self, entity_id: str, params: CreatePoolParams) -> Call[Pool]:
        """``POST /<collection>/{id}/pools``."""
        return Call("POST", self._path("/{}/pools", entity_id), decode_model(Pool), encode_body(params))

    def get_pool(self, entity_id: str, pool_id: str) -> Call[Pool]:
        """``GET /<collection>/{id}/pools/{pool_id}``."""
        return Call("GET", self._path("/{}/pools/{}", entity_id, pool_id), decode_model(Pool))

    def update_pool(
        self,
        entity_id: str,
        pool_id: str,
        *,
        runner_prefix: str | Unset = UNSET,
        tags: list[str] | Unset = UNSET,
        enabled: bool | Unset = UNSET,
        max_runners: int | Unset = UNSET,
        min_idle_runners: int | Unset = UNSET,
        runner_bootstrap_timeout: int | Unset = UNSET,
        image: str | Unset = UNSET,
        flavor: str | Unset = UNSET,
        os_type: str | Unset = UNSET,
        os_arch: str | Unset = UNSET,
        extra_specs: Any = UNSET,
        github_runner_group: str | Unset = UNSET,
        priority: int | Unset = UNSET,
    ) -> Call[Pool]:
        """``PUT /<collection>/{id}/pools/{pool_id}``: as :func:`update_pool`, through the entity."""
        values = given(
            runner_prefix=runner_prefix,
            tags=tags,
            enabled=enabled,
            max_runners=max_runners,
            min_idle_runners=min_idle_runners,
            runner_bootstrap_timeout=runner_bootstrap_timeout,
            image=image,
            flavor=flavor,
            os_type=os_type,
            os_arch=os_arch,
            extra_specs=extra_specs,
            github_runner_group=github_runner_group,
            priority=priority,
        )
        path_ = self._path("/{}/pools/{}", entity_id, pool_id)
        return Call("PUT", path_, decode_model(Pool), pool_update_body(values))

    def delete_pool(self, entity_id: str, pool_id: str) -> Call[None]:
        """``DELETE /<collection>/{id}/pools/{pool_id}``: refused while the pool has runners."""
        return Call("DELETE", self._path("/{}/pools/{}", entity_id, pool_id), decode_nothing)

    def list_instances(self, entity_id: str) -> Call[list[Instance]]:
        """``GET /<collection>/{id}/instances``: the runners of all its pools."""
        return Call("GET", self._path("/{}/instances", entity_id), decode_list(Instance))


REPOSITORIES = EntityRoutes("repositories", Repository, CreateRepoParams)
ORGANIZATIONS = EntityRoutes("organizations", Organization, CreateOrgParams)
ENTERPRISES = EntityRoutes("enterprises", Enterprise, CreateEnterpriseParams)


# --- pools and instances across entities -----------------------------------------------------------


def list_pools() -> Call[list[Pool]]:
    """``GET /pools``: every pool of every repository, organization and enterprise."""
    return Call("GET", "/pools", decode_list(Pool))


def get_pool(pool_id: str) -> Call[Pool]:
    """``GET /pools/{id}``."""
    return Call("GET", path("/pools/{}", pool_id), decode_model(Pool))


def update_pool(
    pool_id: str,
    *,
    runner_prefix: str | Unset = UNSET,
    tags: list[str] | Unset = UNSET,
    enabled: bool | Unset = UNSET,
    max_runners: int | Unset = UNSET,
    min_idle_runners: int | Unset = UNSET,
    runner_bootstrap_timeout: int | Unset = UNSET,
    image: str | Unset = UNSET,
    flavor: str | Unset = UNSET,
    os_type: str | Unset = UNSET,
    os_arch: str | Unset = UNSET,
    extra_specs: Any = UNSET,
    github_runner_group: str | Unset = UNSET,
    priority: int | Unset = UNSET,
) -> Call[Pool]:
    """``PUT /pools/{id}``: change the given fields; ``tags`` replaces the whole set."""
    values = given(
        runner_prefix=runner_prefix,
        tags=tags,
        enabled=enabled,
        max_runners=max_runners,
        min_idle_runners=min_idle_runners,
        runner_bootstrap_timeout=runner_bootstrap_timeout,
        image=image,
        flavor=flavor,
        os_type=os_type,
        os_arch=os_arch,
        extra_specs=extra_specs,
        github_runner_group=github_runner_group,
        priority=priority,
    )
    return Call("PUT", path("/pools/{}", pool_id), decode_model(Pool), pool_update_body(values))


def pool_update_body(values: dict[str, Any]) -> bytes:
    return encode_body(make_request(UpdatePoolParams, **values))


def delete_pool(pool_id: str) -> Call[None]:
    """``DELETE /pools/{id}``: refused while the pool has runners."""
    return Call("DELETE", path("/pools/{}", pool_id), decode_nothing)


def list_pool_instances(pool_id: str) -> Call[list[Instance]]:
    """``GET /pools/{id}/instances``."""
    return Call("GET", path("/pools/{}/instances", pool_id), decode_list(Instance))


def list_instances() -> Call[list[Instance]]:
    """``GET /instances``: every runner."""
    return Call("GET", "/instances", decode_list(Instance))


def get_instance(name: str) -> Call[Instance]:
    """``GET /instances/{name}``: with addresses and status messages."""
    return Call("GET", path("/instances/{}", name), decode_model(Instance))


def delete_instance(
    name: str, *, force_remove: bool = False, bypass_github_unauthorized: bool = False
) -> Call[None]:
    """``DELETE /instances/{name}``: marks the runner for removal; the pool manager removes it."""
    query = {}
    if force_remove:
        query["forceRemove"] = "true"
    if bypass_github_unauthorized:
        query["bypassGHUnauthorized"] = "true"
    return Call("DELETE", path("/instances/{}", name), decode_nothing, query=query)
