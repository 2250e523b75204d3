"""``pygarm demo``: GARM's whole runner lifecycle on one machine, offline.

``pygarm demo`` starts a throw-away server (SQLite in ``<data dir>/demo``, recreated on every start) with the
bundled fake GitHub and test provider, sets it up over REST (profile ``demo``, made active; a repository with
a pool of two idle runners) and plays the runner software of each instance. ``pygarm demo job`` then plays
GitHub: a signed ``workflow_job`` webhook queued → in_progress → completed, so that ``pygarm events --pretty``
shows instance and job events flowing. See ``src/pygarm/testing/demo.py`` for the steps.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from pygarm.cli._common import CliError
from pygarm.cli._typer import sub_app
from pygarm.cli.serve import stopped

app = sub_app("An offline demo: a server with a fake GitHub, a test provider and runners you can watch.")
app.info.invoke_without_command = True
app.info.no_args_is_help = False

PORT_ENV = "PYGARM_DEMO_PORT"
DEFAULT_PORT = 9998
"""Next to ``pygarm serve``'s 9997, so that both can run at once."""

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Where the demo keeps its files (default: <pygarm data dir>/demo)."),
]


def _demo_dir(given: Path | None) -> Path:
    from pygarm.cli.serve import default_data_dir

    return (given or default_data_dir() / "demo").resolve()


def _say(message: str) -> None:
    typer.echo(f"pygarm demo: {message}", err=True)


NEXT_STEPS = """
The demo is ready: profile "demo" is active, pool {pool} keeps {idle} idle runners.
In another terminal:
  pygarm events --pretty        follow every change as it happens
  pygarm runner list            the runners the pool manager created
  pygarm demo job               a GitHub job: queued -> in_progress -> completed
Dashboard: {url}/ui/ (user admin; `pygarm demo password` prints the password).
Ctrl-C here stops the demo."""


@app.callback()
def demo(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option("--port", envvar=PORT_ENV, help="Port on 127.0.0.1 for the demo server.")
    ] = DEFAULT_PORT,
    directory: DirOption = None,
) -> None:
    """Start the demo server (from scratch), set it up, and keep its runners going until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    from pygarm.config import ConfigError, load_settings
    from pygarm.logsetup import configure_logging
    from pygarm.server import GarmServer, uvicorn_config
    from pygarm.testing import demo as core
    from pygarm.testing.fake_github import FakeGithubServer

    files = core.DemoFiles(_demo_dir(directory))
    try:
        files.reset()
        core.write_private(files.config, core.config_text(files, port))
        settings = load_settings(files.config)
    except (OSError, core.DemoError, ConfigError) as exc:
        raise CliError(str(exc)) from None
    configure_logging(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per demo request would drown the rest
    github = FakeGithubServer().start()
    server = GarmServer(uvicorn_config(settings))
    base_url = f"http://127.0.0.1:{port}"
    agent = core.RunnerAgent(files.provider_state, _say)
    failure: list[str] = []

    def set_up() -> None:
        try:
            core.wait_until_up(base_url)
            state = core.bootstrap(base_url, github.base_url, _say)
            state.save(files.state)
            agent.start()
            core.wait_for_idle_pool(state)
            _say(f"server {base_url}, fake GitHub {github.base_url}, files in {files.root}")
            steps = NEXT_STEPS.format(pool=state.pool_id, idle=core.MIN_IDLE_RUNNERS, url=base_url)
            typer.echo(steps, err=True)
        except core.DemoError as exc:
            failure.append(str(exc))
            server.should_exit = True

    _say(f"starting in {files.root}")
    threading.Thread(target=set_up, name="demo-setup", daemon=True).start()
    signal.signal(signal.SIGTERM, stopped)  # a stop that was asked for is a success, as for `pygarm serve`
    try:
        server.run()
    finally:
        agent.stop()
        github.stop()
    if failure:
        raise CliError(failure[0])
    if not server.started:
        raise CliError(f"the demo server could not start on 127.0.0.1:{port} (try --port)")


@app.command("job")
def job(
    directory: DirOption = None,
    run_seconds: Annotated[float, typer.Option("--run-seconds", help="How long the job runs.")] = 2.0,
) -> None:
    """Send a GitHub job to the running demo: queued, in_progress on an idle runner, completed."""
    from pygarm.testing import demo as core

    try:
        state = core.DemoState.load(_demo_dir(directory) / core.STATE_FILE)
        core.run_job(state, _say, run_seconds=run_seconds)
    except core.DemoError as exc:
        raise CliError(str(exc)) from None


@app.command("password")
def password(directory: DirOption = None) -> None:
    """Print the demo admin's password (for the dashboard's login form)."""
    from pygarm.testing import demo as core

    try:
        typer.echo(core.DemoState.load(_demo_dir(directory) / core.STATE_FILE).admin_password)
    except core.DemoError as exc:
        raise CliError(str(exc)) from None
