"""Docker's human-readable columns: go-units' durations ("13 seconds", "About an hour") and the
`ps` COMMAND column (arguments with spaces in single quotes, then Go's strconv.Quote)."""

from __future__ import annotations

import time
import unicodedata

__all__ = ["ago", "go_quote", "human_duration", "ps_command", "since"]


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def since(timestamp: str) -> float | None:
    """Seconds from an RFC 3339 timestamp (fractions and offsets allowed) to now."""
    # Imported here: calendar and datetime take ~2 ms to load, and `run` loads this module.
    import calendar
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = datetime.fromtimestamp(calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S")), UTC)
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (datetime.now(UTC) - when).total_seconds()


def ago(timestamp: object) -> str:
    """`13 seconds ago`, as `docker images` and `docker ps` print creation times."""
    seconds = since(timestamp) if isinstance(timestamp, str) and timestamp else None
    if seconds is None:
        return "N/A"
    return f"{human_duration(max(0.0, seconds))} ago"


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's strconv.Quote: backslash and double quote escaped, non-printable characters as escapes."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == " " or (ch.isprintable() and unicodedata.category(ch)[0] != "Z"):
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def ps_command(args: tuple[str, ...] | list[str], truncate: bool) -> str:
    """The daemon joins Path and Args, putting an argument with a space in single quotes; the CLI
    cuts it to 20 characters ending in "…" and quotes it."""
    if not args:
        return go_quote("")
    command = " ".join([args[0], *(f"'{a}'" if " " in a else a for a in args[1:])])
    if truncate and len(command) > 20:
        command = command[:19] + "…"
    return go_quote(command)
