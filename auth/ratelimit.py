"""Failed-login limits, per client address and per user name.

Each key (an address, a user name) keeps the times of its recent failures. Once a key holds
`failures` of them inside `window` seconds, logins for it are refused with 429 until the oldest
failure leaves the window, even with the right password: otherwise the limit would only slow
guessing down, not stop it. Counters live in one process; with several workers each keeps its own.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from auth.base import TooManyRequests


class FailureLimiter:
    def __init__(
        self,
        failures: int = 10,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.failures = failures
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
                times = self._seen[key] = deque(maxlen=self.failures)
            times.append(now)

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
