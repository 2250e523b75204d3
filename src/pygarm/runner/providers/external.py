"""The external provider: ``garm@v0.1.5 runner/providers/external/external.go``
(docs/garm-protocol.md#external-providers).

Each operation runs the configured executable once (:func:`.process.run_provider_binary`) with a replaced
environment. The ``GARM_*`` variables come first, in GARM's order, then the pass-through variables
(docs/garm-protocol.md#provider-environment). ``CreateInstance`` receives the :class:`BootstrapInstance` as
compact JSON on stdin; Create, Get and List parse stdout as JSON and validate it
(docs/garm-protocol.md#providerinstance). A ``DeleteInstance`` that exits 30 means "not found", which counts
as deleted (docs/garm-protocol.md#provider-errors).

Errors keep GARM's wording, because users read them in ``provider_fault``: ``provider binary <path>
returned error: provider binary failed with stdout: <out>; stderr: <err>: <exec error>``, ``failed to
decode response from binary: <json error>`` and ``failed to validate result: <reason>``.

Unlike GARM, which waits for ever (docs/garm-protocol.md#provider-execution), each run is bounded by
``timeout``; an expired run kills the provider's process group and raises :class:`ProviderTimeoutError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from pygarm.params.models import Provider as ProviderInfo
from pygarm.params.provider import (
    BootstrapInstance,
    ProviderDecodeError,
    ProviderInstance,
    decode_provider_instance,
    decode_provider_instances,
    validate_provider_instance,
)
from pygarm.runner.providers.config import (
    PROVIDER_TYPE_EXTERNAL,
    ExternalProviderConfig,
    passthrough_environment,
)
from pygarm.runner.providers.errors import ProviderError, ProviderTimeoutError
from pygarm.runner.providers.process import ProcessFailure, run_provider_binary

log = logging.getLogger(__name__)

DEFAULT_PROVIDER_TIMEOUT_SECONDS: Final = 600.0
"""Generous for a cloud VM create, yet bounded so a hung provider cannot hold an instance for ever."""

EXIT_CODE_NOT_FOUND: Final = 30
"""provider-common ``ExitCodeNotFound``: on ``DeleteInstance`` it means the instance is already gone."""


class Command(StrEnum):
    """``GARM_COMMAND`` values
    (``garm@v0.1.5 vendor/github.com/cloudbase/garm-provider-common/execution/commands.go:19-27``)."""

    CREATE_INSTANCE = "CreateInstance"
    DELETE_INSTANCE = "DeleteInstance"
    GET_INSTANCE = "GetInstance"
    LIST_INSTANCES = "ListInstances"
    REMOVE_ALL_INSTANCES = "RemoveAllInstances"
    START_INSTANCE = "StartInstance"
    STOP_INSTANCE = "StopInstance"


class ExternalProvider:
    """An external provider executable, driven the way GARM v0.1.5 drives it.

    ``environ`` is the daemon's own environment, read once here for the pass-through variables (default
    :data:`os.environ`); tests pass a mapping instead of mutating the process environment.
    ``timeout`` bounds each run in seconds; ``None`` waits for ever, as GARM does.
    """

    def __init__(
        self,
        config: ExternalProviderConfig,
        controller_id: str,
        *,
        timeout: float | None = DEFAULT_PROVIDER_TIMEOUT_SECONDS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._controller_id = controller_id
        self._timeout = timeout
        self._passthrough = passthrough_environment(
            config.environment_variables, os.environ if environ is None else environ
        )

    # --- identity ------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def executable(self) -> str:
        return self._config.provider_executable

    @property
    def disable_jit_config(self) -> bool:
        return self._config.disable_jit_config

    def as_params(self) -> ProviderInfo:
        config = self._config
        return ProviderInfo(name=config.name, type=PROVIDER_TYPE_EXTERNAL, description=config.description)

    # --- operations ----------------------------------------------------------------------------------

    async def create_instance(self, bootstrap: BootstrapInstance) -> ProviderInstance:
        """``CreateInstance`` with the bootstrap JSON on stdin; the pool ID also goes in ``GARM_POOL_ID``."""
        env = self._environment(Command.CREATE_INSTANCE, ("GARM_POOL_ID", bootstrap.pool_id))
        out = await self._run(Command.CREATE_INSTANCE, env, stdin=bootstrap.to_json())
        return self._decode_one(out)

    async def delete_instance(self, instance: str) -> None:
        env = self._environment(Command.DELETE_INSTANCE, ("GARM_INSTANCE_ID", instance))
        try:
            await self._run(Command.DELETE_INSTANCE, env)
        except ProviderError as exc:
            if isinstance(exc, ProviderTimeoutError) or exc.exit_code != EXIT_CODE_NOT_FOUND:
                raise
            log.debug("provider %s: instance %s not found on delete (exit 30)", self.name, instance)

    async def get_instance(self, instance: str) -> ProviderInstance:
        env = self._environment(Command.GET_INSTANCE, ("GARM_INSTANCE_ID", instance))
        return self._decode_one(await self._run(Command.GET_INSTANCE, env))

    async def list_instances(self, pool_id: str) -> list[ProviderInstance]:
        env = self._environment(Command.LIST_INSTANCES, ("GARM_POOL_ID", pool_id))
        out = await self._run(Command.LIST_INSTANCES, env)
        try:
            instances = decode_provider_instances(out)
        except ProviderDecodeError as exc:
            raise ProviderError(f"failed to decode response from binary: {exc}") from None
        for instance in instances:
            self._validate(instance)
        return instances

    async def remove_all_instances(self) -> None:
        await self._run(Command.REMOVE_ALL_INSTANCES, self._environment(Command.REMOVE_ALL_INSTANCES))

    async def stop_instance(self, instance: str) -> None:
        env = self._environment(Command.STOP_INSTANCE, ("GARM_INSTANCE_ID", instance))
        await self._run(Command.STOP_INSTANCE, env)

    async def start_instance(self, instance: str) -> None:
        env = self._environment(Command.START_INSTANCE, ("GARM_INSTANCE_ID", instance))
        await self._run(Command.START_INSTANCE, env)

    # --- plumbing ------------------------------------------------------------------------------------

    def _environment(self, command: Command, target: tuple[str, str] | None = None) -> dict[str, str]:
        """docs/garm-protocol.md#provider-environment: COMMAND, CONTROLLER_ID, POOL_ID or INSTANCE_ID,
        PROVIDER_CONFIG_FILE, then pass-through."""
        env = {"GARM_COMMAND": command.value, "GARM_CONTROLLER_ID": self._controller_id}
        if target is not None:
            env[target[0]] = target[1]
        env["GARM_PROVIDER_CONFIG_FILE"] = self._config.config_file
        env.update(self._passthrough)
        return env

    async def _run(self, command: Command, env: dict[str, str], *, stdin: bytes = b"") -> bytes:
        try:
            return await run_provider_binary(self.executable, stdin=stdin, env=env, timeout=self._timeout)
        except ProcessFailure as failure:
            error_type = ProviderTimeoutError if failure.timed_out else ProviderError
            log.info("provider %s: %s failed: %s", self.name, command.value, failure.reason)
            raise error_type(
                f"provider binary {self.executable} returned error: {failure}",
                exit_code=failure.exit_code,
                stdout=failure.stdout,
                stderr=failure.stderr,
            ) from None

    def _decode_one(self, out: bytes) -> ProviderInstance:
        try:
            instance = decode_provider_instance(out)
        except ProviderDecodeError as exc:
            raise ProviderError(f"failed to decode response from binary: {exc}") from None
        self._validate(instance)
        return instance

    @staticmethod
    def _validate(instance: ProviderInstance) -> None:
        try:
            validate_provider_instance(instance)
        except ValueError as exc:
            raise ProviderError(f"failed to validate result: {exc}") from None
