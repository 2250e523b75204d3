"""Placeholder: these routes are being written (see issue 2)."""

from __future__ import annotations

from pygarm.api.routing import GarmRouter

router = GarmRouter()
