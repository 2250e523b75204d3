"""Small typer helpers: sub-apps with pygarm's defaults, and garm-cli's command aliases (``ls``, ``rm``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


def sub_app(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, add_completion=False)


def command(app: typer.Typer, name: str, *aliases: str) -> Callable[[F], F]:
    """Register a command under ``name`` and, hidden from help, under each garm-cli alias."""

    def register(func: F) -> F:
        app.command(name)(func)
        for alias in aliases:
            app.command(alias, hidden=True)(func)
        return func

    return register
