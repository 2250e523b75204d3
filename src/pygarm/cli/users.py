"""``pygarm user list|show|update|set-password``: pygarm's user routes (GARM v0.1.5 has none)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pygarm.cli._common import FormatOption, OutputFormat, client, fail, keep, read_secret
from pygarm.cli._typer import command, sub_app
from pygarm.cli.output import emit, print_fields, print_table
from pygarm.params.models import User

app = sub_app("List and manage users (a pygarm extension).")

UserArg = Annotated[str, typer.Argument(help="The user ID, or a username or e-mail address.")]


def user_rows(user: User) -> list[tuple[str, Any]]:
    return [
        ("ID", user.id),
        ("Username", user.username),
        ("Email", user.email),
        ("Full name", user.full_name),
        ("Enabled", user.enabled),
        ("Admin", user.is_admin),
        ("Created", user.created_at),
        ("Updated", user.updated_at),
    ]


def _resolve(ctx: typer.Context, ref: str) -> str:
    with client(ctx) as garm:
        users = garm.list_users()
    for user in users:
        if ref in (user.id, user.username, user.email):
            return user.id
    fail(f"no user {ref!r}")


@command(app, "list", "ls")
def list_users(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """List users."""
    with client(ctx) as garm:
        users = garm.list_users()
    emit(
        fmt,
        users,
        lambda: print_table(
            ("ID", "Username", "Email", "Full name", "Enabled", "Admin"),
            [(u.id, u.username, u.email, u.full_name, u.enabled, u.is_admin) for u in users],
        ),
    )


@command(app, "show", "get")
def show(ctx: typer.Context, user: UserArg, fmt: FormatOption = OutputFormat.table) -> None:
    """Show one user."""
    user_id = _resolve(ctx, user)
    with client(ctx) as garm:
        item = garm.get_user(user_id)
    emit(fmt, item, lambda: print_fields(user_rows(item)))


@command(app, "update")
def update(
    ctx: typer.Context,
    user: UserArg,
    full_name: Annotated[str | None, typer.Option("--full-name", help="A new full name.")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Allow or stop logins.")
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Change a user's full name or enable/disable them (the last enabled admin stays enabled)."""
    if full_name is None and enabled is None:
        fail("nothing to update: give --full-name, --enabled or --disabled")
    user_id = _resolve(ctx, user)
    with client(ctx) as garm:
        item = garm.update_user(user_id, full_name=keep(full_name), enabled=keep(enabled))
    emit(fmt, item, lambda: print_fields(user_rows(item)))


@command(app, "set-password", "passwd")
def set_password(ctx: typer.Context, user: UserArg, fmt: FormatOption = OutputFormat.table) -> None:
    """Set a new password (prompted for, or read from stdin); the user's older tokens stop working."""
    user_id = _resolve(ctx, user)
    password = read_secret("New password", None, confirm=True)
    with client(ctx) as garm:
        item = garm.change_user_password(user_id, password)
    emit(fmt, item, lambda: print_fields(user_rows(item)))
