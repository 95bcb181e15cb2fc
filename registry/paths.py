"""Every storage key the registry writes, in CNCF distribution's layout so that a `registry:2`
data directory is served unchanged::

    docker/registry/v2/
    ├── blobs/<alg>/<hex[:2]>/<hex>/data                                  the bytes, stored once
    └── repositories/<name>/
        ├── _layers/<alg>/<hex>/link                                      "<alg>:<hex>": repo may read blob
        ├── _manifests/revisions/<alg>/<hex>/link                         manifest held by the repo
        ├── _manifests/tags/<tag>/current/link                            tag -> manifest digest
        ├── _manifests/tags/<tag>/index/<alg>/<hex>/link                  every digest the tag has had
        ├── _uploads/<id>/data                                            upload bytes so far
        ├── _uploads/<id>/startedat                                       RFC 3339 start time
        ├── _uploads/<id>/hashstates/<alg>/<offset>                       (distribution's; not written)
        ├── _uploads/<id>/_dockyard_digests/<alg>/<offset>                digest of the first <offset> bytes (ours)
        └── _dockyard/referrers/<alg>/<hex>/<alg>/<hex>/link              subject -> referrer (ours)

    dockyard/gc/doomed/<alg>/<hex>                                        GC is deleting this digest (ours)
    dockyard/gc/last-run                                                  when GC last ran, what it freed (ours)
"""

from __future__ import annotations

from oci.digest import Digest

ROOT = "docker/registry/v2"
REPOSITORIES = f"{ROOT}/repositories"
BLOBS = f"{ROOT}/blobs"


def blob_data(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}/data"


def blob_dir(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_layers/{digest.algorithm}/{digest.encoded}/link"


def layers(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_layers"


def manifest_revision_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{digest.algorithm}/{digest.encoded}/link"


def manifest_revisions(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions"


def manifest_revision_dir(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{digest.algorithm}/{digest.encoded}"


def tags(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}"


def tag_current_link(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/current/link"


def tag_index_link(name: str, tag: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/index/{digest.algorithm}/{digest.encoded}/link"


def uploads(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}"


def upload_data(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/data"


def upload_digest(name: str, upload_id: str, algorithm: str, offset: int) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/_dockyard_digests/{algorithm}/{offset}"


def upload_started(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/startedat"


# Outside distribution's tree: a `registry:2` reading the same storage never sees these.
GC_DOOMED = "dockyard/gc/doomed"


def gc_doomed(digest: Digest) -> str:
    return f"{GC_DOOMED}/{digest.algorithm}/{digest.encoded}"


def gc_last_run() -> str:
    return "dockyard/gc/last-run"


def referrers(name: str, subject: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_dockyard/referrers/{subject.algorithm}/{subject.encoded}"


def referrer_link(name: str, subject: Digest, referrer: Digest) -> str:
    return f"{referrers(name, subject)}/{referrer.algorithm}/{referrer.encoded}/link"
