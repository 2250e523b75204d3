"""Configuration of one external provider: GARM's ``[[provider]]`` / ``[provider.external]`` TOML keys.

The config loader builds :class:`ExternalProviderConfig`; the executor only reads it. The pass-through
environment is computed from it once, when the provider object is built, as GARM does at start-up
(docs/garm-protocol.md#provider-execution).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

PROVIDER_TYPE_EXTERNAL: Final = "external"
"""The only ``provider_type`` GARM v0.1.5 accepts (``garm@v0.1.5 config/config.go:469-476``)."""

DEFAULT_EXECUTABLE_NAME: Final = "garm-external-provider"
"""Executable looked up in ``provider_dir`` when ``provider_executable`` is not set."""

RESERVED_ENV_PREFIX: Final = "GARM"
"""Variables whose names start with this are never passed through: they would shadow the protocol's own."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalProviderConfig:
    """One ``[[provider]]`` entry with ``provider_type = "external"``.

    ``provider_executable`` is the resolved absolute path (see :func:`resolve_executable`); ``config_file``
    is handed to the provider verbatim and may be ``""``; ``environment_variables`` are name *prefixes*.
    """

    name: str
    description: str = ""
    provider_executable: str
    config_file: str = ""
    environment_variables: tuple[str, ...] = ()
    disable_jit_config: bool = False

    def validate(self) -> None:
        """GARM's load-time checks (``garm@v0.1.5 config/external.go:65-98``); raises ``ValueError`` with
        GARM's texts."""
        if not self.name:
            raise ValueError("missing provider name")
        if self.config_file:
            if not os.path.isabs(self.config_file):
                raise ValueError("path to config file must be an absolute path")
            if not os.path.exists(self.config_file):
                raise ValueError(f"failed to access config file {self.config_file}")
        if not os.path.isabs(self.provider_executable):
            raise ValueError("executable path must be an absolute path")
        if not os.path.exists(self.provider_executable):
            raise ValueError(f"checking provider executable: stat {self.provider_executable}: no such file")
        if not os.access(self.provider_executable, os.X_OK):
            raise ValueError(f"external provider binary {self.provider_executable} is not executable")


def resolve_executable(provider_executable: str, provider_dir: str) -> str:
    """``provider_executable`` wins, else ``<provider_dir>/garm-external-provider``
    (docs/garm-protocol.md#provider-configuration)."""
    if provider_executable:
        return provider_executable
    return os.path.join(provider_dir, DEFAULT_EXECUTABLE_NAME)


def passthrough_environment(prefixes: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``environ`` a provider inherits (docs/garm-protocol.md#provider-execution,
    ``garm@v0.1.5 config/external.go:49-63``).

    For each prefix in order, every variable whose name starts with it, except ``GARM*`` names. A variable
    matched by two prefixes keeps the position of its last match, as Go's ``exec`` de-duplicates ``Env``.
    """
    selected: dict[str, str] = {}
    for prefix in prefixes:
        for name, value in environ.items():
            if name.startswith(prefix) and not name.startswith(RESERVED_ENV_PREFIX):
                selected.pop(name, None)
                selected[name] = value
    return selected
