"""Shared by the state mirror's live tests: a marker that proves a mirror has caught up, and the REST
state a mirror must equal."""

from __future__ import annotations

import itertools
from typing import Any

from pygarm.client import GarmClient, StateMirror

WAIT_S = 20.0
_markers = itertools.count(5000)


def catch_up(garm: GarmClient, mirror: StateMirror) -> None:
    """Update the controller and wait until the mirror has that update: it then holds every change
    committed before it (the stream is in commit order)."""
    marker = next(_markers)
    garm.update_controller(minimum_job_age_backoff=marker)

    def seen(m: StateMirror) -> bool:
        return any(c.minimum_job_age_backoff == marker for c in m.state.get("controller", {}).values())

    mirror.wait_for(seen, WAIT_S)


def endpoints_by_name(garm: GarmClient) -> dict[str, Any]:
    return {e.name: e.model_dump() for e in garm.list_github_endpoints()}


def mirrored(mirror: StateMirror, entity: str) -> dict[str, Any]:
    return {key: payload.model_dump() for key, payload in mirror.state.get(entity, {}).items()}  # type: ignore[union-attr]
