"""Bounded provider runs: a hanging provider is killed with its process group (a pygarm addition to
docs/garm-protocol.md#provider-execution, where GARM waits for ever), and cancelling the caller kills it
too."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from pygarm.runner.providers import ProviderError, ProviderTimeoutError

from .conftest import ProviderHarness

HANG_SECONDS = "60"  # far longer than any timeout below: the test fails by pytest's timeout if not killed


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_dead(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.02)
    return False


async def test_hanging_provider_is_killed_after_timeout(provider_harness: ProviderHarness) -> None:
    """The run stops at the timeout, the error says so and carries the partial stderr."""
    provider_harness.knob("hang", HANG_SECONDS)
    provider_harness.knob("stderr", "starting VM\n")
    provider = provider_harness.provider(timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError) as caught:
        await provider.delete_instance("prov-x")
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 6.0
    message = str(caught.value)
    assert message.startswith(
        f"provider binary {provider.executable} returned error: provider binary failed with"
    )
    assert "stderr: starting VM\n" in message
    assert message.endswith(": timed out after 1s; process group killed")
    assert isinstance(caught.value, ProviderError)  # callers handling ProviderError see timeouts too
    pid = provider_harness.last_invocation()["pid"]
    assert wait_dead(pid)


async def test_timeout_on_delete_is_not_mistaken_for_not_found(provider_harness: ProviderHarness) -> None:
    """Exit 30 means "gone" (docs/garm-protocol.md#provider-errors); a killed delete must still fail."""
    provider_harness.knob("hang", HANG_SECONDS)
    with pytest.raises(ProviderTimeoutError):
        await provider_harness.provider(timeout=0.5).delete_instance("prov-x")


async def test_timeout_kills_the_whole_process_group(provider_harness: ProviderHarness) -> None:
    """Helpers the provider started die with it, so nothing keeps running or holds the pipes."""
    provider_harness.knob("hang", HANG_SECONDS)
    provider_harness.knob("hang_child", "1")
    with pytest.raises(ProviderTimeoutError):
        await provider_harness.provider(timeout=1.5).start_instance("prov-x")
    child_pid = json.loads((provider_harness.state_dir / "hang-child.pid").read_text())
    assert wait_dead(child_pid), "the provider's child survived the timeout"


async def test_cancelling_the_caller_kills_the_provider(provider_harness: ProviderHarness) -> None:
    """Daemon shutdown cancels provider calls; the process must not outlive the task (Go kills it too)."""
    provider_harness.knob("hang", HANG_SECONDS)
    task = asyncio.create_task(provider_harness.provider(timeout=None).delete_instance("prov-x"))
    deadline = time.monotonic() + 10
    while not provider_harness.invocations():  # recorded just before the provider starts hanging
        assert time.monotonic() < deadline, "the provider never ran"
        await asyncio.sleep(0.02)
    pid = provider_harness.last_invocation()["pid"]
    assert is_alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_dead(pid)


async def test_event_loop_keeps_running_while_provider_runs(provider_harness: ProviderHarness) -> None:
    """Provider runs are awaited, never blocking: other coroutines progress meanwhile."""
    provider_harness.knob("hang", "1")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        await provider_harness.provider(timeout=10).stop_instance("prov-x")
    except ProviderError:
        pass  # exit 30 (no such instance): irrelevant here
    finally:
        ticking.cancel()
    assert ticks >= 10
