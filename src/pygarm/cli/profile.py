"""``pygarm init`` and ``pygarm profile ...``: logging in, and garm-cli's profile file
(docs/garm-protocol.md#profile-file).

``init`` does what ``garm-cli init`` does: ``POST /first-run``, ``POST /auth/login``, save the profile,
then ``PUT /controller`` with the metadata, callback and webhook URLs (by default ``<url>/api/v1/metadata``,
``<url>/api/v1/callbacks`` and ``<url>/webhooks``). Profiles are shared with garm-cli.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pygarm.cli._common import (
    CliError,
    FormatOption,
    OutputFormat,
    open_client,
    profile_name,
    read_secret,
    read_text,
)
from pygarm.cli._typer import command, sub_app
from pygarm.cli.output import emit, print_fields, print_table
from pygarm.client import GarmClientError, Profile, ProfileFile
from pygarm.params.models import ControllerInfo, User
from pygarm.params.requests import NewUserParams

app = sub_app("Add, list, switch and delete garm-cli profiles (shared with garm-cli).")

NameOption = Annotated[str, typer.Option("--name", "-n", help="A name for this runner manager.")]
UrlOption = Annotated[str, typer.Option("--url", "-a", help="The base URL of the runner manager API.")]
UsernameOption = Annotated[str | None, typer.Option("--username", "-u", help="The user to log in as.")]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        "--password", "-p", help="The password; better left out: it is then prompted or read from stdin."
    ),
]


def default_controller_urls(url: str) -> dict[str, str]:
    """garm-cli's defaults, from the URL given to ``init`` (``url.JoinPath``)."""
    base = url.rstrip("/")
    return {
        "metadata_url": f"{base}/api/v1/metadata",
        "callback_url": f"{base}/api/v1/callbacks",
        "webhook_url": f"{base}/webhooks",
    }


def init(
    name: NameOption,
    url: UrlOption,
    username: Annotated[str | None, typer.Option("--username", "-u", help="The admin username.")] = None,
    email: Annotated[str | None, typer.Option("--email", "-e", help="The admin e-mail address.")] = None,
    full_name: Annotated[str, typer.Option("--full-name", "-f", help="The admin's full name.")] = "",
    password: PasswordOption = None,
    metadata_url: Annotated[
        str | None, typer.Option("--metadata-url", "-m", help="Default: <url>/api/v1/metadata.")
    ] = None,
    callback_url: Annotated[
        str | None, typer.Option("--callback-url", "-c", help="Default: <url>/api/v1/callbacks.")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", "-w", help="Default: <url>/webhooks.")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Initialize a new server: create the admin user, log in, save a profile, set the controller URLs."""
    profiles = ProfileFile.load()
    if profiles.get(name) is not None:
        raise CliError(f"a manager with name {name} already exists in your local config")
    url = url.rstrip("/")
    username = read_text("Username", username)
    email = read_text("Email", email)
    password = read_secret("Password", password, confirm=True)
    urls = default_controller_urls(url)
    urls.update(
        {
            key: value
            for key, value in (
                ("metadata_url", metadata_url),
                ("callback_url", callback_url),
                ("webhook_url", webhook_url),
            )
            if value
        }
    )
    with open_client(url) as garm:
        user = garm.first_run(
            NewUserParams(username=username, email=email, full_name=full_name, password=password)
        )
        token = garm.login(username, password)
        profiles.add(Profile(name=name, base_url=url, bearer_token=token))
        profiles.save()
        try:
            controller = garm.update_controller(
                metadata_url=urls["metadata_url"],
                callback_url=urls["callback_url"],
                webhook_url=urls["webhook_url"],
            )
        except GarmClientError as exc:
            raise CliError(
                f"the admin user was created and profile {name!r} saved, but setting the controller URLs "
                f"failed: {exc}; run `pygarm controller update --metadata-url ... --callback-url ... "
                "--webhook-url ...`"
            ) from exc
    emit(fmt, {"user": user, "controller": controller}, lambda: _init_tables(user, controller))


def _init_tables(user: User, controller: ControllerInfo) -> None:
    typer.echo("Congrats! Your controller is now initialized.\n\nAdmin user information:")
    print_fields(
        [("ID", user.id), ("Username", user.username), ("Email", user.email), ("Enabled", user.enabled)]
    )
    typer.echo("Controller information:")
    from pygarm.cli.controller import controller_rows

    print_fields(controller_rows(controller))
    typer.echo(
        "Make sure that the URLs in the table above are reachable by the relevant parties.\n"
        "The metadata and callback URLs *must* be accessible by the runners that GARM spins up.\n"
        "The base webhook and the controller webhook URLs must be accessible by GitHub or GHES."
    )


@command(app, "add", "create")
def add(
    name: NameOption,
    url: UrlOption,
    username: UsernameOption = None,
    password: PasswordOption = None,
) -> None:
    """Log in to an existing server and save it as a new (active) profile."""
    profiles = ProfileFile.load()
    if profiles.get(name) is not None:
        raise CliError(f"a manager with name {name} already exists in your local config")
    url = url.rstrip("/")
    username = read_text("Username", username)
    password = read_secret("Password", password)
    with open_client(url) as garm:
        token = garm.login(username, password)
    profiles.add(Profile(name=name, base_url=url, bearer_token=token))
    profiles.save()
    typer.echo(f"profile {name} added and active", err=True)


@command(app, "login")
def login(ctx: typer.Context, username: UsernameOption = None, password: PasswordOption = None) -> None:
    """Refresh the bearer token of the active profile (or --profile) by logging in again."""
    profiles = ProfileFile.load()
    profile = profiles.require(profile_name(ctx))
    username = read_text("Username", username)
    password = read_secret("Password", password)
    with open_client(profile.base_url) as garm:
        token = garm.login(username, password)
    profiles.set_token(profile.name, token)
    profiles.save()
    typer.echo(f"profile {profile.name}: new token saved", err=True)


@command(app, "list", "ls")
def list_profiles(fmt: FormatOption = OutputFormat.table) -> None:
    """List the profiles; the active one is marked. Tokens are never printed."""
    profiles = ProfileFile.load()
    active = profiles.active()
    data = [
        {"name": p.name, "base_url": p.base_url, "active": active is not None and p.name == active.name}
        for p in profiles.managers
    ]
    emit(
        fmt,
        data,
        lambda: print_table(
            ("Name", "Base URL"),
            [(f"{d['name']} (current)" if d["active"] else d["name"], d["base_url"]) for d in data],
        ),
    )


@command(app, "switch")
def switch(name: Annotated[str, typer.Argument(help="The profile to make active.")]) -> None:
    """Make another profile the active one."""
    profiles = ProfileFile.load()
    profiles.switch(name)
    profiles.save()


@command(app, "delete", "remove", "rm", "del")
def delete(name: Annotated[str, typer.Argument(help="The profile to delete.")]) -> None:
    """Delete a profile from the local file (the server is not touched)."""
    profiles = ProfileFile.load()
    profiles.delete(name)
    profiles.save()
