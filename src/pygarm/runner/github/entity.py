"""Which GitHub account a client acts on: a repository, an organization or an enterprise.

One small value type replaces GARM's three copies of repo/org/enterprise code paths
(docs/design.md#one-code-path-for-three-entity-kinds): every GitHub call is
``<api base>/<entity prefix>/<rest>``, and only the prefix differs by kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote


class EntityKind(StrEnum):
    """GARM's ``GithubEntityType`` values."""

    REPOSITORY = "repository"
    ORGANIZATION = "organization"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True, slots=True)
class GithubEntity:
    """A repository (``owner`` and ``name``), or an organization / enterprise (``name`` only)."""

    kind: EntityKind
    owner: str
    name: str

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError(f"{self.kind.value} name is required")
        if self.kind is EntityKind.REPOSITORY and not self.owner:
            raise ValueError("repository owner is required")
        if self.kind is not EntityKind.REPOSITORY and self.owner:
            raise ValueError(f"an {self.kind.value} has a name only, no owner")

    @classmethod
    def repository(cls, owner: str, name: str) -> GithubEntity:
        return cls(EntityKind.REPOSITORY, owner, name)

    @classmethod
    def organization(cls, name: str) -> GithubEntity:
        return cls(EntityKind.ORGANIZATION, "", name)

    @classmethod
    def enterprise(cls, name: str) -> GithubEntity:
        return cls(EntityKind.ENTERPRISE, "", name)

    @property
    def api_prefix(self) -> str:
        """Path prefix of the entity's API routes, relative to the API base
        (docs/garm-protocol.md#github-calls)."""
        if self.kind is EntityKind.REPOSITORY:
            return f"repos/{_segment(self.owner)}/{_segment(self.name)}"
        if self.kind is EntityKind.ORGANIZATION:
            return f"orgs/{_segment(self.name)}"
        return f"enterprises/{_segment(self.name)}"

    def html_url(self, base_url: str) -> str:
        """The ``repo_url`` handed to providers: ``<base_url>/<owner>/<repo>``, ``<base_url>/<org>`` or
        ``<base_url>/enterprises/<enterprise>`` (docs/garm-protocol.md#bootstrapinstance row 3,
        ``garm@v0.1.5 runner/pool/pool.go:1955-1965``).

        Plain concatenation, as GARM does: a ``base_url`` ending in ``/`` yields ``//``.
        """
        base = base_url
        if self.kind is EntityKind.REPOSITORY:
            return f"{base}/{self.owner}/{self.name}"
        if self.kind is EntityKind.ORGANIZATION:
            return f"{base}/{self.name}"
        return f"{base}/enterprises/{self.name}"

    def __str__(self) -> str:
        if self.kind is EntityKind.REPOSITORY:
            return f"{self.owner}/{self.name}"
        return self.name


def _segment(value: str) -> str:
    # go-github formats names into paths unescaped; quoting only changes names GitHub would reject anyway.
    return quote(value, safe="")
