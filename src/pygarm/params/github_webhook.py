"""The ``workflow_job`` webhook payload as GARM v0.1.5 decodes it (``garm@v0.1.5 params/github.go:28-209``,
docs/garm-protocol.md#workflow-job-payload), and the small request bodies of the instance-facing and
webhook-management routes.

GARM decodes the payload with ``json.Unmarshal`` into a fixed struct, so pygarm mirrors what that means on
the wire: keys match case-insensitively, unknown keys are ignored, ``null`` leaves a field at its zero
value, and a value of the wrong JSON type (``"id": "abc"``, a float for an integer, an integer outside
``int64``, a time that is not RFC 3339) fails the whole decode, which the webhook route answers with 400
``invalid request``. Only the
fields GARM reads or type-checks in a way that a real GitHub payload could trip are declared; the struct's
long tail of URL strings is left out because a string there can never fail a decode of GitHub's payloads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from pygarm.params.base import GoRequest
from pygarm.params.github_requests import GoInt64
from pygarm.params.gojson import GO_ZERO_TIME

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _go_time(value: Any) -> datetime:
    """``time.Time.UnmarshalJSON``: a quoted RFC 3339 string, nothing else (``null`` never gets here)."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("time must be an RFC 3339 string")
    if value.startswith("0001-01-01T00:00:00"):
        return GO_ZERO_TIME
    whole, _, rest = value.partition(".")
    if rest:  # Python keeps microseconds; Go's extra digits (nanoseconds) are dropped
        digits = re.match(r"\d+", rest)
        assert digits is not None
        value = whole + "." + digits.group(0)[:6] + rest[digits.end() :]
    parsed = datetime.fromisoformat(value)
    try:  # the database keeps UTC: a time whose UTC form leaves years 1-9999 could not be read back
        parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None
    return parsed


Stored64 = Annotated[str, Field(max_length=64)]
Stored255 = Annotated[str, Field(max_length=255)]
"""Strings a job record keeps, bounded by their ``workflow_jobs`` column: PostgreSQL refuses a longer
value (the delivery would be answered 200 with the job lost), so the decode refuses it (400 ``invalid
request``) on every backend; GitHub's own values are far shorter."""

GoTimeIn = Annotated[datetime, BeforeValidator(_go_time)]
"""A Go ``time.Time`` field of a request: RFC 3339 only; a JSON ``null`` leaves the zero time."""


def _drop_nulls(data: Any) -> Any:
    """Go leaves a non-pointer field untouched when the JSON value is ``null``; dropping the key before
    validation gives the same result (the field keeps its zero default)."""
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if value is not None}
    return data


class GoPayload(GoRequest):
    """A request struct decoded by ``json.Unmarshal``: case-insensitive keys, ``null`` means zero."""

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_zero(cls, data: Any) -> Any:
        return _drop_nulls(data)


class WorkflowJobStep(GoPayload):
    name: str = ""
    status: str = ""
    conclusion: str = ""
    number: GoInt64 = 0
    started_at: GoTimeIn = GO_ZERO_TIME
    completed_at: GoTimeIn = GO_ZERO_TIME


class WorkflowJobDetails(GoPayload):
    """``workflow_job``: every field of GARM's struct (docs/garm-protocol.md#workflow-job-payload)."""

    id: GoInt64 = 0
    run_id: GoInt64 = 0
    run_url: str = ""
    run_attempt: GoInt64 = 0
    node_id: str = ""
    head_sha: str = ""
    url: str = ""
    html_url: str = ""
    status: Stored64 = ""
    conclusion: Stored64 = ""
    started_at: GoTimeIn = GO_ZERO_TIME
    completed_at: GoTimeIn = GO_ZERO_TIME
    name: str = ""
    steps: list[WorkflowJobStep] | None = None
    check_run_url: str = ""
    labels: list[str] | None = None
    runner_id: GoInt64 = 0
    runner_name: Stored255 = ""
    runner_group_id: GoInt64 = 0
    runner_group_name: Stored255 = ""


class Account(GoPayload):
    """``repository.owner`` and ``sender``."""

    login: Stored255 = ""
    id: GoInt64 = 0
    node_id: str = ""
    type: str = ""
    site_admin: bool = False


class RepositoryLicense(GoPayload):
    key: str = ""
    name: str = ""
    spdx_id: str = ""
    url: str = ""
    node_id: str = ""


class WebhookRepository(GoPayload):
    id: GoInt64 = 0
    node_id: str = ""
    name: Stored255 = ""
    full_name: str = ""
    private: bool = False
    owner: Account = Field(default_factory=Account)
    html_url: str = ""
    description: str = ""
    fork: bool = False
    created_at: GoTimeIn = GO_ZERO_TIME
    updated_at: GoTimeIn = GO_ZERO_TIME
    pushed_at: GoTimeIn = GO_ZERO_TIME
    homepage: str | None = None
    size: GoInt64 = 0
    stargazers_count: GoInt64 = 0
    watchers_count: GoInt64 = 0
    language: str | None = None
    has_issues: bool = False
    has_projects: bool = False
    has_downloads: bool = False
    has_wiki: bool = False
    has_pages: bool = False
    forks_count: GoInt64 = 0
    mirror_url: str | None = None
    archived: bool = False
    disabled: bool = False
    open_issues_count: GoInt64 = 0
    license: RepositoryLicense = Field(default_factory=RepositoryLicense)
    allow_forking: bool = False
    is_template: bool = False
    visibility: str = ""
    forks: GoInt64 = 0
    open_issues: GoInt64 = 0
    watchers: GoInt64 = 0
    default_branch: str = ""


class WebhookOrganization(GoPayload):
    login: str = ""
    id: GoInt64 = 0
    node_id: str = ""
    description: str = ""


class WebhookEnterprise(GoPayload):
    id: GoInt64 = 0
    slug: str = ""
    name: str = ""
    node_id: str = ""
    html_url: str = ""
    created_at: GoTimeIn = GO_ZERO_TIME
    updated_at: GoTimeIn = GO_ZERO_TIME


class WorkflowJobPayload(GoPayload):
    """The ``workflow_job`` event GitHub posts to ``/webhooks`` (GARM's ``params.WorkflowJob``)."""

    action: Annotated[str, Field(max_length=254)] = ""
    workflow_job: WorkflowJobDetails = Field(default_factory=WorkflowJobDetails)
    repository: WebhookRepository = Field(default_factory=WebhookRepository)
    organization: WebhookOrganization = Field(default_factory=WebhookOrganization)
    enterprise: WebhookEnterprise = Field(default_factory=WebhookEnterprise)
    sender: Account = Field(default_factory=Account)


class InstanceUpdateMessage(GoPayload):
    """``POST /api/v1/callbacks/status`` (``garm@v0.1.5 params/requests.go:272-276``); ``status`` is stored
    verbatim."""

    status: str = ""
    message: str = ""
    agent_id: GoInt64 | None = None


class UpdateSystemInfoParams(GoPayload):
    """``POST /api/v1/callbacks/system-info`` (``garm@v0.1.5 params/params.go:809-813``)."""

    os_name: str = ""
    os_version: str = ""
    agent_id: GoInt64 | None = None


class InstallWebhookParams(GoPayload):
    """``POST /api/v1/{repositories|organizations}/{id}/webhook``."""

    webhook_endpoint_type: str = ""
    insecure_ssl: bool = False


__all__ = [
    "GoPayload",
    "GoTimeIn",
    "InstallWebhookParams",
    "InstanceUpdateMessage",
    "UpdateSystemInfoParams",
    "WorkflowJobDetails",
    "WorkflowJobPayload",
]
