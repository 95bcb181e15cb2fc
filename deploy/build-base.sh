#!/bin/sh
# Build the base image that deploy/Dockerfile starts FROM, without pulling anything from a
# container registry.
#
# Why debootstrap: the machines that build Dockyard reach Debian's package mirror but no
# container registry, so `FROM python:3.11-slim` cannot be pulled. A minimal Debian bookworm
# made by debootstrap from the same signed packages the host installs (checked against
# debian-archive-keyring) is reproducible, carries security updates, and has the same
# Python 3.11 that the project is tested with. Copying the host's own Python into a scratch
# image would be smaller but would bake in whatever happens to be on the build machine.
#
# The result is cached as a tarball keyed by this script's contents, so a CI run on a machine
# that built it before only needs `docker import` (seconds) instead of debootstrap (minutes).
#
# Usage: deploy/build-base.sh [IMAGE]   (default dockyard-base:bookworm; needs root and a
# reachable Docker engine, DOCKER_HOST is honoured)
set -eu

IMAGE=${1:-dockyard-base:bookworm}
SUITE=bookworm
MIRROR=${DOCKYARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DOCKYARD_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE_DIR=${DOCKYARD_CACHE_DIR:-/var/cache/dockyard-ci}
# python3-venv brings ensurepip for the build stage; ca-certificates for TLS to S3 endpoints;
# tini reaps zombies and forwards SIGTERM as PID 1.
PACKAGES=python3,python3-venv,ca-certificates,tini

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "build-base: $IMAGE already present"
    exit 0
fi

key=$(cat "$0" | sha256sum | cut -c1-16)
tarball="$CACHE_DIR/dockyard-base-$SUITE-$key.tar.gz"

if [ ! -s "$tarball" ]; then
    mkdir -p "$CACHE_DIR"
    rootfs=$(mktemp -d /tmp/dockyard-base.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    echo "build-base: debootstrap $SUITE from $MIRROR into $rootfs"
    debootstrap --variant=minbase --include="$PACKAGES" --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
        "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || { tail -50 "$rootfs.log"; exit 1; }
    rm -f "$rootfs.log"

    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
    # Security updates published after the point release debootstrap installed.
    cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
    chroot "$rootfs" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -qq -y upgrade' >/dev/null

    # An image needs no package caches, docs or man pages; keep the copyright files.
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
        "$rootfs"/usr/share/doc/*/changelog* "$rootfs"/tmp/* "$rootfs"/root/.cache
    : >"$rootfs/etc/resolv.conf"
    tar --numeric-owner -C "$rootfs" -czf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
fi

echo "build-base: importing $tarball as $IMAGE"
docker import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/sh"]' \
    "$tarball" "$IMAGE" >/dev/null
echo "build-base: $IMAGE ready"
