"""Which upstream, if any, a repository name belongs to.

distribution's form (`proxy.remoteurl`) mirrors one upstream as the whole registry: every name is
the upstream's and nothing is pushable. `proxy.upstreams` mirrors each upstream under its prefix
(`dockerhub/library/nginx` is `library/nginx` on that upstream) beside local repositories; one of
them may be the default for names with no prefix that are not local repositories (a Docker
daemon's `registry-mirrors` asks for `library/nginx`), and containerd's `?ns=` picks one by host.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.config import ConfigError, ProxyConfig, UpstreamConfig
from registry.proxy.upstream import Upstream


@dataclass(frozen=True, slots=True)
class Target:
    upstream: Upstream
    remote: str  # the repository's name on the upstream
    # Where the cache keeps it here: the requested name, or for an unprefixed name the upstream's
    # prefix added, so a cached repository is never taken for a local one.
    local: str


class Routing:
    def __init__(self, config: ProxyConfig) -> None:
        self.whole_registry = bool(config.remoteurl)
        if self.whole_registry:
            single = UpstreamConfig(
                remoteurl=config.remoteurl,
                username=config.username,
                password=config.password,
                ttl=config.ttl,
                timeout=config.timeout,
                default=True,
            )
            self.upstreams = [Upstream(single, "proxy")]
        else:
            self.upstreams = [Upstream(u, f"proxy.upstreams[{i}]") for i, u in enumerate(config.upstreams)]
        prefixes = [u.prefix for u in self.upstreams]
        for i, upstream in enumerate(self.upstreams):
            if not self.whole_registry and not upstream.prefix:
                raise ConfigError(f"proxy.upstreams[{i}].prefix: every upstream needs a name prefix")
            if prefixes.count(upstream.prefix) > 1:
                raise ConfigError(f"proxy.upstreams[{i}].prefix: {upstream.prefix!r} is used twice")
        defaults = [u for u in self.upstreams if u.default]
        if len(defaults) > 1:
            raise ConfigError("proxy.upstreams: at most one upstream may be the default")
        self.default = defaults[0] if defaults else None

    def prefixed(self, name: str) -> Target | None:
        """The upstream a name belongs to by its prefix alone (or by being in a whole-registry mirror)."""
        if self.whole_registry:
            upstream = self.upstreams[0]
            return Target(upstream, upstream.remote_name(name), name)
        for upstream in self.upstreams:
            if name.startswith(upstream.prefix + "/"):
                rest = name[len(upstream.prefix) + 1 :]
                return Target(upstream, upstream.remote_name(rest), name)
        return None

    def unprefixed(self, name: str, ns: str | None) -> Target | None:
        """The upstream for a name with no prefix: the one `?ns=` names, else the default."""
        if ns:
            for upstream in self.upstreams:
                if upstream.answers_ns(ns):
                    return Target(upstream, upstream.remote_name(name), f"{upstream.prefix}/{name}")
        if self.default is not None:
            return Target(self.default, self.default.remote_name(name), f"{self.default.prefix}/{name}")
        return None

    def refuses_push(self, name: str) -> bool:
        return self.whole_registry or self.prefixed(name) is not None

    async def aclose(self) -> None:
        for upstream in self.upstreams:
            await upstream.aclose()
