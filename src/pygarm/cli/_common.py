"""What every ``pygarm`` command shares: the root group's error handling, the options that recur, the
client for the chosen profile, and reading secrets.

Errors: commands raise client errors (or :class:`CliError`) and never print them; :class:`RootGroup`
turns each into one line on stderr and exit code 1, so every failure looks the same and scripts can
rely on the exit code. Usage mistakes (a missing option, a bad value) are one line too, exit code 2.

Secrets (passwords, tokens, webhook secrets) are never echoed and never required on the command line:
an option left out is asked for with a hidden prompt on a terminal, or read as one line from standard
input otherwise (``echo "$PW" | pygarm profile add ...``); ``-`` as the option's value asks the same way.
garm-cli's options that take the secret directly still work, for scripts written against garm-cli.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer vendors click; not re-exported
from typer.core import TyperGroup
from typer.exceptions import Abort

from pygarm.client import UNSET, GarmClient, GarmClientError, ProfileError, ProfileFile, Unset

T = TypeVar("T")

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A problem the user can fix, reported as one line (``error: <message>``) with exit code 1."""


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", envvar="PYGARM_FORMAT", help="Output format: table (default) or json."),
]


def fail(message: str) -> NoReturn:
    raise CliError(message)


def report_error(message: str) -> None:
    typer.echo(f"error: {' '.join(message.split())}", err=True)


def usage_error(exc: UsageError) -> typer.Exit:
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    report_error(exc.format_message() + where)
    return typer.Exit(EXIT_USAGE)


class RootGroup(TyperGroup):
    """The ``pygarm`` group: maps every expected failure to one stderr line and a non-zero exit.

    Typer would draw usage errors and aborts in rich boxes over several lines; every one of them is
    caught here instead, both while the root options are parsed (``make_context``) and while a
    subcommand's are (``invoke``).
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except NoArgsIsHelpError:
            raise  # `pygarm`: typer prints the help
        except UsageError as exc:  # `pygarm --bogus`
            raise usage_error(exc) from None

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (GarmClientError, ProfileError, CliError) as exc:
            report_error(str(exc))
            raise typer.Exit(EXIT_ERROR) from None
        except NoArgsIsHelpError:
            raise  # `pygarm repo`: typer prints the group's help
        except UsageError as exc:
            raise usage_error(exc) from None
        except KeyboardInterrupt:
            typer.echo("", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Abort as exc:  # a prompt ended by Ctrl-C or by the end of its input
            typer.echo("", err=True)
            if isinstance(exc.__context__, KeyboardInterrupt):
                raise typer.Exit(EXIT_INTERRUPTED) from None
            report_error("no input: the prompt's input ended (Ctrl-D)")
            raise typer.Exit(EXIT_ERROR) from None


class State:
    """Root options, kept on the typer context (``ctx.obj``) for the commands."""

    def __init__(self, profile: str | None) -> None:
        self.profile = profile


def profile_name(ctx: typer.Context) -> str | None:
    root = ctx.find_root()
    state = root.obj if isinstance(root.obj, State) else None
    return state.profile if state else None


def client(ctx: typer.Context) -> GarmClient:
    """A client for ``--profile`` (or ``$PYGARM_PROFILE``), else the active garm-cli profile."""
    profile = ProfileFile.load().require(profile_name(ctx))
    return open_client(profile.base_url, profile.bearer_token)


def open_client(base_url: str, token: str | None = None) -> GarmClient:
    try:
        return GarmClient(base_url, token)
    except ValueError as exc:  # a URL that is not http(s)://host
        raise CliError(str(exc)) from None


def read_secret(label: str, value: str | None = None, *, confirm: bool = False) -> str:
    """``value`` unless it is ``None`` or ``-``; else a hidden prompt on a terminal, else one stdin line."""
    if value is not None and value != "-":
        return value
    if sys.stdin is not None and sys.stdin.isatty():
        secret = str(typer.prompt(label, hide_input=True, confirmation_prompt=confirm))
    else:
        line = sys.stdin.readline() if sys.stdin is not None else ""
        secret = line.rstrip("\r\n")
    if not secret:
        fail(f"no {label.lower()} given (type it at the prompt or pass it on standard input)")
    return secret


def read_text(label: str, value: str | None) -> str:
    """A non-secret value that garm-cli prompts for when its option is missing."""
    if value:
        return value
    if sys.stdin is not None and sys.stdin.isatty():
        return str(typer.prompt(label))
    fail(f"missing {label.lower()}: pass it as an option")


def split_list(value: str | None) -> list[str]:
    """garm-cli's comma-separated lists (``--tags a,b``), blanks dropped."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def exactly_one(**flags: str | bool | None) -> str:
    """The one option of a mutually exclusive set that was given (``--repo``/``--org``/...)."""
    chosen = [name for name, value in flags.items() if value]
    if len(chosen) != 1:
        names = ", ".join("--" + name.replace("_", "-") for name in flags)
        fail(f"give exactly one of {names}")
    return chosen[0]


def at_most_one(**flags: str | bool | None) -> str | None:
    chosen = [name for name, value in flags.items() if value]
    if len(chosen) > 1:
        names = ", ".join("--" + name.replace("_", "-") for name in chosen)
        fail(f"{names} are mutually exclusive")
    return chosen[0] if chosen else None


def keep(value: T | None) -> T | Unset:
    """An option left out (``None``) means "leave as is" in an update call."""
    return UNSET if value is None else value
