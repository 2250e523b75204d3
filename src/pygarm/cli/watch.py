"""``pygarm watch pools|runners|jobs|repos [--pool ID]``: a table that stays current, like
``kubectl get -w``.

A :class:`~pygarm.client.StateMirror` (snapshot + events, resumed after cuts and restarts) feeds it. On a
terminal the table is redrawn in place (rich ``Live``) whenever the mirrored state changes; when stdout
is not a terminal each change is one line (``HH:MM:SS OPERATION summary``), starting with one
``snapshot`` line per entity, so ``pygarm watch runners | grep failed`` works. Ctrl-C ends it (exit 0).
Needs a pygarm server (GARM has no snapshot).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pygarm.cli._common import CliError, client
from pygarm.cli.events import OPERATION_STYLES, describe
from pygarm.cli.output import cell, console
from pygarm.client import StateMirror
from pygarm.client._protocol import EventPayload
from pygarm.params.models import Instance, Job, Pool, Repository

START_TIMEOUT_S = 30.0
REFRESH_PER_SECOND = 4


class Kind(StrEnum):
    pools = "pools"
    runners = "runners"
    jobs = "jobs"
    repos = "repos"


@dataclass(frozen=True)
class View:
    """What one ``watch`` kind mirrors and how it draws a row."""

    entity_type: str
    columns: Sequence[str]
    row: Callable[[Any], Sequence[Any]]
    sort_key: Callable[[Any], Any]
    pool_field: str | None
    """The payload field ``--pool`` matches, if the kind has one."""


def _pool_row(p: Pool) -> Sequence[Any]:
    owner = p.repo_name or p.org_name or p.enterprise_name or ""
    return (p.id, p.provider_name, p.image, p.flavor, p.min_idle_runners, p.max_runners, p.enabled, owner)


def _runner_row(i: Instance) -> Sequence[Any]:
    return (i.name, i.status, i.runner_status, i.pool_id, i.updated_at)


def _job_row(j: Job) -> Sequence[Any]:
    repository = f"{j.repository_owner}/{j.repository_name}".strip("/")
    return (j.id, j.name, j.status, j.conclusion, j.runner_name, repository)


def _repo_row(r: Repository) -> Sequence[Any]:
    return (r.id, r.owner, r.name, r.endpoint.name, r.credentials_name, r.pool_manager_status.running)


VIEWS: dict[Kind, View] = {
    Kind.pools: View(
        "pool",
        ("ID", "Provider", "Image", "Flavor", "Min idle", "Max", "Enabled", "Belongs to"),
        _pool_row,
        lambda p: p.id,
        "id",
    ),
    Kind.runners: View(
        "instance",
        ("Name", "Status", "Runner Status", "Pool ID", "Updated"),
        _runner_row,
        lambda i: i.name,
        "pool_id",
    ),
    Kind.jobs: View(
        "job", ("ID", "Name", "Status", "Conclusion", "Runner", "Repository"), _job_row, lambda j: j.id, None
    ),
    Kind.repos: View(
        "repository",
        ("ID", "Owner", "Name", "Endpoint", "Credentials", "Pool mgr running"),
        _repo_row,
        lambda r: (r.owner, r.name),
        None,
    ),
}


def render(view: View, items: Sequence[Any], title: str = "") -> Table:
    """The table of ``items`` (typed payloads), sorted for a stable picture."""
    table = Table(*view.columns, title=title or None, show_lines=False)
    for item in sorted(items, key=view.sort_key):
        table.add_row(*(cell(value) for value in view.row(item)))
    return table


def change_line(operation: str, payload: EventPayload, now: datetime | None = None) -> Text:
    stamp = (now or datetime.now()).strftime("%H:%M:%S")
    line = Text(f"{stamp} ")
    line.append(f"{operation:<8} ", style=OPERATION_STYLES.get(operation, ""))
    line.append(describe(payload))
    return line


def watch(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Argument(help="What to watch: pools, runners, jobs or repos.")],
    pool: Annotated[
        str | None, typer.Option("--pool", help="Only this pool (pools) or its runners (runners).")
    ] = None,
) -> None:
    """A live table of pools, runners, jobs or repositories (needs a pygarm server)."""
    view = VIEWS[kind]
    if pool is not None and view.pool_field is None:
        raise CliError(f"--pool applies to pools and runners, not {kind.value}")
    match = {view.pool_field: pool} if pool is not None and view.pool_field else None
    out = console()
    interactive = sys.stdout.isatty()
    with client(ctx) as garm:
        mirror = StateMirror(garm, {view.entity_type: None}, match=match)
        if not interactive:

            @mirror.on_change
            def _print(entity_type: str, operation: str, payload: EventPayload) -> None:
                out.print(change_line(operation, payload))
                sys.stdout.flush()

        try:
            mirror.start(timeout=START_TIMEOUT_S)
        except TimeoutError:
            mirror.stop()
            raise CliError(
                f"no snapshot from {garm.base_url} within {START_TIMEOUT_S:g}s "
                "(watch needs a pygarm server with snapshots)"
            ) from None
        try:
            if interactive:
                _live(mirror, view, kind)
            else:
                _follow(mirror)
        except KeyboardInterrupt:
            pass
        finally:
            mirror.stop()


def _follow(mirror: StateMirror) -> None:
    """Until Ctrl-C or the mirror stops (its error is raised); the lines come from its callback."""
    while True:
        try:
            mirror.wait_for(lambda _mirror: False, timeout=3600)
        except TimeoutError:
            continue


def _live(mirror: StateMirror, view: View, kind: Kind) -> None:
    """Redraw the table in place after each change (at most ``REFRESH_PER_SECOND`` times a second)."""
    changed = threading.Event()
    mirror.on_change(lambda *_: changed.set())

    def table() -> Table:
        items = list(mirror.state.get(view.entity_type, {}).values())
        return render(view, items, title=f"{kind.value} ({len(items)}) seq {mirror.seq}")

    with Live(table(), console=console(), refresh_per_second=REFRESH_PER_SECOND, transient=False) as live:
        while True:
            if mirror.error is not None:
                raise mirror.error
            if changed.wait(1.0 / REFRESH_PER_SECOND):
                changed.clear()
                live.update(table())
