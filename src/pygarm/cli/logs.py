"""``pygarm debug-log``: follow the server's log lines, like ``garm-cli debug-log``.

It connects to ``/api/v1/ws/logs`` (the server must have ``[logging] enable_log_streamer = true``; GARM
answers 400 ``log streamer is disabled`` otherwise) and prints each line as it arrives, until Ctrl-C.
"""

from __future__ import annotations

import sys

import typer

from pygarm.cli._common import CliError, profile_name
from pygarm.client import EventReader, GarmClientError, ProfileFile

LOGS_PATH = "/api/v1/ws/logs"


def debug_log(ctx: typer.Context) -> None:
    """Follow the server's log (garm-cli's debug-log)."""
    profile = ProfileFile.load().require(profile_name(ctx))

    def show(_message_type: int, data: bytes) -> None:
        sys.stdout.write(data.decode(errors="replace").rstrip("\r\n") + "\n")
        sys.stdout.flush()

    reader = EventReader(profile.base_url, path=LOGS_PATH, token=profile.bearer_token, handler=show)
    try:
        reader.start()
    except GarmClientError as exc:
        raise CliError(str(exc)) from None
    try:
        reader.wait()
    except KeyboardInterrupt:
        reader.stop()
