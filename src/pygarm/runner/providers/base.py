"""The ``Provider`` interface pool managers program against (``garm@v0.1.5 runner/common/provider.go``).

GARM v0.1.5 has one implementation, the external executable (:mod:`.external`); tests may plug in fakes
that satisfy this protocol structurally. Every method is a coroutine because a provider call is slow
(it creates or destroys machines) and must never block the event loop.

Which methods GARM v0.1.5 actually calls, and when (docs/garm-protocol.md#provider-commands):
``create_instance`` for each ``pending_create`` instance, ``delete_instance`` for deletions and around create
retries, ``list_instances`` and ``start_instance`` during orphan cleanup. ``get_instance``, ``stop_instance``
and ``remove_all_instances`` exist but have no caller.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pygarm.params.models import Provider as ProviderInfo
from pygarm.params.provider import BootstrapInstance, ProviderInstance


@runtime_checkable
class Provider(Protocol):
    """One configured provider. Failures raise :class:`~pygarm.runner.providers.errors.ProviderError`."""

    @property
    def name(self) -> str:
        """The ``[[provider]] name``: the key pools refer to in ``provider_name``."""
        ...

    @property
    def disable_jit_config(self) -> bool:
        """True when pools of this provider must use registration tokens instead of JIT configs
        (docs/garm-protocol.md#provider-configuration)."""
        ...

    def as_params(self) -> ProviderInfo:
        """The ``{name, type, description}`` entry of ``GET /api/v1/providers``."""
        ...

    async def create_instance(self, bootstrap: BootstrapInstance) -> ProviderInstance:
        """Create the machine described by ``bootstrap``; the result is validated
        (docs/garm-protocol.md#providerinstance).

        A result with ``status == "error"`` is returned, not raised: GARM stores it as-is
        (docs/garm-protocol.md#provider-errors).
        """
        ...

    async def delete_instance(self, instance: str) -> None:
        """Delete by provider ID, or by instance name when no provider ID is known; already gone is fine."""
        ...

    async def get_instance(self, instance: str) -> ProviderInstance:
        """Describe one instance (never called by GARM v0.1.5)."""
        ...

    async def list_instances(self, pool_id: str) -> list[ProviderInstance]:
        """All instances of a pool; every element is validated, one bad element fails the call
        (docs/garm-protocol.md#minimal-provider)."""
        ...

    async def remove_all_instances(self) -> None:
        """Remove every instance this controller created (never called by GARM v0.1.5)."""
        ...

    async def stop_instance(self, instance: str) -> None:
        """Power an instance off (never called by GARM v0.1.5)."""
        ...

    async def start_instance(self, instance: str) -> None:
        """Power an instance on (orphan cleanup, docs/garm-protocol.md#cleanup)."""
        ...
