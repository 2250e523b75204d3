"""The parts of GitHub's responses pygarm reads (docs/garm-protocol.md#github-calls), decoded leniently.

Unknown keys are ignored and most fields are optional, as go-github's pointer fields are: GitHub adds
fields freely and GHES versions differ. Secret values (registration tokens, JIT configs, hook secrets) are
excluded from ``repr``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _GithubModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RunnerLabel(_GithubModel):
    id: int | None = None
    name: str | None = None
    type: str | None = None


class GithubRunner(_GithubModel):
    """A self-hosted runner as GitHub lists it; ``status`` ``"offline"`` matters to orphan cleanup."""

    id: int | None = None
    name: str | None = None
    os: str | None = None
    status: str | None = None
    busy: bool | None = None
    labels: list[RunnerLabel] = Field(default_factory=list)

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels if label.name is not None]


class RunnerGroup(_GithubModel):
    id: int | None = None
    name: str | None = None


class RegistrationToken(_GithubModel):
    """``POST …/registration-token``: a runner registration token (secret) and its expiry."""

    token: str | None = Field(default=None, repr=False)
    expires_at: datetime | None = None


class JITRunnerConfig(_GithubModel):
    """``POST …/generate-jitconfig``: the registered runner and its base64 configuration (secret)."""

    runner: GithubRunner | None = None
    encoded_jit_config: str | None = Field(default=None, repr=False)


class Hook(_GithubModel):
    """A repository or organization webhook. ``config`` holds ``url``, ``insecure_ssl``, ``content_type``
    and GitHub's masked ``secret``."""

    id: int | None = None
    name: str | None = None
    active: bool | None = None
    events: list[str] | None = None
    config: dict[str, Any] | None = Field(default=None, repr=False)

    @property
    def url(self) -> str:
        value = (self.config or {}).get("url")
        return value if isinstance(value, str) else ""

    @property
    def insecure_ssl(self) -> bool:
        return (self.config or {}).get("insecure_ssl") == "1"


class InstallationToken(_GithubModel):
    """``POST app/installations/<id>/access_tokens``."""

    token: str = Field(repr=False)
    expires_at: datetime
