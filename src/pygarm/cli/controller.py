"""``pygarm controller show|update``: the controller's ID, version and the URLs runners and GitHub use."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pygarm.cli._common import FormatOption, OutputFormat, client, fail, keep
from pygarm.cli._typer import command, sub_app
from pygarm.cli.output import emit, print_fields
from pygarm.params.models import ControllerInfo

app = sub_app("Show or update the controller (its URLs and job age backoff).")


def controller_rows(info: ControllerInfo) -> list[tuple[str, Any]]:
    return [
        ("Controller ID", info.controller_id),
        ("Hostname", info.hostname),
        ("Metadata URL", info.metadata_url),
        ("Callback URL", info.callback_url),
        ("Webhook Base URL", info.webhook_url),
        ("Controller Webhook URL", info.controller_webhook_url),
        ("Minimum Job Age Backoff", info.minimum_job_age_backoff),
        ("Version", info.version),
    ]


@command(app, "show")
def show(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Show the controller's details."""
    with client(ctx) as garm:
        info = garm.get_controller()
    emit(fmt, info, lambda: print_fields(controller_rows(info)))


@command(app, "update")
def update(
    ctx: typer.Context,
    metadata_url: Annotated[
        str | None, typer.Option("--metadata-url", "-m", help="URL runners fetch their metadata from.")
    ] = None,
    callback_url: Annotated[
        str | None, typer.Option("--callback-url", "-c", help="URL runners report their status to.")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", "-w", help="Base URL GitHub sends webhooks to.")
    ] = None,
    minimum_job_age_backoff: Annotated[
        int | None,
        typer.Option(
            "--minimum-job-age-backoff", "-b", min=0, help="Seconds a job waits before a runner is made."
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Change the given URLs / backoff; everything not given stays as it is."""
    if (
        metadata_url is None
        and callback_url is None
        and webhook_url is None
        and minimum_job_age_backoff is None
    ):
        fail(
            "nothing to update: give at least one of --metadata-url, --callback-url, --webhook-url, "
            "--minimum-job-age-backoff"
        )
    with client(ctx) as garm:
        info = garm.update_controller(
            metadata_url=keep(metadata_url),
            callback_url=keep(callback_url),
            webhook_url=keep(webhook_url),
            minimum_job_age_backoff=keep(minimum_job_age_backoff),
        )
    emit(fmt, info, lambda: print_fields(controller_rows(info)))
