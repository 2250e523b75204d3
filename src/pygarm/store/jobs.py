"""Placeholder: the JobStore part of the store is being written (see issue 2)."""

from __future__ import annotations

from pygarm.store.base import StoreBase


class JobStore(StoreBase):
    pass
