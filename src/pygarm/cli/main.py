"""The ``pygarm`` command: the server (``serve``) and a garm-cli-compatible client.

::

    pygarm serve                      run the API server
    pygarm init                       first-run + login + controller URLs, saved as a garm-cli profile
    pygarm profile add|list|switch|delete|login
    pygarm controller show|update
    pygarm github endpoint list|show|create|update|delete
    pygarm github credentials list|show|add|update|delete
    pygarm repo|org|enterprise add|list|show|update|delete
    pygarm pool add|list|show|update|delete
    pygarm runner list|show|delete
    pygarm job list
    pygarm provider list
    pygarm user list|show|update|set-password
    pygarm events (= debug-events)    follow change events
    pygarm watch pools|runners|jobs|repos   a live table fed by the events stream
    pygarm demo [job]                 an offline demo: fake GitHub, test provider, runners, jobs

Every client command uses the active garm-cli profile (``--profile`` or ``$PYGARM_PROFILE`` picks
another), prints a table by default and JSON with ``--format json``, and reports failures as one line
on stderr with exit code 1.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pygarm.cli import controller, demo, entities, events, github, logs, pools, profile, runners, users, watch
from pygarm.cli._common import RootGroup, State
from pygarm.cli.serve import serve
from pygarm.version import GARM_COMPATIBLE_VERSION, __version__

app = typer.Typer(
    name="pygarm",
    cls=RootGroup,
    help="GARM-compatible GitHub Actions runner manager: server and command line client.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"pygarm {__version__} (GARM {GARM_COMPATIBLE_VERSION} compatible)")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile_name: Annotated[
        str | None,
        typer.Option(
            "--profile", envvar="PYGARM_PROFILE", help="Use this garm-cli profile instead of the active one."
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=show_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """GARM-compatible GitHub Actions runner manager: server and command line client."""
    ctx.obj = State(profile=profile_name)


app.command("serve")(serve)
app.command("init")(profile.init)
app.add_typer(profile.app, name="profile")
app.add_typer(controller.app, name="controller")
app.add_typer(github.app, name="github")
app.add_typer(entities.repo_app, name="repo")
app.add_typer(entities.repo_app, name="repository", hidden=True)
app.add_typer(entities.org_app, name="org")
app.add_typer(entities.org_app, name="organization", hidden=True)
app.add_typer(entities.enterprise_app, name="enterprise")
app.add_typer(pools.app, name="pool")
app.add_typer(runners.runner_app, name="runner")
app.add_typer(runners.job_app, name="job")
app.add_typer(runners.provider_app, name="provider")
app.add_typer(users.app, name="user")
app.command("events")(events.events)
app.command("debug-events", help="The same as `events`, under garm-cli's name.")(events.events)
app.command("debug-log")(logs.debug_log)
app.command("watch")(watch.watch)
app.add_typer(demo.app, name="demo")


def main() -> None:
    """Console-script entry point (``pygarm = "pygarm.cli.main:main"``)."""
    app()


if __name__ == "__main__":
    main()
