"""``docs/configuration.md`` names every key ``Settings`` reads, under its section, with its default."""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from pygarm.config import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
HEADING = re.compile(r"^#{2,3} `\[{1,2}([a-z0-9_.]+)\]{1,2}`")
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| ([^|]+) \| ([^|]+) \|")
REQUIRED = object()


def settings_keys(model: type[BaseModel] = Settings, section: str = "") -> dict[tuple[str, str], Any]:
    """``{(section, key): default}`` for every leaf of the settings models (``REQUIRED`` if none)."""
    keys: dict[tuple[str, str], Any] = {}
    for name, field in model.model_fields.items():
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if nested:
            keys |= settings_keys(nested[0], f"{section}.{name}" if section else name)
            continue
        if field.default is not PydanticUndefined:
            default = field.default
        elif field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        else:
            default = REQUIRED
        keys[(section, name)] = default
    return keys


def documented_keys() -> dict[tuple[str, str], str]:
    """``{(section, key): default cell}`` from the tables under each section heading."""
    rows: dict[tuple[str, str], str] = {}
    section = ""
    for line in DOC.read_text().splitlines():
        if heading := HEADING.match(line):
            section = heading.group(1)
        elif (row := ROW.match(line)) and section:
            assert (section, row.group(1)) not in rows, f"[{section}] {row.group(1)} twice"
            rows[(section, row.group(1))] = row.group(2).strip()
    return rows


def parse_default(cell: str) -> Any:
    if cell == "required":
        return REQUIRED
    if cell == "unset":
        return None
    literal = re.fullmatch(r"`([^`]*)`", cell)
    assert literal, f"a default is `TOML`, required or unset: {cell!r}"
    return tomllib.loads(f"value = {literal.group(1)}")["value"]


def test_every_settings_key_is_documented_with_its_default() -> None:
    keys, documented = settings_keys(), documented_keys()
    missing = sorted(f"[{s}] {k}" for s, k in keys.keys() - documented.keys())
    assert not missing, f"not in docs/configuration.md: {missing}"
    unknown = sorted(f"[{s}] {k}" for s, k in documented.keys() - keys.keys())
    assert not unknown, f"documented but not read by pygarm: {unknown}"
    wrong = {
        f"[{s}] {k}": (documented[(s, k)], d)
        for (s, k), d in keys.items()
        if parse_default(documented[(s, k)]) != d
    }
    assert not wrong, f"documented default differs from the code's: {wrong}"


def test_every_origin_is_garm_source_or_pygarm() -> None:
    for line in DOC.read_text().splitlines():
        if row := ROW.match(line):
            origin = row.group(3).strip()
            assert origin == "**pygarm**" or re.fullmatch(r"`garm@v0\.1\.5 config/[a-z]+\.go:\d+`", origin), (
                line
            )
