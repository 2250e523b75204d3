"""Building the configured providers for the pool managers (``[[provider]]`` sections)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pygarm.config import ProviderSection
from pygarm.runner.providers import ExternalProvider, ExternalProviderConfig, Provider, resolve_executable

log = logging.getLogger(__name__)


def build_providers(
    sections: Sequence[ProviderSection], controller_id: str, *, timeout: float | None
) -> dict[str, Provider]:
    """The configured ``[[provider]]`` entries as executors. A provider whose executable or config file
    is unusable is still built (its calls fail and record the fault); GARM refuses to start instead."""
    providers: dict[str, Provider] = {}
    for section in sections:
        external = section.external
        config = ExternalProviderConfig(
            name=section.name,
            description=section.description,
            provider_executable=resolve_executable(external.provider_executable, external.provider_dir),
            config_file=external.config_file,
            environment_variables=tuple(external.environment_variables),
            disable_jit_config=section.disable_jit_config,
        )
        try:
            config.validate()
        except ValueError as exc:
            log.error("provider %s is misconfigured: %s", section.name, exc)
        providers[section.name] = ExternalProvider(config, controller_id, timeout=timeout)
    return providers


__all__ = ["build_providers"]
