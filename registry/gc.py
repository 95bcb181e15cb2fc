"""Garbage collection: delete what no manifest reaches, while the registry keeps serving.

Mark: in every repository, the roots are the tagged manifests (with `delete_untagged`) or every
stored manifest revision (without it), plus any revision younger than the grace period. From the
roots, reachability follows index → child manifests, manifest → config and layers, and
manifest → referrers (manifests whose `subject` is it). Each reachable manifest and everything it
references is marked, globally, since blobs are shared between repositories.

Online safety has two parts. The grace period spares blobs (and links, and with
`delete_untagged` revisions) younger than `gc.graceperiod`: a push in flight has uploaded its
layers but not yet its manifest. And a push that re-uses old, unreferenced content while the run
deletes it is settled by a handshake with `Store.put_manifest`: GC writes a "pending" mark for
each digest of a batch, then re-lists every repository (new manifests, links and tag moves are
marked, and so kept), then deletes and turns the mark to "done" (or drops it for what it kept).
The store writes the manifest's revision, then looks for marks on anything the manifest needs: a
pending mark, or a done mark on something now missing, withdraws the manifest. Each side writes
before it reads, so at least one sees the other: either GC keeps the blob, or the push fails with
MANIFEST_BLOB_UNKNOWN and the client uploads again. No tag ever names a manifest with a hole.

Sweep order:
1. (`delete_untagged`) unreachable revisions, through the same handshake;
2. unmarked blobs in small batches, through the handshake;
3. dangling repository links and referrer-index entries, and upload sessions past their age.

Everything goes through the `StorageBackend` interface, so filesystem and S3 behave alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from oci.digest import Digest, InvalidDigest
from oci.manifests import ManifestError, parse_manifest
from registry import paths
from registry.cmdline import add_config_arguments, load_or_exit, setup_logging
from registry.config import Config, parse_duration
from registry.gc_record import LastRun, record_run
from registry.links import listed_digests
from registry.policies.config import PoliciesConfig, QuotasConfig
from registry.policies.pulls import last_pulled, pulled_key
from registry.policies.quota import Usage, compute_usage
from registry.policies.retention import TagTimes, spare_referrer_tags, tags_to_remove
from registry.proxy.evict import evict
from registry.store import GC_DONE, GC_DOOMED_TTL, GC_PENDING, Store
from storage_backends import BackendError, PathNotFound, StorageBackend, open_backend

log = logging.getLogger("dockyard.gc")

# A manifest we cannot parse (schema 1 from an old registry:2, say) keeps every digest it mentions.
_ANY_DIGEST = re.compile(rb"\b(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\b")
_LEASE_KEY = "dockyard/gc/lease"
# Far longer than a manifest PUT takes from its reference check to its look at the marks.
_DONE_LINGER = 60.0


@dataclass(frozen=True)
class GCOptions:
    dry_run: bool = False
    delete_untagged: bool = False
    grace_period: float = 3600.0  # seconds
    upload_age: float = 7 * 24 * 3600.0  # seconds
    # Small batches keep the time between a batch's re-check and its deletes short.
    batch_size: int = 20
    # Retention rules (registry/policies): tags they do not keep are removed before the mark.
    policies: PoliciesConfig = field(default_factory=PoliciesConfig)
    # Quotas whose usage is recomputed (and recorded) after the sweep.
    quotas: QuotasConfig = field(default_factory=QuotasConfig)


@dataclass
class GCReport:
    dry_run: bool = False
    repositories: int = 0
    manifests_marked: int = 0
    blobs_marked: int = 0
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size, deleted (or would be)
    manifests: list[str] = field(default_factory=list)  # "repo@digest" revisions removed
    tags: list[str] = field(default_factory=list)  # "repo:tag" removed by retention rules
    quotas: list[Usage] = field(default_factory=list)  # usage recomputed after the sweep
    layer_links: int = 0
    referrer_links: int = 0
    uploads: int = 0
    spared_young: int = 0
    seconds: float = 0.0

    @property
    def freed_bytes(self) -> int:
        return sum(self.blobs.values())

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {len(self.tags)} tag(s), "
            f"{len(self.blobs)} blob(s) ({_human(self.freed_bytes)}), {len(self.manifests)} manifest(s), "
            f"{self.layer_links} layer link(s), {self.referrer_links} referrer link(s), {self.uploads} upload(s); "
            f"kept {self.blobs_marked} reachable blob(s) in {self.repositories} repositories, "
            f"spared {self.spared_young} young blob(s); {self.seconds:.1f}s"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "repositories": self.repositories,
            "manifests_marked": self.manifests_marked,
            "blobs_marked": self.blobs_marked,
            "blobs_deleted": len(self.blobs),
            "bytes_freed": self.freed_bytes,
            "manifests_deleted": self.manifests,
            "tags_deleted": self.tags,
            "layer_links_deleted": self.layer_links,
            "referrer_links_deleted": self.referrer_links,
            "uploads_deleted": self.uploads,
            "spared_young": self.spared_young,
            "seconds": round(self.seconds, 3),
            "blobs": self.blobs,
        }


@dataclass(frozen=True)
class _Refs:
    blobs: frozenset[Digest]
    children: tuple[Digest, ...]
    subject: Digest | None


@dataclass
class _Repo:
    name: str
    revisions: set[Digest] = field(default_factory=set)
    layers: set[Digest] = field(default_factory=set)
    tags: dict[str, Digest] = field(default_factory=dict)
    refs: dict[Digest, _Refs] = field(default_factory=dict)
    referrers: dict[Digest, set[Digest]] = field(default_factory=dict)  # subject -> referrers
    reachable: set[Digest] = field(default_factory=set)


class Collector:
    def __init__(self, backend: StorageBackend, options: GCOptions, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.options = options
        self.clock = clock
        self.report = GCReport(dry_run=options.dry_run)
        self._repos: dict[str, _Repo] = {}
        self._marked: set[Digest] = set()
        self._owner = f"{socket.gethostname()}-{os.getpid()}-{id(self)}".encode()

    # -- helpers ---------------------------------------------------------------------------

    def _young(self, modified: float) -> bool:
        return modified > self.clock() - self.options.grace_period

    async def _key_young(self, key: str) -> bool:
        try:
            return self._young((await self.backend.stat(key)).modified)
        except PathNotFound:
            return False

    async def _digests(self, prefix: str) -> set[Digest]:
        return await listed_digests(self.backend, prefix)

    async def _read_link(self, key: str) -> Digest | None:
        try:
            return Digest.parse((await self.backend.get(key)).decode().strip())
        except (PathNotFound, InvalidDigest, UnicodeDecodeError):
            return None

    async def _tags(self, name: str) -> dict[str, Digest]:
        tags: dict[str, Digest] = {}
        for tag in await self.backend.list(paths.tags(name)):
            digest = await self._read_link(paths.tag_current_link(name, tag))
            if digest is not None:
                tags[tag] = digest
        return tags

    async def _refs(self, repo: _Repo, digest: Digest) -> _Refs:
        known = repo.refs.get(digest)
        if known is not None:
            return known
        try:
            body = await self.backend.get(paths.blob_data(digest))
        except PathNotFound:
            refs = _Refs(frozenset(), (), None)
        else:
            refs = _parse_refs(body)
        repo.refs[digest] = refs
        if refs.subject is not None:
            repo.referrers.setdefault(refs.subject, set()).add(digest)
        return refs

    # -- mark ------------------------------------------------------------------------------

    async def _load(self, name: str) -> _Repo:
        repo = _Repo(name)
        repo.revisions = await self._digests(paths.manifest_revisions(name))
        repo.layers = await self._digests(paths.layers(name))
        repo.tags = await self._tags(name)
        # Every revision is parsed: subjects are learnt from the manifests themselves, so marking
        # does not depend on the referrer index being complete.
        for digest in sorted(repo.revisions, key=str):
            await self._refs(repo, digest)
        return repo

    async def _mark_from(self, repo: _Repo, roots: set[Digest]) -> None:
        stack = list(roots)
        while stack:
            digest = stack.pop()
            if digest in repo.reachable:
                continue
            repo.reachable.add(digest)
            self._marked.add(digest)
            refs = await self._refs(repo, digest)
            self._marked.update(refs.blobs)
            stack.extend(refs.children)
            stack.extend(repo.referrers.get(digest, ()))

    def _untagged_age(self, name: str) -> float | None:
        """How old an untagged manifest of this repository must be to go; None: it stays."""
        policy = self.options.policies.policy_for(name)
        if policy is not None and policy.retention is not None and policy.retention.untaggedolderthan:
            return max(policy.retention.untaggedolderthan, self.options.grace_period)
        return self.options.grace_period if self.options.delete_untagged else None

    async def _roots(self, repo: _Repo) -> set[Digest]:
        roots = set(repo.tags.values())
        age = self._untagged_age(repo.name)
        if age is None:
            return roots | repo.revisions
        for digest in repo.revisions - roots:
            with contextlib.suppress(PathNotFound):
                modified = (await self.backend.stat(paths.manifest_revision_link(repo.name, digest))).modified
                if modified > self.clock() - age:
                    roots.add(digest)  # pushed by digest moments ago: an index's children come first
        return roots

    async def _retain(self, repo: _Repo) -> None:
        """Remove the tags the repository's retention rules do not keep (only report them in a dry run)."""
        policy = self.options.policies.policy_for(repo.name)
        if policy is None or policy.retention is None or not policy.retention.has_tag_rules or not repo.tags:
            return
        times: dict[str, TagTimes] = {}
        for tag in repo.tags:
            with contextlib.suppress(PathNotFound):
                pushed = (await self.backend.stat(paths.tag_current_link(repo.name, tag))).modified
                pulled = await last_pulled(self.backend, repo.name, tag) if policy.retention.keepwithin else 0.0
                times[tag] = TagTimes(pushed, pulled)
        removed = tags_to_remove(repo.name, policy.retention, times, self.clock(), self.options.policies)
        if removed:
            removed = spare_referrer_tags(removed, await self._kept_manifests(repo, set(repo.tags) - set(removed)))
        for tag in removed:
            if not self.options.dry_run:
                if await self._retagged(repo, tag, times[tag].pushed):
                    continue  # pushed again while this run looked: it is new now
                await self.backend.delete(paths.tag_dir(repo.name, tag))
                await self.backend.delete(pulled_key(repo.name, tag))
            self.report.tags.append(f"{repo.name}:{tag}")
            del repo.tags[tag]

    async def _retagged(self, repo: _Repo, tag: str, pushed: float) -> bool:
        link = paths.tag_current_link(repo.name, tag)
        try:
            modified = (await self.backend.stat(link)).modified
        except PathNotFound:
            return True
        return modified != pushed or await self._read_link(link) != repo.tags[tag]

    async def _kept_manifests(self, repo: _Repo, tags: set[str]) -> set[str]:
        """The manifests the given tags reach (an index's children too), as digest strings."""
        seen: set[Digest] = set()
        stack = [repo.tags[t] for t in tags]
        while stack:
            digest = stack.pop()
            if digest not in seen:
                seen.add(digest)
                stack.extend((await self._refs(repo, digest)).children)
        return {str(d) for d in seen}

    async def mark(self) -> None:
        for name in await Store(self.backend).repositories():
            repo = await self._load(name)
            self._repos[name] = repo
            await self._retain(repo)
            await self._mark_from(repo, await self._roots(repo))
        self.report.repositories = len(self._repos)

    async def recheck(self) -> None:
        """Mark what pushes added since the mark: new repositories, revisions, links and tags."""
        for name in await Store(self.backend).repositories():
            repo = self._repos.get(name)
            if repo is None:
                repo = self._repos[name] = _Repo(name)
            revisions = await self._digests(paths.manifest_revisions(name))
            new_revisions = revisions - repo.revisions
            repo.revisions |= revisions
            layers = await self._digests(paths.layers(name))
            self._marked.update(layers - repo.layers)
            repo.layers |= layers
            roots = set(new_revisions)
            for tag, digest in (await self._tags(name)).items():
                if repo.tags.get(tag) != digest:
                    repo.tags[tag] = digest
                    roots.add(digest)
            for digest in new_revisions:
                await self._refs(repo, digest)
            await self._mark_from(repo, roots)

    # -- sweep -----------------------------------------------------------------------------

    async def _doom(self, digests: list[Digest]) -> None:
        for digest in digests:
            await self.backend.put(paths.gc_doomed(digest), GC_PENDING + b" " + self._owner)

    async def _settle(self, digests: list[Digest], deleted: set[Digest]) -> None:
        """Drop the marks of what was kept; turn the others to "done", which a manifest PUT that
        passed its reference check before the delete still sees (and so withdraws)."""
        for digest in digests:
            if digest in deleted:
                await self.backend.put(paths.gc_doomed(digest), GC_DONE + b" " + self._owner)
            else:
                await self.backend.delete(paths.gc_doomed(digest))

    async def _sweep_manifests(self) -> None:
        doomed = {name: sorted(repo.revisions - repo.reachable, key=str) for name, repo in self._repos.items()}
        everything = [d for digests in doomed.values() for d in digests]
        if not everything:
            return
        if self.options.dry_run:
            self.report.manifests.extend(f"{name}@{d}" for name, digests in doomed.items() for d in digests)
            return
        # Mark first, then look again: a push that lands before this look is seen here, one that
        # lands after it sees the mark and withdraws (Store.put_manifest).
        await self._doom(everything)
        deleted: set[Digest] = set()
        try:
            await self.recheck()
            for name, digests in doomed.items():
                repo = self._repos[name]
                for digest in digests:
                    if digest in repo.reachable:
                        continue
                    if await self._key_young(paths.manifest_revision_link(name, digest)):
                        await self._mark_from(repo, {digest})
                        continue
                    await self._delete_revision(repo, digest)
                    deleted.add(digest)
                    self.report.manifests.append(f"{name}@{digest}")
        finally:
            await self._settle(everything, deleted)

    async def _delete_revision(self, repo: _Repo, digest: Digest) -> None:
        name = repo.name
        refs = await self._refs(repo, digest)
        if refs.subject is not None:
            await self.backend.delete(paths.referrer_link(name, refs.subject, digest))
        for tag in await self.backend.list(paths.tags(name)):
            await self.backend.delete(paths.tag_index_link(name, tag, digest))
        await self.backend.delete(paths.manifest_revision_link(name, digest))
        # Forgotten, so that a push of the same manifest later in this run counts as new.
        repo.revisions.discard(digest)

    async def _all_blobs(self) -> list[Digest]:
        found: list[Digest] = []
        for algorithm in await self.backend.list(paths.BLOBS):
            for shard in await self.backend.list(f"{paths.BLOBS}/{algorithm}"):
                for encoded in await self.backend.list(f"{paths.BLOBS}/{algorithm}/{shard}"):
                    with contextlib.suppress(InvalidDigest):
                        found.append(Digest.parse(f"{algorithm}:{encoded}"))
        return found

    async def _recently_linked(self, digest: Digest) -> bool:
        for repo in self._repos.values():
            if digest in repo.layers and await self._key_young(paths.layer_link(repo.name, digest)):
                return True
        return False

    async def _sweep_blobs(self, all_blobs: list[Digest]) -> None:
        candidates: list[tuple[Digest, int]] = []
        for digest in all_blobs:
            if digest in self._marked:
                continue
            try:
                info = await self.backend.stat(paths.blob_data(digest))
            except PathNotFound:
                continue  # a directory without data: an interrupted commit, nothing to free
            if self._young(info.modified) or await self._recently_linked(digest):
                self.report.spared_young += 1
                continue
            candidates.append((digest, info.size))
        for start in range(0, len(candidates), self.options.batch_size):
            batch = [
                (d, size) for d, size in candidates[start : start + self.options.batch_size] if d not in self._marked
            ]
            if self.options.dry_run:
                self.report.blobs.update((str(d), size) for d, size in batch)
                continue
            digests = [d for d, _ in batch]
            await self._doom(digests)
            deleted: set[Digest] = set()
            try:
                await self.recheck()
                for digest, size in batch:
                    if digest in self._marked:
                        continue
                    await self.backend.delete(paths.blob_data(digest))
                    deleted.add(digest)
                    self.report.blobs[str(digest)] = size
                    for repo in self._repos.values():
                        if digest in repo.layers:
                            await self.backend.delete(paths.layer_link(repo.name, digest))
                            repo.layers.discard(digest)
                            self.report.layer_links += 1
            finally:
                await self._settle(digests, deleted)

    async def _sweep_links(self, existing: set[Digest]) -> None:
        """Repository links to blobs that no longer exist, and referrer entries without a manifest."""
        for repo in self._repos.values():
            for digest in sorted(repo.layers - existing - self._marked, key=str):
                link = paths.layer_link(repo.name, digest)
                if await self._key_young(link):
                    continue
                self.report.layer_links += 1
                if not self.options.dry_run:
                    await self.backend.delete(link)
            prefix = f"{paths.repository(repo.name)}/_dockyard/referrers"
            for subject in await self._digests(prefix):
                for referrer in await self._digests(f"{prefix}/{subject.algorithm}/{subject.encoded}"):
                    try:
                        await self.backend.stat(paths.manifest_revision_link(repo.name, referrer))
                        continue
                    except PathNotFound:
                        pass
                    self.report.referrer_links += 1
                    if not self.options.dry_run:
                        await self.backend.delete(paths.referrer_link(repo.name, subject, referrer))

    async def _sweep_uploads(self) -> None:
        cutoff = self.clock() - self.options.upload_age
        for name in self._repos:
            for upload_id in await self.backend.list(paths.uploads(name)):
                try:
                    modified = (await self.backend.stat(paths.upload_started(name, upload_id))).modified
                except PathNotFound:
                    try:
                        modified = (await self.backend.stat(paths.upload_data(name, upload_id))).modified
                    except PathNotFound:
                        continue  # being created right now
                if modified >= cutoff:
                    continue
                self.report.uploads += 1
                if not self.options.dry_run:
                    try:
                        await self.backend.delete(paths.upload_dir(name, upload_id))
                    except BackendError as exc:  # a client wrote to it meanwhile: not abandoned after all
                        log.info("gc: kept upload %s/%s: %s", name, upload_id, exc)
                        self.report.uploads -= 1

    async def _clear_stale_marks(self) -> None:
        """Marks of earlier runs: "done" ones once no PUT can still be between its reference check
        and its look at the marks, and any left by a run that died."""
        if self.options.dry_run:
            return
        for digest in await self._digests(paths.GC_DOOMED):
            with contextlib.suppress(PathNotFound):
                age = time.time() - (await self.backend.stat(paths.gc_doomed(digest))).modified
                if age > GC_DOOMED_TTL or (
                    age > _DONE_LINGER and (await self.backend.get(paths.gc_doomed(digest))).startswith(GC_DONE)
                ):
                    await self.backend.delete(paths.gc_doomed(digest))

    async def run(self) -> GCReport:
        started = time.monotonic()
        await self.mark()
        await self._clear_stale_marks()
        if any(self._untagged_age(name) is not None for name in self._repos):
            await self._sweep_manifests()
        all_blobs = await self._all_blobs()
        await self._sweep_blobs(all_blobs)
        await self._sweep_links(set(all_blobs) - {Digest.parse(d) for d in self.report.blobs})
        await self._sweep_uploads()
        await self._clear_stale_marks()
        self.report.manifests_marked = sum(len(r.reachable) for r in self._repos.values())
        self.report.blobs_marked = len(self._marked)
        if not self.options.dry_run:
            self.report.quotas = [await compute_usage(self.backend, limit) for limit in self.options.quotas.limits]
        self.report.seconds = time.monotonic() - started
        return self.report


def _parse_refs(body: bytes) -> _Refs:
    try:
        parsed = parse_manifest(body, None)
    except ManifestError:
        found = frozenset(Digest.parse(m.decode()) for m in _ANY_DIGEST.findall(body))
        return _Refs(found, (), None)
    return _Refs(frozenset(d.digest for d in parsed.blobs), tuple(d.digest for d in parsed.children), parsed.subject)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def options_from_config(config: Config, dry_run: bool = False, delete_untagged: bool | None = None) -> GCOptions:
    return GCOptions(
        dry_run=dry_run,
        delete_untagged=config.gc.deleteuntagged if delete_untagged is None else delete_untagged,
        grace_period=config.gc.graceperiod,
        upload_age=config.storage.maintenance.uploadpurging.age,
        policies=config.policies,
        quotas=config.quotas,
    )


async def collect(backend: StorageBackend, options: GCOptions) -> GCReport:
    """Run one collection, record it in storage for the UI, and return what it freed (or would,
    with `dry_run`)."""
    report = await Collector(backend, options).run()
    run = LastRun(time.time(), report.dry_run, len(report.blobs), report.freed_bytes, len(report.manifests))
    await record_run(backend, run)
    return report


async def evict_cache(backend: StorageBackend, config: Config, dry_run: bool = False) -> list[str]:
    """The pull-through cache's `maxsize`: its least recently pulled repositories go first, so the
    collection that follows frees their blobs."""
    if config.proxy is None:
        return []
    return await evict(backend, config, await Store(backend).repositories(), dry_run)


# -- inside the server -------------------------------------------------------------------


async def _take_lease(backend: StorageBackend, owner: str, seconds: float) -> bool:
    """Best effort: one runner per interval among replicas and workers. Two runners at once are
    still safe (each re-checks before deleting); the lease only saves the duplicate work."""
    now = time.time()
    try:
        lease = orjson.loads(await backend.get(_LEASE_KEY))
        if lease.get("owner") != owner and float(lease.get("until", 0)) > now:
            return False
    except (PathNotFound, orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        pass
    await backend.put(_LEASE_KEY, orjson.dumps({"owner": owner, "until": now + seconds}))
    await asyncio.sleep(1.0)  # let a racing writer's put land, then see who won
    try:
        return bool(orjson.loads(await backend.get(_LEASE_KEY)).get("owner") == owner)
    except (PathNotFound, orjson.JSONDecodeError, AttributeError):
        return False


async def gc_loop(backend: StorageBackend, config: Config, on_report: Callable[[GCReport | None], None]) -> None:
    """`gc.interval` in the server: collect every interval; `on_report(None)` after a failure."""
    interval = config.gc.interval
    owner = f"{socket.gethostname()}-{os.getpid()}"
    while True:
        await asyncio.sleep(interval)
        try:
            if not await _take_lease(backend, owner, interval * 0.9):
                continue
            await evict_cache(backend, config)
            report = await collect(backend, options_from_config(config))
        except Exception:
            log.exception("scheduled garbage collection failed")
            on_report(None)
            continue
        log.info("garbage collection: %s", report.summary())
        on_report(report)


# -- command line ------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "gc", help="delete blobs and manifests no tag reaches", description=__doc__.split("\n\n")[0]
    )
    add_config_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")
    parser.add_argument(
        "--delete-untagged",
        action="store_true",
        default=None,
        help="also delete manifests no tag reaches (never an index's children, nor referrers of a kept manifest)",
    )
    parser.add_argument("--grace-period", metavar="DURATION", help="spare anything younger (default gc.graceperiod)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every blob and manifest deleted")
    parser.set_defaults(func=gc_command)


def gc_command(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if config is None:
        return 2
    setup_logging(config)
    options = options_from_config(config, dry_run=args.dry_run, delete_untagged=args.delete_untagged)
    if args.grace_period is not None:
        try:
            grace = parse_duration(args.grace_period)
        except ValueError as exc:
            print(f"dockyard gc: --grace-period: {exc}", file=sys.stderr)
            return 2
        options = GCOptions(
            dry_run=options.dry_run,
            delete_untagged=options.delete_untagged,
            grace_period=grace,
            upload_age=options.upload_age,
            policies=options.policies,
            quotas=options.quotas,
        )

    async def run() -> tuple[list[str], GCReport]:
        backend = open_backend(config.storage.driver, config.storage.driver_options)
        try:
            return await evict_cache(backend, config, options.dry_run), await collect(backend, options)
        finally:
            await backend.close()

    evicted, report = asyncio.run(run())
    if args.json:
        print(orjson.dumps(report.as_dict() | {"evicted": evicted}, option=orjson.OPT_INDENT_2).decode())
        return 0
    for name in evicted:
        print(f"{'would evict' if options.dry_run else 'evicted'} cached repository {name}")
    if args.verbose or args.dry_run:
        verb = "would delete" if report.dry_run else "deleted"
        for tag in report.tags:
            print(f"{verb} tag {tag}")
        for manifest in report.manifests:
            print(f"{verb} manifest {manifest}")
        for digest, size in sorted(report.blobs.items()):
            print(f"{verb} blob {digest} ({_human(size)})")
    print(f"dockyard gc: {report.summary()}")
    return 0
