"""Failed-login limits per username and per client address (issue 8 #9; GARM has none).

A sliding window: once a login name (or a client address) has ``limit`` failed logins within ``window``
seconds, further attempts are refused with 429 and ``Retry-After`` until the oldest of those failures
leaves the window, without checking the password (a refused attempt costs no bcrypt and counts as
nothing). An attempt counts as a failure from the moment it is let through, so that many concurrent
guesses cannot all pass the check before the first one fails; a successful login takes its own attempt
back and forgets the name's failures. Failures count for unknown names too, so the limit itself does not
tell which names exist. Names are compared case-insensitively, as the login looks them up.

State is in memory, per process, and bounded (:data:`MAX_TRACKED_KEYS` per kind, oldest dropped first),
so a flood of invented usernames cannot grow it without end; such a flood comes from few addresses,
which the address limit stops. Sans-I/O: the clock is passed in.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict, deque
from dataclasses import dataclass

from pygarm.config import Settings, parse_go_duration
from pygarm.errors import TooManyRequestsError

MAX_TRACKED_KEYS = 10_000
"""Usernames (and, separately, addresses) whose recent failures are remembered."""


class _Window:
    """Failure times per key within the last ``window`` seconds, for at most ``MAX_TRACKED_KEYS`` keys."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: OrderedDict[str | bytes, deque[float]] = OrderedDict()

    def _recent(self, key: str | bytes, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str | bytes, now: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        if self.limit <= 0:
            return 0.0
        times = self._recent(key, now)
        if times is None or len(times) < self.limit:
            return 0.0
        return times[-self.limit] + self.window - now

    def fail(self, key: str | bytes, now: float) -> None:
        if self.limit <= 0:
            return
        times = self._recent(key, now)
        if times is None:
            times = deque(maxlen=self.limit)
            self._failures[key] = times
            while len(self._failures) > MAX_TRACKED_KEYS:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        times.append(now)

    def forget(self, key: str | bytes) -> None:
        self._failures.pop(key, None)

    def take_back(self, key: str | bytes, at: float) -> None:
        times = self._failures.get(key)
        if times is not None and at in times:
            times.remove(at)


def name_key(name: str) -> bytes:
    """16 bytes per login name, whatever its length: a body may carry a 64 KiB name, and 10,000 of them
    kept as they are would be 640 MiB."""
    return hashlib.blake2b(name.lower().encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True)
class LoginLimits:
    """Failures allowed per ``window`` seconds (``[login_limit]``); 0 turns a limit off."""

    per_username: int = 10
    per_address: int = 30
    window: float = 60.0


class LoginLimiter:
    """Both windows; :meth:`attempt` before checking a password, :meth:`succeeded` after a success."""

    def __init__(self, limits: LoginLimits | None = None) -> None:
        limits = limits or LoginLimits()
        self._names = _Window(limits.per_username, limits.window)
        self._addresses = _Window(limits.per_address, limits.window)

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimiter:
        section = settings.login_limit
        window = parse_go_duration(section.window)
        return cls(LoginLimits(section.per_username, section.per_address, window))

    def attempt(self, name: str, address: str, now: float) -> None:
        """Let one attempt through (counted as a failure until :meth:`succeeded`), or raise
        :class:`~pygarm.errors.TooManyRequestsError` if the name or the address is over its limit."""
        key = name_key(name)
        wait = max(self._names.retry_after(key, now), self._addresses.retry_after(address, now))
        if wait > 0:
            raise TooManyRequestsError(retry_after=max(1, math.ceil(wait)))
        self._names.fail(key, now)
        self._addresses.fail(address, now)

    def succeeded(self, name: str, address: str, attempted_at: float) -> None:
        self._names.forget(name_key(name))
        self._addresses.take_back(address, attempted_at)
