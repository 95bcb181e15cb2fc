"""`dockyard events tail`: follow every new event from the queues in storage, one JSON line each."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
import uuid

import orjson

from registry.cmdline import add_config_arguments, load_or_exit
from registry.events.queue import TAIL_ALIVE_SECONDS, Queue, tail_dir
from storage_backends import StorageBackend, open_backend

_POLL_SECONDS = 0.3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = subparsers.add_parser("events", help="follow registry events (webhooks) from the queue")
    commands = events.add_subparsers(dest="events_command", metavar="COMMAND", required=True)
    tail = commands.add_parser("tail", help="print each new event as one JSON line, as it happens")
    add_config_arguments(tail)
    tail.add_argument("--count", type=int, default=0, help="exit after this many events (default: follow)")
    tail.set_defaults(func=tail_command)


def tail_command(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if config is None:
        return 2
    if config.storage.driver == "inmemory":
        print("dockyard: events tail needs the servers' storage (filesystem or s3), not inmemory", file=sys.stderr)
        return 2
    backend = open_backend(config.storage.driver, config.storage.driver_options)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(follow(backend, args.count))
    return 0


async def follow(backend: StorageBackend, count: int = 0) -> None:
    """Register a tail in storage, print what the servers queue for it, and unregister on the way out."""
    directory = tail_dir(uuid.uuid4().hex)
    queue = Queue(backend, directory)
    alive_key = f"{directory}/alive"
    printed = 0
    task = asyncio.current_task()
    if task is not None:  # a SIGTERM stops the tail as Ctrl-C does: unregistered on the way out
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await backend.put(alive_key, b"")
        said_alive = time.monotonic()
        print("following events (the servers start queueing them within seconds)", file=sys.stderr, flush=True)
        while not count or printed < count:
            if time.monotonic() - said_alive > TAIL_ALIVE_SECONDS / 3:
                await backend.put(alive_key, b"")
                said_alive = time.monotonic()
            for name in await queue.pending():
                events = (await queue.read(name) or [])[: count - printed if count else None]
                if events:
                    sys.stdout.write("".join(orjson.dumps(event).decode() + "\n" for event in events))
                    sys.stdout.flush()
                    printed += len(events)
                await queue.remove(name)
                if count and printed >= count:
                    break
            else:
                await asyncio.sleep(_POLL_SECONDS)
    finally:
        with contextlib.suppress(Exception):
            await backend.delete(directory)
        await backend.close()
