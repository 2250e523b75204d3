"""Entity shapes as GARM v0.1.5 serves them (docs/garm-protocol.md#entity-shapes): the REST bodies and the
event payloads.

Field order is Go struct order and matters for byte-exact comparisons. These models have no secret
fields at all (no webhook secret, credential payload, password hash or JIT config): what is not here
cannot leak into a response or an event.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from pygarm.params.base import GoModel, OmitEmpty, OmitNil
from pygarm.params.gojson import GO_ZERO_TIME, ZERO_UUID, GoBytes, GoTime


class GithubEndpoint(GoModel):
    """``params.GithubEndpoint`` (docs/garm-protocol.md#github-endpoint). ``credentials`` is never populated
    by GARM v0.1.5."""

    name: str = ""
    description: str = ""
    api_base_url: str = ""
    upload_base_url: str = ""
    base_url: str = ""
    ca_cert_bundle: Annotated[GoBytes | None, OmitEmpty] = None


class GithubCredentials(GoModel):
    """``params.GithubCredentials`` (docs/garm-protocol.md#github-credentials); note the hyphen in
    ``auth-type``."""

    id: int = 0
    name: Annotated[str, OmitEmpty] = ""
    description: Annotated[str, OmitEmpty] = ""
    api_base_url: str = ""
    upload_base_url: str = ""
    base_url: str = ""
    ca_bundle: Annotated[GoBytes | None, OmitEmpty] = None
    auth_type: str = Field(default="", alias="auth-type")
    repositories: Annotated[list[Repository] | None, OmitEmpty] = None
    organizations: Annotated[list[Organization] | None, OmitEmpty] = None
    enterprises: Annotated[list[Enterprise] | None, OmitEmpty] = None
    endpoint: GithubEndpoint = Field(default_factory=GithubEndpoint)


class PoolManagerStatus(GoModel):
    """Live state of an entity's pool manager (docs/garm-protocol.md#pool-manager-status); events always carry
    ``running: false``."""

    running: bool = False
    failure_reason: Annotated[str, OmitEmpty] = ""


class Tag(GoModel):
    id: str = ""
    name: str = ""


class Address(GoModel):
    address: str = ""
    type: str = ""


class StatusMessage(GoModel):
    created_at: GoTime = GO_ZERO_TIME
    message: str = ""
    event_type: str = ""
    event_level: str = ""


class Job(GoModel):
    """``params.Job`` (docs/garm-protocol.md#job): several fields have no JSON tag and keep their Go names."""

    id: int = 0
    run_id: int = 0
    action: str = ""
    conclusion: str = ""
    status: str = ""
    name: str = ""
    started_at: GoTime = Field(default=GO_ZERO_TIME, alias="StartedAt")
    completed_at: GoTime = Field(default=GO_ZERO_TIME, alias="CompletedAt")
    runner_id: int = 0
    runner_name: str = ""
    runner_group_id: int = 0
    runner_group_name: str = ""
    repository_name: str = Field(default="", alias="RepositoryName")
    repository_owner: str = Field(default="", alias="RepositoryOwner")
    labels: list[str] | None = Field(default=None, alias="Labels")
    repo_id: Annotated[str | None, OmitEmpty] = None
    org_id: Annotated[str | None, OmitEmpty] = None
    enterprise_id: Annotated[str | None, OmitEmpty] = None
    locked_by: str = Field(default=ZERO_UUID, alias="LockedBy")
    created_at: GoTime = GO_ZERO_TIME
    updated_at: GoTime = GO_ZERO_TIME


class Instance(GoModel):
    """``params.Instance`` (docs/garm-protocol.md#instance)."""

    id: Annotated[str, OmitEmpty] = ""
    provider_id: Annotated[str, OmitEmpty] = ""
    agent_id: int = 0
    name: Annotated[str, OmitEmpty] = ""
    os_type: Annotated[str, OmitEmpty] = ""
    os_name: Annotated[str, OmitEmpty] = ""
    os_version: Annotated[str, OmitEmpty] = ""
    os_arch: Annotated[str, OmitEmpty] = ""
    addresses: Annotated[list[Address] | None, OmitEmpty] = None
    status: Annotated[str, OmitEmpty] = ""
    runner_status: Annotated[str, OmitEmpty] = ""
    pool_id: Annotated[str, OmitEmpty] = ""
    provider_fault: Annotated[GoBytes | None, OmitEmpty] = None
    status_messages: Annotated[list[StatusMessage] | None, OmitEmpty] = None
    updated_at: GoTime = GO_ZERO_TIME
    github_runner_group: str = Field(default="", alias="github-runner-group")
    job: Annotated[Job | None, OmitEmpty] = None


class Pool(GoModel):
    """``params.Pool`` (docs/garm-protocol.md#pool); ``runner_prefix`` comes first because Go embeds
    ``RunnerPrefix``."""

    runner_prefix: str = ""
    id: str = ""
    provider_name: str = ""
    max_runners: int = 0
    min_idle_runners: int = 0
    image: str = ""
    flavor: str = ""
    os_type: str = ""
    os_arch: str = ""
    tags: list[Tag] | None = None
    enabled: bool = False
    instances: list[Instance] | None = None
    repo_id: Annotated[str, OmitEmpty] = ""
    repo_name: Annotated[str, OmitEmpty] = ""
    org_id: Annotated[str, OmitEmpty] = ""
    org_name: Annotated[str, OmitEmpty] = ""
    enterprise_id: Annotated[str, OmitEmpty] = ""
    enterprise_name: Annotated[str, OmitEmpty] = ""
    runner_bootstrap_timeout: int = 0
    extra_specs: Annotated[Any, OmitNil] = None
    github_runner_group: str = Field(default="", alias="github-runner-group")
    priority: int = 0


class Repository(GoModel):
    """``params.Repository`` (docs/garm-protocol.md#repository)."""

    id: str = ""
    owner: str = ""
    name: str = ""
    pool: Annotated[list[Pool] | None, OmitEmpty] = None
    credentials_name: Annotated[str, OmitEmpty] = ""
    credentials_id: int = 0
    credentials: GithubCredentials = Field(default_factory=GithubCredentials)
    pool_manager_status: PoolManagerStatus = Field(default_factory=PoolManagerStatus)
    pool_balancing_type: str = ""
    endpoint: GithubEndpoint = Field(default_factory=GithubEndpoint)


class Organization(GoModel):
    """``params.Organization`` (docs/garm-protocol.md#organization-and-enterprise): note ``credentials``
    before ``credentials_id``."""

    id: str = ""
    name: str = ""
    pool: Annotated[list[Pool] | None, OmitEmpty] = None
    credentials_name: Annotated[str, OmitEmpty] = ""
    credentials: GithubCredentials = Field(default_factory=GithubCredentials)
    credentials_id: int = 0
    pool_manager_status: PoolManagerStatus = Field(default_factory=PoolManagerStatus)
    pool_balancing_type: str = ""
    endpoint: GithubEndpoint = Field(default_factory=GithubEndpoint)


class Enterprise(Organization):
    """``params.Enterprise``: the same shape as an organization
    (docs/garm-protocol.md#organization-and-enterprise)."""


class ControllerInfo(GoModel):
    """``params.ControllerInfo`` (docs/garm-protocol.md#controller-info)."""

    controller_id: str = ZERO_UUID
    hostname: str = ""
    metadata_url: str = ""
    callback_url: str = ""
    webhook_url: str = ""
    controller_webhook_url: str = ""
    minimum_job_age_backoff: int = 0
    version: str = ""


class User(GoModel):
    """``params.User`` (docs/garm-protocol.md#user), without the password hash and generation."""

    id: str = ""
    created_at: GoTime = GO_ZERO_TIME
    updated_at: GoTime = GO_ZERO_TIME
    email: str = ""
    username: str = ""
    full_name: str = ""
    enabled: bool = False
    is_admin: bool = False


class Provider(GoModel):
    name: str = ""
    type: str = ""
    description: str = ""


class JWTResponse(GoModel):
    token: str = ""


class HookInfo(GoModel):
    id: int = 0
    url: str = ""
    events: list[str] | None = None
    active: bool = False
    insecure_ssl: bool = False


class CertificateBundle(GoModel):
    root_certificates: dict[str, GoBytes] | None = None


class APIErrorResponse(GoModel):
    """GARM's error body: both keys always present (docs/garm-protocol.md#other-bodies)."""

    error: str = ""
    details: str = ""


GithubCredentials.model_rebuild()

__all__ = [
    "APIErrorResponse",
    "Address",
    "CertificateBundle",
    "ControllerInfo",
    "Enterprise",
    "GithubCredentials",
    "GithubEndpoint",
    "HookInfo",
    "Instance",
    "JWTResponse",
    "Job",
    "Organization",
    "Pool",
    "PoolManagerStatus",
    "Provider",
    "Repository",
    "StatusMessage",
    "Tag",
    "User",
]
