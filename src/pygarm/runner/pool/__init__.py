"""Pool managers: what makes runner instances and workflow jobs live (docs/garm-protocol.md#pool-managers,
docs/garm-protocol.md#job-queue).

One :class:`PoolManager` per repository, organization and enterprise, all kept by a
:class:`PoolManagerRegistry` that follows the events hub. The package is split by job:

=====================  ==========================================================================
``scaling``            the rules as pure functions (min-idle, scale-down, retries, job decisions,
                       the pool balancer, label matching, cleanup decisions)
``core``               one manager's state: entity, GitHub client, tools, running flag, locks
``creation``           AddRunner, add-pending (provider ``CreateInstance``), min-idle, retries
``deletion``           DeleteRunner, delete-pending (provider ``DeleteInstance``), scale-down
``jobqueue``           the queued-job consumer and the completed-job purge
``cleanup``            the timeout reaper and orphan cleanup against GitHub's runner list
``manager``            the loops (one task each), refreshes, and the calls other layers make
``registry``           one manager per entity, started and stopped from hub events
=====================  ==========================================================================
"""

from pygarm.runner.pool.core import PoolManagerTimings
from pygarm.runner.pool.manager import PoolManager
from pygarm.runner.pool.registry import POOL_MANAGERS_SERVICE, PoolManagerRegistry, build_providers

__all__ = [
    "POOL_MANAGERS_SERVICE",
    "PoolManager",
    "PoolManagerRegistry",
    "PoolManagerTimings",
    "build_providers",
]
