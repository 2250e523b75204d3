"""Printing results: rich tables for people, JSON (GARM's wire shape and key order) for scripts.

``--format json`` prints exactly what the server's JSON means, through the ``params`` models, indented;
so ``pygarm repo list --format json | jq`` sees GARM's keys. Tables are for reading and may change.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from pygarm.cli._common import OutputFormat
from pygarm.params.gojson import format_go_time

PIPE_WIDTH = 240
"""Width of tables when stdout is not a terminal: wide enough that UUIDs are never cut."""

Row = Sequence[Any]


def console() -> Console:
    """Made per call: the CLI's stdout may be swapped (tests, redirection) between commands."""
    interactive = sys.stdout.isatty()
    return Console(
        file=sys.stdout, width=None if interactive else PIPE_WIDTH, highlight=False, soft_wrap=False
    )


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(to_jsonable(value), option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_go_time(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(cell(item) for item in value)
    return str(value)


def print_table(columns: Sequence[str], rows: Iterable[Row]) -> None:
    table = Table(*columns, show_lines=False)
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    console().print(table)


def print_fields(rows: Iterable[tuple[str, Any]]) -> None:
    """A detail view: one ``Field | Value`` row per attribute, as garm-cli's ``show`` commands."""
    print_table(("Field", "Value"), rows)


def emit(fmt: OutputFormat, value: Any, table: Callable[[], None]) -> None:
    """JSON of ``value``, or the table ``table()`` prints."""
    if fmt is OutputFormat.json:
        print_json(value)
    else:
        table()
