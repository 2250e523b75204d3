"""``pygarm events`` (also ``pygarm debug-events``): follow the server's change events.

Choosing events, like ``garm-cli debug-events`` and more:

* ``--filters JSON`` / ``-m JSON``: GARM's filter message, sent verbatim (the server validates it);
* ``--all``: everything (``{"send-everything":true}``);
* ``--entity TYPE[:op,op]``, repeatable: e.g. ``--entity pool:create,delete --entity repository``;
* none of them: everything. (garm-cli sends no filter then, and so never receives anything.)

Output: each event as one line of GARM's JSON, exactly as received, so ``pygarm events | jq`` works;
``--pretty`` prints a readable live view instead. ``--reconnect`` survives server restarts and network
drops, and warns on stderr that events during the gap may have been missed. Ctrl-C ends it (exit 0),
as does ``--count N`` after N events; any other end is reported on stderr with its close code and reason
(exit 1), also a normal close by a server that shuts down.

pygarm's extensions (docs/events.md), for pygarm servers only:

* ``--seq``: each frame carries its ``"seq"``; ``--since N``: first replay every change after ``seq`` N;
* ``--resume``: reconnect like ``--reconnect`` but continue from the last ``seq`` received: no gap;
* ``--snapshot``: first the current state of everything the filter selects (operation ``snapshot``);
* ``--ack``: the server confirms each filter (``{"control":"filter-ack","seq":S}``);
* ``--match FIELD=VALUE`` (``FIELD:=JSON`` for numbers and booleans), repeatable: field filters on the
  payload, AND across fields, OR over repeated values of one field, e.g. ``--match pool_id=<id>``.

Control frames are printed as JSON lines too (a dim line with ``--pretty``); ``--count`` counts events.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Annotated

import orjson
import typer
from rich.text import Text

from pygarm.cli._common import CliError, at_most_one, client
from pygarm.cli.output import console
from pygarm.client import Control, Event, Gap, StreamOptions, build_filter
from pygarm.client._protocol import EventPayload, FilterSpec, MatchValue
from pygarm.params.models import (
    ControllerInfo,
    Enterprise,
    GithubCredentials,
    GithubEndpoint,
    Instance,
    Job,
    Organization,
    Pool,
    Repository,
    User,
)

OPERATION_STYLES = {"create": "green", "update": "yellow", "delete": "red", "snapshot": "cyan"}


def summary(event: Event) -> str:
    """One readable line about the event's payload (the full JSON is one ``--format`` away)."""
    return describe(event.payload)


def describe(p: EventPayload) -> str:
    """One readable line about a payload."""
    if isinstance(p, Repository):
        return f"{p.owner}/{p.name} ({p.id})"
    if isinstance(p, (Organization, Enterprise)):
        return f"{p.name} ({p.id})"
    if isinstance(p, Pool):
        if not p.provider_name and not p.image:
            return p.id
        state = "enabled" if p.enabled else "disabled"
        sizes = f"min-idle={p.min_idle_runners} max={p.max_runners}"
        return f"{p.id} {p.provider_name} {p.image}/{p.flavor} {sizes} {state}"
    if isinstance(p, Instance):
        return " ".join(
            filter(None, [p.name, p.status, p.runner_status, f"pool={p.pool_id}" if p.pool_id else ""])
        )
    if isinstance(p, Job):
        return " ".join(filter(None, [str(p.id), p.name, p.status, p.conclusion, p.runner_name]))
    if isinstance(p, ControllerInfo):
        return f"{p.controller_id} webhook={p.webhook_url}"
    if isinstance(p, GithubEndpoint):
        return " ".join(filter(None, [p.name, p.base_url]))
    if isinstance(p, GithubCredentials):
        return " ".join(filter(None, [str(p.id), p.name, p.auth_type]))
    if isinstance(p, User):
        return f"{p.username} ({p.id})"
    return str(p.get("id", "")) if isinstance(p, dict) else ""


def pretty_line(event: Event, now: datetime | None = None) -> Text:
    stamp = (now or datetime.now()).strftime("%H:%M:%S")
    operation = str(event.operation)
    line = Text(f"{stamp} ")
    line.append(f"{event.entity_type!s:<18} ", style="bold")
    line.append(f"{operation:<6} ", style=OPERATION_STYLES.get(operation, ""))
    line.append(summary(event))
    return line


def control_line(control: Control, now: datetime | None = None) -> Text:
    stamp = (now or datetime.now()).strftime("%H:%M:%S")
    seq = "" if control.seq is None else f" seq={control.seq}"
    return Text(f"{stamp} -- {control.kind}{seq}", style="dim")


def parse_match(items: list[str] | None) -> dict[str, list[MatchValue]]:
    """``FIELD=VALUE`` (a string) or ``FIELD:=JSON`` (a number or boolean), repeatable → field filters."""
    rules: dict[str, list[MatchValue]] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.rstrip(":"):
            raise CliError(f"invalid --match {item!r}: expected FIELD=VALUE or FIELD:=JSON")
        parsed: MatchValue = value
        if name.endswith(":"):
            name = name[:-1]
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise CliError(f"invalid --match {item!r}: {value!r} is not JSON") from None
            if not isinstance(parsed, (str, int, float, bool)):
                raise CliError(f"invalid --match {item!r}: expected a string, number or boolean")
        rules.setdefault(name, []).append(parsed)
    return rules


def choose_filter(filters: str | None, all_: bool, entities: list[str] | None) -> FilterSpec:
    at_most_one(filters=filters, all=all_, entity=bool(entities))
    if filters is not None:
        return filters  # verbatim, as garm-cli does
    if entities:
        return list(entities)  # "TYPE[:op,op]", checked by build_filter
    return None


def events(
    ctx: typer.Context,
    filters: Annotated[
        str | None,
        typer.Option(
            "--filters", "-m", help="GARM filter JSON, sent verbatim, e.g. '{\"send-everything\":true}'."
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every event (the default without a filter).")] = False,
    entity: Annotated[
        list[str] | None,
        typer.Option("--entity", help="TYPE or TYPE:op,op (create/update/delete); repeatable."),
    ] = None,
    pretty: Annotated[
        bool, typer.Option("--pretty", help="A readable live view instead of JSON lines.")
    ] = False,
    reconnect: Annotated[
        bool,
        typer.Option("--reconnect", help="Reconnect after drops and restarts (events in the gap are lost)."),
    ] = False,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Exit after this many events.")] = None,
    seq: Annotated[bool, typer.Option("--seq", help='pygarm: each frame carries its "seq".')] = False,
    since: Annotated[
        int | None, typer.Option("--since", min=0, help="pygarm: first replay the changes after this seq.")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="pygarm: reconnect and continue from the last seq (no gap)."),
    ] = False,
    snapshot: Annotated[
        bool, typer.Option("--snapshot", help="pygarm: first the current state of what the filter selects.")
    ] = False,
    ack: Annotated[bool, typer.Option("--ack", help="pygarm: the server confirms the filter.")] = False,
    match: Annotated[
        list[str] | None,
        typer.Option("--match", help="pygarm: FIELD=VALUE or FIELD:=JSON payload filter; repeatable."),
    ] = None,
) -> None:
    """Follow change events (GARM's events websocket): JSON lines, or --pretty."""
    spec = choose_filter(filters, all_, entity)
    rules = parse_match(match)
    try:
        build_filter(spec, match=rules)  # a typo in --entity fails here, before connecting
        options = StreamOptions(seq=seq, since=since, snapshot=snapshot, ack=ack, resume=resume)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    out = console()

    def on_control(control: Control) -> None:
        if pretty:
            out.print(control_line(control))
        else:
            sys.stdout.write(control.raw.decode("utf-8", "replace") + "\n")
        sys.stdout.flush()

    def on_gap(gap: Gap) -> None:
        typer.echo(f"warning: {gap.describe()}", err=True)

    received = 0
    with client(ctx) as garm:
        stream = garm.events(
            spec,
            reconnect=reconnect,
            on_gap=on_gap,
            resume=options.resume,
            since=options.since,
            seq=options.seq,
            snapshot=options.snapshot,
            ack=options.ack,
            match=rules,
            on_control=on_control,
        )
        try:
            for event in stream:
                if pretty:
                    out.print(pretty_line(event))
                else:
                    sys.stdout.write(
                        event.raw.decode("utf-8", "replace").replace("\n", "").replace("\r", "") + "\n"
                    )
                sys.stdout.flush()
                received += 1
                if count is not None and received >= count:
                    return
        except KeyboardInterrupt:
            return
        except BrokenPipeError:  # `pygarm events | head -1`: the reader left, so do we
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
    # The server closed normally (e.g. it shut down) although the user asked for more: say so, exit 1.
    ended = stream.state.ended_by
    code = f"code {ended.code}" if ended else "no close frame"
    reason = f": {ended.reason}" if ended and ended.reason else ""
    raise CliError(f"the server closed the events stream ({code}{reason})")
