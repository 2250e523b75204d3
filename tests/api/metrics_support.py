"""Reading a ``/metrics`` body: the families with their HELP, TYPE and series, from the raw text so that
the exact exposed names are checked (prometheus_client's own parser strips ``_total``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass
class Family:
    name: str
    help: str = ""
    type: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)
    label_order: list[list[str]] = field(default_factory=list)

    def series(self) -> list[tuple[dict[str, str], float]]:
        return [(labels, value) for _name, labels, value in self.samples]


def parse_exposition(text: str) -> dict[str, Family]:
    """Families in the order they appear (a dict keeps it), keyed by their HELP/TYPE name."""
    families: dict[str, Family] = {}
    current: Family | None = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            current = families.setdefault(name, Family(name))
            current.help = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE ") :].partition(" ")
            current = families.setdefault(name, Family(name))
            current.type = kind
        elif line and not line.startswith("#"):
            match = _SAMPLE.match(line)
            assert match is not None, line
            assert current is not None, line
            pairs = _LABEL.findall(match.group(2) or "")
            current.samples.append((match.group(1), dict(pairs), float(match.group(3))))
            current.label_order.append([key for key, _value in pairs])
    return families


def metrics_token(app: FastAPI) -> str:
    token: str = app.state.ctx.auth.tokens.issue_metrics_token()
    return token


async def scrape(http: httpx.AsyncClient, app: FastAPI) -> dict[str, Family]:
    response = await http.get("/metrics", headers={"Authorization": f"Bearer {metrics_token(app)}"})
    assert response.status_code == 200, response.text
    return parse_exposition(response.text)


async def collect_now(app: FastAPI) -> None:
    """Run one collection round now instead of waiting for ``[metrics] period``."""
    await app.state.metrics_runtime.collect_once()
