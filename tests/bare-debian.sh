#!/usr/bin/env bash
# `make test` as a newcomer runs it: in a fresh Debian 12 chroot holding only python3, python3-venv,
# git, make and curl, on an overlayfs root (as in a container), as root or (--user) as a plain user.
# Every optional tool is missing there, so each such test must skip, naming its Debian package.
# Needs root and debootstrap; CI does not run it.
#
#   tests/bare-debian.sh [--user] [--ci] [--keep] [PYTEST_ARGS...]
#
# --user runs it as a plain user; --ci runs .ci/run instead (installs every tool from Debian's
# packages, then DOCKYARD_E2E=required make test: nothing may skip); --keep keeps the chroot.
#
# The chroot's base is built once and kept in $DOCKYARD_CACHE_DIR (default /var/cache/dockyard-ci);
# each run starts from a pristine copy of it (an overlayfs over the base) with the working tree's
# files (tracked and untracked, not ignored) in /src. pip inside uses this machine's pip
# configuration (index, find-links, CA bundle), so the chroot installs what the host can.
set -euo pipefail

as_user=0 keep=0 ci=0
while [ $# -gt 0 ]; do
    case "$1" in
        --user) as_user=1; shift ;;
        --ci) ci=1; shift ;;
        --keep) keep=1; shift ;;
        *) break ;;
    esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${DOCKYARD_CACHE_DIR:-/var/cache/dockyard-ci}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=$cache/bookworm-bare

[ "$(id -u)" = 0 ] || { echo "bare-debian.sh: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "bare-debian.sh: apt-get install debootstrap" >&2; exit 1; }

if [ ! -x "$base/usr/bin/make" ]; then
    rm -rf "$base.tmp"
    mkdir -p "$cache"
    debootstrap --variant=minbase bookworm "$base.tmp" "$mirror"
    cp /etc/resolv.conf "$base.tmp/etc/resolv.conf"
    chroot "$base.tmp" apt-get update -q
    DEBIAN_FRONTEND=noninteractive chroot "$base.tmp" apt-get install -y -q python3 python3-venv git make curl
    chroot "$base.tmp" apt-get clean
    mv "$base.tmp" "$base"
fi

work=$(mktemp -d /tmp/bare-debian.XXXXXX)
root=$work/root
mkdir -p "$work/upper" "$work/work" "$root"
cleanup() {
    for m in $(awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/self/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    if [ "$keep" = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

mount -t overlay overlay -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# This machine's pip set-up, so that pip in the chroot reaches the same packages.
pip_env=()
for f in /etc/pip.conf /etc/xdg/pip /root/.config/pip; do
    if [ -e "$f" ]; then mkdir -p "$root$(dirname "$f")"; cp -a "$f" "$root$f"; fi
done
for d in $(env | sed -n 's/^PIP_[A-Z_]*=//p' | tr ' ' '\n'; pip config list 2>/dev/null | sed -n "s/^[^=]*='\(.*\)'$/\1/p" | tr ' ' '\n'); do
    d=${d#file://}
    d=${d%/simple}   # a local index: its pages link to files beside simple/
    case "$d" in
        /*) if [ -e "$d" ] && [ ! -e "$root$d" ]; then
                if [ -d "$d" ]; then mkdir -p "$root$d"; mount --bind -o ro "$d" "$root$d"
                else mkdir -p "$root$(dirname "$d")"; cp "$d" "$root$d"; fi
            fi ;;
    esac
done
while IFS= read -r line; do pip_env+=("$line"); done < <(env | grep '^PIP_' | grep -v '^PIP_CERT=' || true)
# The CA bundle pip trusts here (which may hold a proxy's CA), without replacing the chroot's own.
cert=${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}
if [ -n "$cert" ] && [ -f "$cert" ]; then
    mkdir -p "$root/etc/bare-debian"; cp "$cert" "$root/etc/bare-debian/pip-ca.crt"
    pip_env+=(PIP_CERT=/etc/bare-debian/pip-ca.crt)
fi

mkdir -p "$root/src"
git -C "$repo" ls-files -z --cached --others --exclude-standard \
    | (cd "$repo" && tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$root/src"

# Into the machine as a container runtime would enter it: a mount namespace of its own and pivot_root,
# not a bare chroot (in which runc, and so `docker exec`, cannot set a container's working directory).
enter() {
    unshare --mount --propagation private -- sh -c '
        cd "$1" && shift && mkdir -p .host && pivot_root . .host &&
            exec chroot . sh -c "umount -l /.host && rmdir /.host && exec \"\$@\"" sh "$@"' sh "$root" "$@"
}

run=(make test)
[ "$ci" = 1 ] && run=(.ci/run)
if [ $# -gt 0 ]; then run=(env "PYTEST_ARGS=$*" "${run[@]}"); fi
env_args=(env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "${pip_env[@]}")
if [ "$as_user" = 1 ]; then
    chroot "$root" useradd -m newcomer
    # pip's configuration files above are root's; the user gets them through the environment too.
    [ -d "$root/root/.config/pip" ] && mkdir -p "$root/home/newcomer/.config" && cp -a "$root/root/.config/pip" "$root/home/newcomer/.config/"
    chroot "$root" chown -R newcomer: /src /home/newcomer
    env_args[2]=HOME=/home/newcomer
    enter "${env_args[@]}" setpriv --reuid=newcomer --regid=newcomer --init-groups \
        sh -c 'cd /src && "$@"' sh "${run[@]}"
else
    enter "${env_args[@]}" sh -c 'cd /src && "$@"' sh "${run[@]}"
fi
