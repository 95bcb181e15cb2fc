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
from auth.factory import open_controller

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
