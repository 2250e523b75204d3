"""The Store: the only code that writes the database, composed of one part per domain.

Every mutation is one transaction that writes the rows and appends its change event (``WriteTx.emit``)
before committing; every method returns ``params`` wire models, never rows.
"""

from __future__ import annotations

from pygarm.store.controller import ControllerStore
from pygarm.store.entities import EntityStore
from pygarm.store.github import GithubStore
from pygarm.store.instances import InstanceStore
from pygarm.store.jobs import JobStore
from pygarm.store.pools import PoolStore
from pygarm.store.users import UserStore


class Store(ControllerStore, UserStore, GithubStore, EntityStore, PoolStore, InstanceStore, JobStore):
    """All of the store's parts; built once in the app lifespan and passed down."""
