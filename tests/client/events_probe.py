"""Deterministic checks of a live events stream, whatever face reads it.

GARM's protocol has no acknowledgement: a client cannot know when the server has applied its filter, and
events committed before that are (correctly) never delivered. So each check brackets what it does with
controller updates, which every filter under test includes:

1. :meth:`Probe.sync` updates the controller until such an update comes back: the filter is live;
2. :meth:`Probe.collect` runs the mutations, then one more controller update as an end marker, and
   returns the non-controller events received before the marker. Delivery is in commit order, so that
   is exactly what the mutations produced for this filter.
"""

from __future__ import annotations

import itertools
import queue
import time
from collections.abc import Callable
from typing import Any

import orjson

from pygarm.client import GarmClient

WAIT_S = 60.0
"""A deadline, not a pause: generous because a CLI subprocess alone can take over 10 s to start on a
loaded 2-core machine."""
Frame = dict[str, Any]
Summary = tuple[str, str, str]

_markers = itertools.count(1000)


def summarize(frame: Frame) -> Summary:
    payload = frame.get("payload") or {}
    label = str(payload.get("name") or payload.get("id") or "")
    return str(frame["entity-type"]), str(frame["operation"]), label


class Probe:
    def __init__(self, garm: GarmClient, frames: queue.Queue[bytes]) -> None:
        self.garm = garm
        self.frames = frames

    def next_frame(self, deadline: float) -> Frame:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("no event arrived in time")
        try:
            raw = self.frames.get(timeout=remaining)
        except queue.Empty:
            raise AssertionError("no event arrived in time") from None
        frame: Frame = orjson.loads(raw)
        return frame

    def sync(self) -> None:
        """Update the controller until an update arrives (so the stream is subscribed), then drain."""
        deadline = time.monotonic() + WAIT_S
        while True:
            self.garm.update_controller(minimum_job_age_backoff=next(_markers))
            try:
                frame = orjson.loads(self.frames.get(timeout=0.5))
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise AssertionError("the stream never delivered a controller update") from None
                continue
            assert frame["entity-type"] == "controller", frame
            break
        self._until_marker()

    def collect(self, mutate: Callable[[GarmClient], object]) -> list[Summary]:
        mutate(self.garm)
        return self._until_marker()

    def _until_marker(self) -> list[Summary]:
        marker = next(_markers)
        self.garm.update_controller(minimum_job_age_backoff=marker)
        deadline = time.monotonic() + WAIT_S
        seen: list[Summary] = []
        while True:
            frame = self.next_frame(deadline)
            if frame["entity-type"] == "controller":
                if frame["payload"]["minimum_job_age_backoff"] == marker:
                    return seen
                continue
            seen.append(summarize(frame))

