"""Property tests of the state mirror (issue 9, "Done when"): for random interleavings of creates,
updates and deletes, network cuts, server restarts with writes made while the mirror was away, and logs
pruned past the mirror's position, the mirror ends equal to the REST list, with no gap and no duplicate,
with and without field filters.

One live server per test; each Hypothesis example runs its steps against it and then checks. Bounded:
a few examples, a few steps each, at most one restart per example.

* **Equal**: after a marker change the mirror holds (commit order), the mirrored endpoints equal
  ``GET /github/endpoints`` (filtered by the match, if any).
* **No duplicate, no gap**: the ``on_change`` notes replayed on a shadow dict never create what exists,
  update or delete what does not.
* **No reload**: without a prune the mirror took exactly one snapshot (it resumed every time).
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pygarm.client import GarmClient, StateMirror
from pygarm.config import Settings
from tests.client.mirror_support import catch_up
from tests.client.test_events_live import endpoint
from tests.live import LiveServer, run_live_server

pytestmark = pytest.mark.timeout(600)

NAMES = [f"n{i}.example.com" for i in range(5)]
MATCHED = NAMES[:2]

write = st.tuples(st.sampled_from(["create", "update", "delete"]), st.sampled_from(NAMES), st.integers(0, 99))
local_steps = st.lists(st.one_of(write, write, st.tuples(st.just("cut"))), max_size=8)
restart = st.tuples(st.just("restart"), st.lists(write, max_size=4), st.booleans())  # writes away, prune


@st.composite
def interleavings(draw: st.DrawFn) -> list[Any]:
    """Writes and cuts, with at most one restart somewhere among them (restarts cost seconds)."""
    steps: list[Any] = draw(local_steps)
    restart_step = draw(st.none() | restart)
    if restart_step is not None:
        steps.insert(draw(st.integers(0, len(steps))), restart_step)
    return steps


STEPS = interleavings()
RESUMED = [
    ("create", NAMES[0], 1),
    ("cut",),
    ("create", NAMES[1], 2),
    ("restart", [("update", NAMES[0], 3), ("delete", NAMES[1], 0), ("create", NAMES[2], 0)], False),
    ("cut",),
    ("delete", NAMES[0], 0),
]
"""Always run: a cut, and a restart with writes while away, resumed without a new snapshot."""
RESNAPSHOT = [("create", NAMES[3], 1), ("restart", [("delete", NAMES[3], 0), ("create", NAMES[1], 0)], True)]
"""Always run: the log pruned while away, so the mirror must take a new snapshot."""


def quick() -> Iterator[float]:
    return itertools.repeat(0.2)


def apply(garm: GarmClient, op: str, name: str, n: int) -> None:
    """One write; a create of an existing name becomes an update, an update or delete of a missing one
    a create, so every step changes something."""
    exists = any(e.name == name for e in garm.list_github_endpoints())
    if op == "delete" and exists:
        garm.delete_github_endpoint(name)
    elif exists:
        garm.update_github_endpoint(name, description=f"d{n}")
    else:
        garm.create_github_endpoint(endpoint(name))


@dataclass
class Shadow:
    """The mirror's notes replayed on a dict: a duplicate or a gap shows as an impossible note."""

    names: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def __call__(self, entity: str, op: str, payload: Any) -> None:
        if entity != "github_endpoint":
            return
        name = payload.name
        if op == "create" and name in self.names:
            self.errors.append(f"created twice: {name}")
        if op in ("update", "delete") and name not in self.names:
            self.errors.append(f"{op} of unknown {name}")
        if op == "delete":
            self.names.discard(name)
        else:
            self.names.add(name)


def cut(mirror: StateMirror) -> None:
    """A network cut: the mirror's TCP connection dies without a close frame."""
    conn = mirror._socket.conn
    if conn is not None:
        with suppress(OSError):
            conn.socket.shutdown(socket.SHUT_RDWR)


def prune_all(server: LiveServer) -> None:
    future = datetime.now(UTC) + timedelta(days=1)
    server.call(server.app.state.ctx.store.db.prune_changes(future)).result(timeout=10)


@dataclass
class Servers:
    """The live server of one test, across the restarts of its examples (same port, same database)."""

    live: LiveServer
    token: str
    settings: Settings
    stack: ExitStack

    def restart(self, away_writes: list[Any], prune: bool) -> None:
        """Stop the server; make ``away_writes`` (and prune the log) through another server on the same
        database while the mirror cannot connect; start the server again on its port."""
        self.live.stop()
        with run_live_server(self.settings) as other, GarmClient(other.base_url, self.token) as away:
            for op, name, n in away_writes:
                apply(away, op, name, n)
            if prune:
                prune_all(other)
        self.live = self.stack.enter_context(run_live_server(self.settings, port=self.live.port))


@pytest.fixture
def servers(live_admin: tuple[LiveServer, str], settings: Settings) -> Iterator[Servers]:
    with ExitStack() as stack:
        yield Servers(live_admin[0], live_admin[1], settings, stack)


def check(servers: Servers, steps: list[Any], match: list[str] | None) -> None:
    filters: dict[str, Any] = {"entity-type": "github_endpoint"}
    if match is not None:
        filters["match"] = {"name": match}
    message = orjson.dumps({"filters": [filters, {"entity-type": "controller"}]})
    shadow = Shadow()
    pruned = False
    with GarmClient(servers.live.base_url, servers.token) as garm:
        mirror = StateMirror(garm, message, delays=quick)
        mirror.on_change(shadow)
        with mirror:
            for item in steps:
                event(item[0] if item[0] != "restart" else f"restart, prune={item[2]}")
                if item[0] == "cut":
                    cut(mirror)
                elif item[0] == "restart":
                    servers.restart(item[1], item[2])
                    pruned = pruned or item[2]
                else:
                    apply(garm, *item)
            catch_up(garm, mirror)
            rest = {e.name: e.model_dump() for e in garm.list_github_endpoints()}
            if match is not None:
                rest = {name: value for name, value in rest.items() if name in match}
            mirrored = mirror.state.get("github_endpoint", {})
            assert {key: p.model_dump() for key, p in mirrored.items()} == rest  # type: ignore[union-attr]
            assert shadow.errors == []
            assert shadow.names == set(rest)
            if not pruned:
                assert mirror.snapshots == 1, "the mirror reloaded although it could resume"
            assert mirror.error is None


PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@PROPERTY_SETTINGS
@given(steps=STEPS)
@example(steps=RESUMED)
@example(steps=RESNAPSHOT)
def test_mirror_equals_rest_after_any_interleaving(servers: Servers, steps: list[Any]) -> None:
    check(servers, steps, match=None)


@PROPERTY_SETTINGS
@given(steps=STEPS)
@example(steps=RESUMED)
@example(steps=RESNAPSHOT)
def test_matched_mirror_equals_the_matching_rest_items(servers: Servers, steps: list[Any]) -> None:
    check(servers, steps, match=MATCHED)
