"""Logging set-up from ``[logging]``: level, text or JSON format, optional file
(docs/garm-protocol.md#configuration)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from pygarm.config import Settings, create_private_file

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


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
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data)


def build_formatter(settings: Settings) -> logging.Formatter:
    if settings.logging.log_format == "json":
        return JSONFormatter(with_source=settings.logging.log_source)
    source = " %(pathname)s:%(lineno)d" if settings.logging.log_source else ""
    return logging.Formatter(f"time=%(asctime)s level=%(levelname)s logger=%(name)s{source} msg=%(message)s")


def configure_logging(settings: Settings) -> None:
    log_file = settings.logging.log_file or settings.default.log_file
    if log_file:
        create_private_file(log_file)  # GARM's lumberjack creates it 0600; FileHandler would use the umask
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(build_formatter(settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[settings.logging.log_level])
