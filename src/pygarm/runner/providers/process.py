"""Run one provider executable once: provider-common's ``exec.Exec``
(docs/garm-protocol.md#provider-execution), plus a timeout.

The program gets no arguments, exactly the given environment (nothing inherited), the given bytes on stdin
and then EOF; stdout and stderr are collected in full. It runs in its own session so that, when it must be
stopped, the whole process group goes with it: a provider that started helpers (``ssh``, a cloud CLI) would
otherwise leave them running and holding our pipes open.

Everything is awaited on the event loop (``asyncio.create_subprocess_exec``); nothing here blocks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from typing import Final

log = logging.getLogger(__name__)

READ_CHUNK: Final = 64 * 1024
"""Bytes read from a pipe at a time; providers print little, so this only bounds one read."""

KILL_GRACE_SECONDS: Final = 5.0
"""How long to wait for a SIGKILLed process to be reaped before giving up on it (it cannot ignore SIGKILL)."""


class ProcessFailure(Exception):
    """The run did not end with exit status 0. ``str()`` is provider-common's error text.

    ``reason`` is the Go ``exec`` error text (``exit status 1``, ``signal: killed``,
    ``fork/exec <path>: no such file or directory``) or the timeout note.
    """

    def __init__(
        self,
        stdout: bytes,
        stderr: bytes,
        reason: str,
        *,
        exit_code: int | None = None,
        timed_out: bool = False,
    ) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.reason = reason
        self.exit_code = exit_code
        self.timed_out = timed_out
        super().__init__(self._text())

    def _text(self) -> str:
        out = self.stdout.decode("utf-8", errors="replace")
        err = self.stderr.decode("utf-8", errors="replace")
        return f"provider binary failed with stdout: {out}; stderr: {err}: {self.reason}"


async def run_provider_binary(
    executable: str,
    *,
    stdin: bytes,
    env: Mapping[str, str],
    timeout: float | None,
) -> bytes:
    """Run ``executable`` once and return its stdout; raise :class:`ProcessFailure` unless it exits 0.

    ``timeout`` (seconds, ``None`` for none) bounds the whole run, including writing stdin and reading
    the pipes to EOF. When it expires, or when the awaiting task is cancelled, the process group is killed
    with SIGKILL before this returns or re-raises.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            executable,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            start_new_session=True,
        )
    except OSError as exc:
        raise ProcessFailure(b"", b"", f"fork/exec {executable}: {_errno_text(exc)}") from None

    stdout = bytearray()
    stderr = bytearray()
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(
                _feed(proc, stdin),
                _drain(proc.stdout, stdout),
                _drain(proc.stderr, stderr),
            )
            returncode = await proc.wait()
    except TimeoutError:
        await _kill_group(proc)
        log.warning("provider %s timed out after %.1fs; process group killed", executable, timeout)
        raise ProcessFailure(
            bytes(stdout),
            bytes(stderr),
            f"timed out after {timeout:g}s; process group killed",
            exit_code=proc.returncode,
            timed_out=True,
        ) from None
    except BaseException:
        # Cancellation (daemon shutdown) or an unexpected error: never leave the provider running.
        await _kill_group(proc)
        raise

    log.debug("provider %s exited %d after %.3fs", executable, returncode, time.monotonic() - started)
    if returncode != 0:
        raise ProcessFailure(bytes(stdout), bytes(stderr), _exit_text(returncode), exit_code=returncode)
    return bytes(stdout)


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    """Write stdin and close it; a provider that exits without reading it is fine (Go ignores EPIPE)."""
    pipe = proc.stdin
    if pipe is None:  # pragma: no cover - we always ask for a pipe
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            pipe.write(data)
            await pipe.drain()
        pipe.close()
        await pipe.wait_closed()


async def _drain(stream: asyncio.StreamReader | None, sink: bytearray) -> None:
    if stream is None:  # pragma: no cover - we always ask for pipes
        return
    while chunk := await stream.read(READ_CHUNK):
        sink += chunk


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the provider's process group (it leads its own session) and reap the provider."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()  # in case it left its group; harmless if it is already gone
    try:
        await asyncio.wait_for(proc.wait(), KILL_GRACE_SECONDS)
    except TimeoutError:
        log.error("provider process %d was not reaped %.0fs after SIGKILL", proc.pid, KILL_GRACE_SECONDS)


def _exit_text(returncode: int) -> str:
    """Go's ``ProcessState.String()``: ``exit status N`` or ``signal: <name>``."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        description = signal.strsignal(-returncode) or f"signal {-returncode}"
    except ValueError:
        description = f"signal {-returncode}"
    return f"signal: {_lower_first(description)}"


def _errno_text(exc: OSError) -> str:
    """Go's ``syscall.Errno`` text: the C description with a lower-case first letter."""
    return _lower_first(exc.strerror or str(exc))


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
