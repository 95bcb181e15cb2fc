"""Failed-login limits: refusals per client address and per (user, address), a slow-down per user.

Each key keeps the times of its recent failures. Once an address, or a user from one address,
holds `failures` of them inside `window` seconds, logins from there are refused with 429 until the
oldest failure leaves the window, even with the right password: otherwise the limit would only
slow guessing down, not stop it. A user name is never refused outright, since anyone could then
lock any user out from everywhere; failures for a user from many addresses instead delay that
user's password checks, doubling up to `max_delay`, which bounds guessing spread over addresses
while the right password from a new address still gets in. Counters live in one process; with
several workers each keeps its own.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from auth.base import TooManyRequests


class FailureCounter:
    """Recent failures per key, and a 429 once a key holds `failures` of them within `window`."""

    def __init__(
        self,
        failures: int = 10,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
        extra: int = 0,
    ) -> None:
        self.failures = failures
        # Failures kept beyond the limit (the slow-down counts past it).
        self.extra = extra
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._seen: dict[str, deque[float]] = {}

    def check(self, *keys: str) -> None:
        """Raise `TooManyRequests` (with `Retry-After`) if any of `keys` is over the limit."""
        if self.failures <= 0:
            return
        now = self._clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if times is not None and len(times) >= self.failures:
                wait = max(wait, times[-self.failures] + self.window - now)
        if wait > 0:
            raise TooManyRequests(
                "too many failed logins; try again later",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def fail(self, *keys: str) -> None:
        if self.failures <= 0:
            return
        now = self._clock()
        if len(self._seen) >= self._max_keys:
            self._prune(now)
        for key in keys:
            times = self._recent(key, now)
            if times is None:
                times = self._seen[key] = deque(maxlen=self.failures + self.extra)
            times.append(now)

    def count(self, key: str) -> int:
        """Failures of `key` within the window (up to `failures + extra`)."""
        times = self._recent(key, self._clock())
        return len(times) if times is not None else 0

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._seen.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._seen[key]
            return None
        return times

    def _prune(self, now: float) -> None:
        for key in list(self._seen):
            self._recent(key, now)
        if len(self._seen) >= self._max_keys:
            # Still full of live keys: a flood from many addresses. Forget the oldest half.
            by_age = sorted(self._seen, key=lambda k: self._seen[k][-1])
            for key in by_age[: len(by_age) // 2]:
                del self._seen[key]


# Past the limit, each further failure for a user doubles the delay, from this first step.
_FIRST_DELAY = 0.05
_DELAY_STEPS = 8


class LoginLimiter:
    """The failed-login policy; `check` before a password check, `fail` after a wrong one."""

    def __init__(
        self,
        failures: int = 10,
        window: float = 300.0,
        max_delay: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.max_delay = max_delay
        self._refusals = FailureCounter(failures, window, clock, max_keys)
        self._slowdown = FailureCounter(failures, window, clock, max_keys, extra=_DELAY_STEPS)

    def check(self, address: str, user: str) -> float:
        """Raise `TooManyRequests` if the address, or this user from it, is over the limit; else
        return how long to wait before checking the password (0 unless the user is under attack)."""
        self._refusals.check(f"addr:{address}", f"user-addr:{user}\0{address}")
        return self.delay(user)

    def delay(self, user: str) -> float:
        failures = self._slowdown.failures
        if failures <= 0 or self.max_delay <= 0:
            return 0.0
        over = self._slowdown.count(f"user:{user}") - failures
        if over < 0:
            return 0.0
        return float(min(self.max_delay, _FIRST_DELAY * 2**over))

    def fail(self, address: str, user: str) -> None:
        self._refusals.fail(f"addr:{address}", f"user-addr:{user}\0{address}")
        self._slowdown.fail(f"user:{user}")
