"""Request bodies for repositories, organizations, enterprises and their pools
(docs/garm-protocol.md#request-bodies).

Each model decodes the way GARM's Go structs do (:class:`~pygarm.params.base.GoRequest`) and carries the
rules of GARM's ``Validate()`` methods with GARM's messages. Two deliberate differences, both listed in
``docs/compatibility.md``:

* a missing ``webhook_secret`` is ``400 missing secret`` (GARM: ``MissingSecretError`` → 500);
* pool validation failures are ``400`` with GARM's message (GARM wraps them with ``fmt.Errorf`` on the
  repository and enterprise routes, which turns them into a 500 without details,
  docs/garm-protocol.md#error-mapping).

A JSON ``null`` is treated as an absent key: Go leaves a non-pointer field untouched when it decodes
``null``, and sets a pointer field to nil, which GARM's updates read as "unchanged".
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field

from pygarm.errors import BadRequestError
from pygarm.params.base import GoRequest

STORED_INT_MAX = 2**31 - 1
Uint = Annotated[int, Field(ge=0, le=STORED_INT_MAX)]
"""Go ``uint``: a negative or fractional number fails decoding, which GARM answers with 400. pygarm
also refuses values its integer columns cannot hold (GARM: a database error, 500)."""

MAX_NAME_LENGTH = 255
"""Entity names and owners (``VARCHAR(255)`` columns)."""
MAX_TAG_LENGTH = 64
"""Tag names and runner prefixes (``VARCHAR(64)`` columns)."""

POOL_BALANCER_TYPES = ("roundrobin", "pack", "")
"""``PoolBalancerType`` values GARM accepts; ``""`` means "none", read as round-robin
(docs/garm-protocol.md#enums)."""
DEFAULT_POOL_BALANCER_TYPE = "roundrobin"
POOL_OS_TYPES = ("linux", "windows")
"""OS types a pool may have (``garm@v0.1.5 runner/types.go:28-31``)."""
POOL_OS_ARCHES = ("amd64", "arm", "arm64")
"""Architectures a pool may have (``garm@v0.1.5 runner/types.go:34-38``)."""
DEFAULT_RUNNER_PREFIX = "garm"
DEFAULT_RUNNER_BOOTSTRAP_TIMEOUT = 20
"""Minutes (``appdefaults.DefaultRunnerBootstrapTimeout``); pygarm stores it for every entity kind
(docs/garm-protocol.md#pool)."""


def check_length(field: str, value: str, limit: int) -> None:
    """The same answer on every backend: SQLite would store an over-long value, PostgreSQL would fail
    the write. GARM (SQLite only) stores it; pygarm answers 400 (docs/compatibility.md)."""
    if len(value) > limit:
        raise BadRequestError(f"{field} is too long (at most {limit} characters)")


def _check_pool_strings(runner_prefix: str, tags: list[str] | None) -> None:
    check_length("runner_prefix", runner_prefix, MAX_TAG_LENGTH)
    for tag in tags or []:
        check_length("tag", tag, MAX_TAG_LENGTH)


def _check_entity_common(credentials_name: str, webhook_secret: str, pool_balancer_type: str) -> None:
    if not credentials_name:
        raise BadRequestError("missing credentials name")
    if not webhook_secret:
        # GARM: MissingSecretError → 500; a client mistake deserves a 400 (docs/compatibility.md).
        raise BadRequestError("missing secret")
    if pool_balancer_type not in POOL_BALANCER_TYPES:
        raise BadRequestError("invalid pool balancer type")


class CreateEntityParams(GoRequest):
    """What repository, organization and enterprise creation share."""

    name: str = ""
    credentials_name: str = ""
    webhook_secret: str = ""
    pool_balancer_type: str = ""

    missing_name_message: ClassVar[str] = "missing name"

    @property
    def owner_name(self) -> str:
        """The owner of a repository; ``""`` for organizations and enterprises."""
        return ""

    def validate_params(self) -> None:
        """``Create*Params.Validate`` (``garm@v0.1.5 params/requests.go:42-126``)."""
        if not self.name:
            raise BadRequestError(self.missing_name_message)
        _check_entity_common(self.credentials_name, self.webhook_secret, self.pool_balancer_type)
        check_length("name", self.name, MAX_NAME_LENGTH)


class CreateRepoParams(CreateEntityParams):
    """``POST /repositories``."""

    owner: str = ""

    @property
    def owner_name(self) -> str:
        return self.owner

    def validate_params(self) -> None:
        if not self.owner:
            raise BadRequestError("missing owner")
        if not self.name:
            raise BadRequestError("missing repo name")
        _check_entity_common(self.credentials_name, self.webhook_secret, self.pool_balancer_type)
        check_length("owner", self.owner, MAX_NAME_LENGTH)
        check_length("name", self.name, MAX_NAME_LENGTH)


class CreateOrgParams(CreateEntityParams):
    """``POST /organizations``."""

    missing_name_message: ClassVar[str] = "missing org name"


class CreateEnterpriseParams(CreateEntityParams):
    """``POST /enterprises``."""

    missing_name_message: ClassVar[str] = "missing enterprise name"


class UpdateEntityParams(GoRequest):
    """``PUT /<entity>/{id}``: an empty string leaves the field as it is."""

    credentials_name: str = ""
    webhook_secret: str = ""
    pool_balancer_type: str = ""

    def validate_params(self) -> None:
        """GARM's runner checks the balancer type before anything else
        (``garm@v0.1.5 runner/repositories.go``)."""
        if self.pool_balancer_type not in POOL_BALANCER_TYPES:
            raise BadRequestError(f"invalid pool balancer type: {self.pool_balancer_type}")


def check_os_type_and_arch(os_type: str, os_arch: str) -> None:
    """``IsSupportedOSType`` / ``IsSupportedArch`` with GARM's messages
    (``garm@v0.1.5 runner/runner.go:686-706``)."""
    if os_type not in POOL_OS_TYPES:
        raise BadRequestError(f"invalid OS type {os_type}")
    if os_arch not in POOL_OS_ARCHES:
        raise BadRequestError(f"invalid OS architecture {os_arch}")


class CreatePoolParams(GoRequest):
    """``POST /<entity>/{id}/pools`` (``garm@v0.1.5 params/requests.go:176-223``)."""

    runner_prefix: str = ""
    provider_name: str = ""
    max_runners: Uint = 0
    min_idle_runners: Uint = 0
    image: str = ""
    flavor: str = ""
    os_type: str = ""
    os_arch: str = ""
    tags: list[str] | None = None
    enabled: bool = False
    runner_bootstrap_timeout: Uint = 0
    extra_specs: Any = None
    github_runner_group: str = Field(default="", alias="github-runner-group")
    priority: Uint = 0

    def validate_params(self) -> None:
        """``CreatePoolParams.Validate`` then the OS checks, in GARM's order."""
        if not self.provider_name:
            raise BadRequestError("missing provider")
        if self.min_idle_runners > self.max_runners:
            raise BadRequestError("min_idle_runners cannot be larger than max_runners")
        if self.max_runners == 0:
            raise BadRequestError("max_runners cannot be 0")
        if not self.tags:
            raise BadRequestError("missing tags")
        if not self.flavor:
            raise BadRequestError("missing flavor")
        if not self.image:
            raise BadRequestError("missing image")
        check_os_type_and_arch(self.os_type, self.os_arch)
        _check_pool_strings(self.runner_prefix, self.tags)


class UpdatePoolParams(GoRequest):
    """``PUT /pools/{id}`` and ``PUT /<entity>/{id}/pools/{poolID}``.

    Go pointers are ``X | None`` here (absent or null = unchanged, see :meth:`GoRequest.is_set`); plain
    strings are unchanged when empty; ``tags`` replaces the set only when non-empty.
    """

    runner_prefix: str = ""
    tags: list[str] | None = None
    enabled: bool | None = None
    max_runners: Uint | None = None
    min_idle_runners: Uint | None = None
    runner_bootstrap_timeout: Uint | None = None
    image: str = ""
    flavor: str = ""
    os_type: str = ""
    os_arch: str = ""
    extra_specs: Any = None
    github_runner_group: str | None = Field(default=None, alias="github-runner-group")
    priority: Uint | None = None

    def validate_params(self) -> None:
        """GARM stores any ``os_type``/``os_arch`` given here; pygarm applies the create-time checks so
        that a pool can never hold a value its runners cannot be built with (docs/compatibility.md)."""
        if self.os_type:
            check_os_type_and_arch(self.os_type, self.os_arch or POOL_OS_ARCHES[0])
        if self.os_arch:
            check_os_type_and_arch(self.os_type or POOL_OS_TYPES[0], self.os_arch)
        _check_pool_strings(self.runner_prefix, self.tags)


__all__ = [
    "DEFAULT_POOL_BALANCER_TYPE",
    "DEFAULT_RUNNER_BOOTSTRAP_TIMEOUT",
    "DEFAULT_RUNNER_PREFIX",
    "POOL_BALANCER_TYPES",
    "POOL_OS_ARCHES",
    "POOL_OS_TYPES",
    "CreateEnterpriseParams",
    "CreateEntityParams",
    "CreateOrgParams",
    "CreatePoolParams",
    "CreateRepoParams",
    "UpdateEntityParams",
    "UpdatePoolParams",
    "check_os_type_and_arch",
]
