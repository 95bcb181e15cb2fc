"""Who may do what: users, rules and tokens."""

from auth.base import (
    Access,
    AccessController,
    AllowAll,
    AnonymousController,
    AuthError,
    Challenge,
    Denied,
    Grant,
    TooManyRequests,
)


def __getattr__(name: str) -> object:
    # The factory pulls in JWT, crypto and bcrypt; commands that never serve should not pay for it.
    if name == "open_controller":
        from auth.factory import open_controller

        return open_controller
    raise AttributeError(name)


__all__ = [
    "Access",
    "AccessController",
    "AllowAll",
    "AnonymousController",
    "AuthError",
    "Challenge",
    "Denied",
    "Grant",
    "TooManyRequests",
    "open_controller",
]
