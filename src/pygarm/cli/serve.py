"""``pygarm serve``: start the server from a GARM config file, or from a generated local one."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import typer

from pygarm.config import ConfigError, ensure_default_config, load_settings

DATA_DIR_ENV = "PYGARM_DATA_DIR"
"""Where ``pygarm serve`` keeps its generated config and SQLite file when no ``--config`` is given."""
EXIT_INVALID_CONFIG = 2


def default_data_dir() -> Path:
    configured = os.environ.get(DATA_DIR_ENV)
    return Path(configured) if configured else Path(typer.get_app_dir("pygarm"))


def serve(
    config: Path | None = typer.Option(  # noqa: B008 - typer's declaration style
        None, "--config", help="GARM-style TOML config file. Without it, a local default config is used."
    ),
) -> None:
    """Run the pygarm API server (SQLite by default)."""
    from pygarm.logsetup import configure_logging
    from pygarm.server import serve as run_server

    if config is None:
        default = ensure_default_config(default_data_dir())
        verb = "created" if default.created else "using"
        typer.echo(f"pygarm: {verb} config {default.path}", err=True)
        config = default.path
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"pygarm: {exc}", err=True)
        sys.exit(EXIT_INVALID_CONFIG)
    configure_logging(settings)
    scheme = "https" if settings.apiserver.use_tls else "http"
    typer.echo(
        f"pygarm: listening on {scheme}://{settings.apiserver.bind}:{settings.apiserver.port}"
        " (run `pygarm init` in another terminal to create the admin user)",
        err=True,
    )
    # uvicorn stops gracefully on SIGTERM and Ctrl-C, then raises the signal again for the previous
    # handler. A stop that was asked for is a success: exit 0, as GARM does (systemd, docker stop).
    signal.signal(signal.SIGTERM, stopped)
    with contextlib.suppress(KeyboardInterrupt):
        run_server(settings)


def stopped(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
