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
]
