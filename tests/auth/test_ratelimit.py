import itertools

import pytest

from auth.base import TooManyRequests
from auth.ratelimit import FailureCounter, LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_locks_after_failures_and_unlocks_after_window():
    clock = Clock()
    limiter = FailureCounter(3, 60, clock)
    for _ in range(3):
        limiter.check("addr:1", "user:a")
        limiter.fail("addr:1", "user:a")
        clock.now += 1
    with pytest.raises(TooManyRequests) as info:
        limiter.check("addr:1")
    assert info.value.status == 429 and info.value.code.name == "TOOMANYREQUESTS"
    assert info.value.headers["Retry-After"] == "57"
    limiter.check("addr:2", "user:b")
    clock.now += 57
    limiter.check("addr:1", "user:a")


def test_failures_from_many_addresses_never_lock_the_user_out():
    """Guesses at one user from 1000 addresses: the right password from a new address still
    gets in (check does not raise); the user's checks are slowed down instead, up to max_delay."""
    clock = Clock()
    limiter = LoginLimiter(failures=3, window=60, max_delay=2.0, clock=clock)
    assert limiter.check("10.0.0.1", "alice") == 0.0
    for i in range(1000):
        limiter.check(f"10.1.{i // 256}.{i % 256}", "alice")
        limiter.fail(f"10.1.{i // 256}.{i % 256}", "alice")
    assert limiter.check("192.168.0.9", "alice") == 2.0
    assert limiter.check("192.168.0.9", "bob") == 0.0  # other users are not slowed down
    clock.now += 61
    assert limiter.check("192.168.0.9", "alice") == 0.0


def test_slow_down_grows_with_failures():
    limiter = LoginLimiter(failures=3, window=60, max_delay=10.0, clock=Clock())
    delays = []
    for i in range(8):
        delays.append(limiter.check(f"10.0.0.{i}", "alice"))
        limiter.fail(f"10.0.0.{i}", "alice")
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3] > 0 and all(b == 2 * a for a, b in itertools.pairwise(delays[3:]))


def test_one_address_guessing_one_user_is_refused_but_others_from_elsewhere_are_not():
    limiter = LoginLimiter(failures=3, window=60, clock=Clock())
    for _ in range(3):
        limiter.check("10.0.0.1", "alice")
        limiter.fail("10.0.0.1", "alice")
    with pytest.raises(TooManyRequests):
        limiter.check("10.0.0.1", "alice")
    with pytest.raises(TooManyRequests):
        limiter.check("10.0.0.1", "bob")  # the per-address limit stays
    limiter.check("10.0.0.2", "alice")


def test_disabled_with_zero():
    limiter = LoginLimiter(0, 60)
    for _ in range(100):
        limiter.fail("k", "u")
    assert limiter.check("k", "u") == 0.0


def test_memory_is_bounded():
    clock = Clock()
    limiter = FailureCounter(3, 60, clock, max_keys=100)
    for i in range(1000):
        limiter.fail(f"addr:{i}")
    assert len(limiter._seen) <= 100
    clock.now += 61
    limiter.fail("fresh")
    limiter.fail("fresh2")
    assert len(limiter._seen) <= 100
