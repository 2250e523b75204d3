"""Just-in-time runner configuration, and GARM's fallback to registration tokens
(docs/garm-protocol.md#jit-configuration).

A JIT config registers the runner with GitHub up front: GitHub returns the runner's ID and a base64 JSON
map of runner files (``.runner``, ``.credentials``, ``.credentials_rsaparams``; keys keep their leading
dot, values are base64 file contents). The instance later downloads those files from the metadata
endpoint. When anything about it fails, GARM creates the instance without JIT and the runner registers
itself with a registration token instead (docs/garm-protocol.md#other-scenarios (c));
:func:`jit_config_or_none` makes that decision.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from pygarm.errors import GarmError, NotFoundError
from pygarm.runner.github.client import DEFAULT_RUNNER_GROUP_ID, GithubClient
from pygarm.runner.github.entity import EntityKind
from pygarm.runner.github.errors import GithubError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JITConfig:
    """A registered runner and its files. ``files`` are runner credentials: never log them."""

    runner_id: int
    runner_name: str
    files: Mapping[str, str] = field(repr=False)


def decode_jit_config(encoded: str) -> dict[str, str]:
    """``encoded_jit_config`` → ``{".runner": <base64>, …}``: standard base64, then a JSON string map."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("JIT config is not valid base64") from None
    try:
        files = json.loads(raw)
    except ValueError:
        raise ValueError("JIT config is not JSON") from None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ValueError("JIT config is not a map of strings")
    return files


async def runner_group_id(client: GithubClient, name: str) -> int:
    """The ID of the organization's or enterprise's runner group called exactly ``name``."""
    for group in await client.list_runner_groups():
        if group.name == name and group.id is not None:
            return group.id
    raise NotFoundError(f"runner group {name} not found")


async def get_jit_config(
    client: GithubClient, *, instance_name: str, labels: list[str], runner_group: str = ""
) -> JITConfig:
    """GARM's ``GetEntityJITConfig`` (``garm@v0.1.5 util/util.go:362-436``).

    The runner group is looked up by name only for organizations and enterprises; repositories always
    use the default group. If GitHub's answer cannot be decoded, the runner GitHub just registered is
    removed again (it would otherwise linger offline) and a :class:`GithubError` is raised.
    """
    group_id = DEFAULT_RUNNER_GROUP_ID
    if runner_group and client.entity.kind is not EntityKind.REPOSITORY:
        group_id = await runner_group_id(client, runner_group)
    answer = await client.generate_jit_config(name=instance_name, labels=labels, runner_group_id=group_id)
    runner = answer.runner
    assert runner is not None and runner.id is not None and answer.encoded_jit_config is not None  # checked
    try:
        files = decode_jit_config(answer.encoded_jit_config)
    except ValueError as exc:
        try:
            await client.remove_runner(runner.id)
        except GithubError as remove_error:
            log.error("failed to remove runner %d after a bad JIT config: %s", runner.id, remove_error)
        raise GithubError(f"failed to decode JIT config: {exc}") from None
    return JITConfig(runner_id=runner.id, runner_name=runner.name or instance_name, files=files)


async def jit_config_or_none(
    client: GithubClient, *, instance_name: str, labels: list[str], runner_group: str = ""
) -> JITConfig | None:
    """A JIT config, or ``None`` to fall back to a registration token, on *any* failure
    (``garm@v0.1.5 runner/pool/pool.go:729-736``).

    Callers that must react to bad credentials should call :func:`get_jit_config` and catch
    :class:`~pygarm.runner.github.errors.GithubUnauthorizedError` themselves; GARM just falls back.
    """
    try:
        return await get_jit_config(
            client, instance_name=instance_name, labels=labels, runner_group=runner_group
        )
    except GarmError as exc:
        log.warning("failed to get JIT config, falling back to registration token: %s", exc)
        return None
