"""Route builders for repositories, organizations, enterprises, pools and runners (see ``_routes.py``).

GARM serves the same eleven routes under ``/repositories``, ``/organizations`` and ``/enterprises``;
:class:`EntityRoutes` builds them for one collection, and the clients bind each instance's methods.
Five of the eleven are the pool and runner routes below nested under one entity
(``/repositories/{id}/pools/{pool_id}`` is ``/pools/{pool_id}`` of that repository), so an entity's
route is the global route's call with the entity's path in front.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, TypedDict, TypeVar, Unpack

from pydantic import BaseModel

from pygarm.client._core import Call, Unset, decode_list, decode_model, decode_nothing, encode_body, path
from pygarm.client._routes import update_body
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

T = TypeVar("T")
EntityT = TypeVar("EntityT", bound=BaseModel)
CreateT = TypeVar("CreateT", bound=GoRequest)


# --- repositories, organizations, enterprises and their pools ---------------------------------------


class EntityChanges(TypedDict, total=False):
    credentials_name: str | Unset
    webhook_secret: str | Unset
    pool_balancer_type: str | Unset


class PoolChanges(TypedDict, total=False):
    """The keyword arguments of ``update_pool`` and ``update_<entity>_pool``."""

    runner_prefix: str | Unset
    tags: list[str] | Unset
    enabled: bool | Unset
    max_runners: int | Unset
    min_idle_runners: int | Unset
    runner_bootstrap_timeout: int | Unset
    image: str | Unset
    flavor: str | Unset
    os_type: str | Unset
    os_arch: str | Unset
    extra_specs: Any
    github_runner_group: str | Unset
    priority: int | Unset


class EntityRoutes(Generic[EntityT, CreateT]):
    """The eleven routes GARM serves identically under ``/repositories``, ``/organizations`` and
    ``/enterprises``; one instance per collection. The pool and runner methods nest the module's
    builders of the same name (``get_pool`` → :func:`get_pool`) under the entity."""

    def __init__(self, collection: str, model: type[EntityT], create_model: type[CreateT]) -> None:
        self.collection = collection
        self.model = model
        self.create_model = create_model

    def _path(self, suffix: str, *params: str) -> str:
        return path("/" + self.collection + suffix, *params)

    def _nested(self, entity_id: str, call: Call[T]) -> Call[T]:
        """A global pool or runner route's ``call``, for the pools of this one entity."""
        return dataclasses.replace(call, path=self._path("/{}", entity_id) + call.path)

    def list_all(self) -> Call[list[EntityT]]:
        """``GET /<collection>``: all of them (GARM answers ``null`` for none; this returns ``[]``)."""
        return Call("GET", "/" + self.collection, decode_list(self.model))

    def get(self, entity_id: str) -> Call[EntityT]:
        """``GET /<collection>/{id}``: with its pools."""
        return Call("GET", self._path("/{}", entity_id), decode_model(self.model))

    def create(self, params: CreateT) -> Call[EntityT]:
        """``POST /<collection>``."""
        return Call("POST", "/" + self.collection, decode_model(self.model), encode_body(params))

    def update(self, entity_id: str, **changes: Unpack[EntityChanges]) -> Call[EntityT]:
        """``PUT /<collection>/{id}``: new credentials, webhook secret or pool balancer type."""
        body = update_body(UpdateEntityParams, changes)
        return Call("PUT", self._path("/{}", entity_id), decode_model(self.model), body)

    def delete(self, entity_id: str, *, keep_webhook: bool = False) -> Call[None]:
        """``DELETE /<collection>/{id}``: refused while it has pools."""
        query = {"keepWebhook": "true"} if keep_webhook else {}
        return Call("DELETE", self._path("/{}", entity_id), decode_nothing, query=query)

    def list_pools(self, entity_id: str) -> Call[list[Pool]]:
        """``GET /<collection>/{id}/pools``."""
        return self._nested(entity_id, list_pools())

    def create_pool(self, entity_id: str, params: CreatePoolParams) -> Call[Pool]:
        """``POST /<collection>/{id}/pools``."""
        return Call("POST", self._path("/{}/pools", entity_id), decode_model(Pool), encode_body(params))

    def get_pool(self, entity_id: str, pool_id: str) -> Call[Pool]:
        """``GET /<collection>/{id}/pools/{pool_id}``."""
        return self._nested(entity_id, get_pool(pool_id))

    def update_pool(self, entity_id: str, pool_id: str, **changes: Unpack[PoolChanges]) -> Call[Pool]:
        """``PUT /<collection>/{id}/pools/{pool_id}``: as :func:`update_pool`, through the entity."""
        return self._nested(entity_id, update_pool(pool_id, **changes))

    def delete_pool(self, entity_id: str, pool_id: str) -> Call[None]:
        """``DELETE /<collection>/{id}/pools/{pool_id}``: refused while the pool has runners."""
        return self._nested(entity_id, delete_pool(pool_id))

    def list_instances(self, entity_id: str) -> Call[list[Instance]]:
        """``GET /<collection>/{id}/instances``: the runners of all its pools."""
        return self._nested(entity_id, list_instances())


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


def update_pool(pool_id: str, **changes: Unpack[PoolChanges]) -> Call[Pool]:
    """``PUT /pools/{id}``: change the given fields; ``tags`` replaces the whole set."""
    return Call("PUT", path("/pools/{}", pool_id), decode_model(Pool), update_body(UpdatePoolParams, changes))


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


# Each ``…Changes`` is the field list of its model (``update_body`` checks keywords against the model).
assert PoolChanges.__optional_keys__ == UpdatePoolParams.model_fields.keys()
assert EntityChanges.__optional_keys__ == UpdateEntityParams.model_fields.keys()
