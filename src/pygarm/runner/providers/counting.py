"""A provider wrapper that counts GARM's ``garm_runner_operations_total`` / ``garm_runner_errors_total``.

GARM counts inside its external provider: one operation before every executable run and one error when
the run fails, its JSON does not decode or the result does not validate; a ``DeleteInstance`` that exits
with "not found" is not an error (``garm@v0.1.5 runner/providers/external/external.go:84-310``). pygarm's
providers raise :class:`~pygarm.runner.providers.errors.ProviderError` in exactly those cases (and
swallow the not-found exit), so counting around any :class:`Provider` gives GARM's figures, for the
external provider and for the fakes tests plug in alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final, Protocol, TypeVar

from pygarm.params.models import Provider as ProviderInfo
from pygarm.params.provider import BootstrapInstance, ProviderInstance
from pygarm.runner.providers.base import Provider

T = TypeVar("T")

# The label values GARM uses (garm@v0.1.5 runner/providers/external/external.go:84,132,163,206,252,278,303).
CREATE: Final = "CreateInstance"
DELETE: Final = "DeleteInstance"
GET: Final = "GetInstance"
LIST: Final = "ListInstances"
REMOVE_ALL: Final = "RemoveAllInstances"
STOP: Final = "Stop"
START: Final = "Start"


class RunnerOperationCounter(Protocol):
    """Where the counts go (``pygarm.runner.metrics.GarmCounters`` fits)."""

    def runner_operation(self, operation: str, provider: str) -> None: ...
    def runner_error(self, operation: str, provider: str) -> None: ...


class CountingProvider:
    """``provider`` with every call counted under its name; otherwise the same provider."""

    def __init__(self, provider: Provider, counters: RunnerOperationCounter) -> None:
        self._provider = provider
        self._counters = counters

    @property
    def name(self) -> str:
        return self._provider.name

    @property
    def disable_jit_config(self) -> bool:
        return self._provider.disable_jit_config

    def as_params(self) -> ProviderInfo:
        return self._provider.as_params()

    async def _count(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        name = self._provider.name
        self._counters.runner_operation(operation, name)
        try:
            return await call()
        except Exception:
            self._counters.runner_error(operation, name)
            raise

    async def create_instance(self, bootstrap: BootstrapInstance) -> ProviderInstance:
        return await self._count(CREATE, lambda: self._provider.create_instance(bootstrap))

    async def delete_instance(self, instance: str) -> None:
        await self._count(DELETE, lambda: self._provider.delete_instance(instance))

    async def get_instance(self, instance: str) -> ProviderInstance:
        return await self._count(GET, lambda: self._provider.get_instance(instance))

    async def list_instances(self, pool_id: str) -> list[ProviderInstance]:
        return await self._count(LIST, lambda: self._provider.list_instances(pool_id))

    async def remove_all_instances(self) -> None:
        await self._count(REMOVE_ALL, self._provider.remove_all_instances)

    async def stop_instance(self, instance: str) -> None:
        await self._count(STOP, lambda: self._provider.stop_instance(instance))

    async def start_instance(self, instance: str) -> None:
        await self._count(START, lambda: self._provider.start_instance(instance))


def count_operations(
    providers: Mapping[str, Provider], counters: RunnerOperationCounter | None
) -> Mapping[str, Provider]:
    """Every provider wrapped in a :class:`CountingProvider` (unchanged without ``counters``)."""
    if counters is None:
        return providers
    return {name: CountingProvider(provider, counters) for name, provider in providers.items()}
