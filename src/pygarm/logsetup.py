"""Logging set-up from ``[logging]``: level, text or JSON format, optional file
(docs/garm-protocol.md#configuration, docs/observability.md#logs).

GARM logs through slog with a text or a JSON handler (``garm@v0.1.5 cmd/garm/main.go:111-142``); pygarm
keeps the two formats and their keys (``time``, ``level``, ``msg``, then the record's attributes).
Attributes come from two places:

* ``extra={"attrs": {...}}`` on a logging call: the access log's ``method``, ``route``, ``code``…
* :data:`REQUEST_ID`, set by the access-log middleware for each HTTP request and websocket connection:
  every line logged while serving it (in its task, or tasks it starts) carries ``request_id``, as GARM's
  ``ContextHandler`` adds its context fields (``garm@v0.1.5 util/logging.go``).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from typing import Any

from pygarm.config import Settings, create_private_file

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}

REQUEST_ID: ContextVar[str] = ContextVar("pygarm_request_id", default="")
"""The id of the HTTP request or websocket connection being served ("" outside one)."""


def record_attrs(record: logging.LogRecord) -> dict[str, Any]:
    """The structured attributes of a record: its ``attrs`` extra, plus the request id of its context."""
    attrs: dict[str, Any] = dict(getattr(record, "attrs", None) or {})
    request_id = getattr(record, "request_id", "") or REQUEST_ID.get()
    if request_id:
        attrs.setdefault("request_id", request_id)
    return attrs


class RequestIdFilter(logging.Filter):
    """Stamps the record with the request id of the context it was logged in, for handlers that format
    later or on another thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = REQUEST_ID.get()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per record, like GARM's ``log_format = "json"`` (slog's JSON handler keys)."""

    def __init__(self, *, with_source: bool) -> None:
        super().__init__()
        self.with_source = with_source

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.replace("WARNING", "WARN"),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        if self.with_source:
            data["source"] = f"{record.pathname}:{record.lineno}"
        for key, value in record_attrs(record).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def _text_value(value: Any) -> str:
    """slog's text handler: bare when it has no space, quote or ``=``, else a quoted string."""
    text = str(value)
    if text and not any(c in text for c in ' "=\\') and text.isprintable():
        return text
    return json.dumps(text)


class TextFormatter(logging.Formatter):
    """``time=… level=… logger=… msg=…`` followed by ``key=value`` for each attribute."""

    def __init__(self, *, with_source: bool) -> None:
        source = " %(pathname)s:%(lineno)d" if with_source else ""
        super().__init__(f"time=%(asctime)s level=%(levelname)s logger=%(name)s{source} msg=%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        attrs = record_attrs(record)
        if not attrs:
            return line
        head, newline, tail = line.partition("\n")  # keep a traceback after the attributes
        pairs = " ".join(f"{key}={_text_value(value)}" for key, value in attrs.items())
        return f"{head} {pairs}{newline}{tail}"


def build_formatter(settings: Settings) -> logging.Formatter:
    if settings.logging.log_format == "json":
        return JSONFormatter(with_source=settings.logging.log_source)
    return TextFormatter(with_source=settings.logging.log_source)


def configure_logging(settings: Settings) -> None:
    log_file = settings.logging.log_file or settings.default.log_file
    if log_file:
        create_private_file(log_file)  # GARM's lumberjack creates it 0600; FileHandler would use the umask
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(build_formatter(settings))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[settings.logging.log_level])
