"""The error of a seccomp profile that cannot be read or compiled (its own module, so that code
catching it need not load the compiler)."""

from __future__ import annotations

__all__ = ["ProfileError"]


class ProfileError(ValueError):
    pass
