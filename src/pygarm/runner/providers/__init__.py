"""Providers: the things that create and destroy runner machines (docs/garm-protocol.md#external-providers).

``base.Provider`` is the interface pool managers use; ``external.ExternalProvider`` runs a provider
executable per operation, exactly as GARM v0.1.5 does; ``config.ExternalProviderConfig`` is one
``[[provider]]`` entry of the TOML config.
"""

from pygarm.runner.providers.base import Provider
from pygarm.runner.providers.config import ExternalProviderConfig, passthrough_environment, resolve_executable
from pygarm.runner.providers.errors import ProviderError, ProviderTimeoutError
from pygarm.runner.providers.external import (
    DEFAULT_PROVIDER_TIMEOUT_SECONDS,
    EXIT_CODE_NOT_FOUND,
    Command,
    ExternalProvider,
)

__all__ = [
    "DEFAULT_PROVIDER_TIMEOUT_SECONDS",
    "EXIT_CODE_NOT_FOUND",
    "Command",
    "ExternalProvider",
    "ExternalProviderConfig",
    "Provider",
    "ProviderError",
    "ProviderTimeoutError",
    "passthrough_environment",
    "resolve_executable",
]
