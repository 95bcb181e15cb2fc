"""Resource limits by Docker's --ulimit names (go-units ulimit.go), set with setrlimit(2)."""

from __future__ import annotations

import resource

from runtime.spec import Rlimit

__all__ = ["RLIMITS", "apply"]

RLIMITS = {
    "core": resource.RLIMIT_CORE,
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "locks": 10,  # RLIMIT_LOCKS (asm-generic/resource.h); Python's resource module lacks it
    "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE,
    "nice": resource.RLIMIT_NICE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "rss": resource.RLIMIT_RSS,
    "rtprio": resource.RLIMIT_RTPRIO,
    "rttime": resource.RLIMIT_RTTIME,
    "sigpending": resource.RLIMIT_SIGPENDING,
    "stack": resource.RLIMIT_STACK,
}


def apply(limits: tuple[Rlimit, ...]) -> None:
    """Call while still root: raising a hard limit needs CAP_SYS_RESOURCE. -1 is unlimited."""
    for limit in limits:
        soft = resource.RLIM_INFINITY if limit.soft < 0 else limit.soft
        hard = resource.RLIM_INFINITY if limit.hard < 0 else limit.hard
        resource.setrlimit(RLIMITS[limit.name], (soft, hard))
