import pytest

from auth.base import TooManyRequests
from auth.ratelimit import FailureLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_locks_after_failures_and_unlocks_after_window():
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock)
    for _ in range(3):
        limiter.check("addr:1", "user:a")
        limiter.fail("addr:1", "user:a")
        clock.now += 1
    with pytest.raises(TooManyRequests) as info:
        limiter.check("addr:1")
    assert info.value.status == 429 and info.value.code.name == "TOOMANYREQUESTS"
    assert info.value.headers["Retry-After"] == "57"
    with pytest.raises(TooManyRequests):
        limiter.check("addr:2", "user:a")  # the user is limited from any address
    limiter.check("addr:2", "user:b")
    clock.now += 57
    limiter.check("addr:1", "user:a")


def test_disabled_with_zero():
    limiter = FailureLimiter(0, 60)
    for _ in range(100):
        limiter.fail("k")
    limiter.check("k")


def test_memory_is_bounded():
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock, max_keys=100)
    for i in range(1000):
        limiter.fail(f"addr:{i}")
    assert len(limiter._seen) <= 100
    clock.now += 61
    limiter.fail("fresh")
    limiter.fail("fresh2")
    assert len(limiter._seen) <= 100
