"""Which upstream a repository mirrors, for the pages' "mirror of" mark.

The answer is the pull-through cache's own routing (`Routing.prefixed`): a cached repository is
always stored under its upstream's prefix (or anywhere, in a whole-registry mirror), so the prefix
alone decides, exactly as it does for the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry.config import ProxyConfig

if TYPE_CHECKING:
    from registry.proxy.routing import Routing


@dataclass(frozen=True, slots=True)
class MirrorMark:
    host: str  # the upstream's host[:port], never its credentials
    prefix: str  # "" in a whole-registry mirror

    @property
    def text(self) -> str:
        return f"mirror of {self.host}" + (f" (prefix {self.prefix}/)" if self.prefix else "")


class MirrorMarks:
    def __init__(self, config: ProxyConfig | None) -> None:
        # Building the routing opens no connection: upstream clients are made on first use.
        configured = config is not None and bool(config.remoteurl or config.upstreams)
        self._routing: Routing | None = None
        if config is not None and configured:
            # Loaded only for a mirror: its upstream client (httpx) costs every worker ~10 MiB.
            from registry.proxy.routing import Routing

            self._routing = Routing(config)

    def of(self, name: str) -> MirrorMark | None:
        if self._routing is None:
            return None
        target = self._routing.prefixed(name)
        if target is None:
            return None
        return MirrorMark(target.upstream.host, target.upstream.prefix)
