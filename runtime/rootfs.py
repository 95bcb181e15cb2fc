"""The container's filesystem: the overlay of its layers, then /proc, /dev, /sys, binds and masks.

`plan_mounts()` is pure: it turns a spec into an ordered list of steps, relative to the new root.
`mount_rootfs()`, `apply_mounts()` and `pivot_root()` perform them inside the container's own
mount namespace, so every mount vanishes with the namespace and nothing leaks onto the host."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runtime import syscalls
from runtime.spec import ContainerSpec, ProcessSpec
from runtime.syscalls import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT

__all__ = [
    "INIT_BINARY",
    "INIT_TARGET",
    "MASKED_PATHS",
    "READONLY_PATHS",
    "Step",
    "apply_mounts",
    "escape_overlay_path",
    "host_devices",
    "init_process",
    "mount_rootfs",
    "overlay_options",
    "pivot_root",
    "plan_mounts",
    "readonly_root",
    "resolve_in_root",
    "tmpfs_step",
]

# Docker's defaults (moby oci/defaults.go): paths hidden behind /dev/null or an empty read-only
# tmpfs, and /proc entries that stay visible but read-only.
MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# --init: Debian's static tini, bind-mounted read-only where Docker puts its docker-init (also tini).
INIT_BINARY = "/usr/bin/tini-static"
INIT_TARGET = "/sbin/docker-init"

_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
_DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
)
_SAFE = MS_NOSUID | MS_NODEV | MS_NOEXEC


@dataclass(frozen=True)
class Step:
    """One filesystem operation; `target` is a path inside the container."""

    op: Literal["mount", "bind", "mknod", "symlink", "mask", "readonly"]
    target: str
    source: str = ""
    fstype: str = ""
    flags: int = 0
    data: str = ""
    readonly: bool = False
    is_file: bool = False
    device: tuple[int, int] = (0, 0)
    block: bool = False  # mknod: a block device rather than a character device
    mode: int = 0o666  # mknod: the node's permissions
    owner: tuple[int, int] = (0, 0)  # mknod: uid, gid
    copy_up: bool = False  # an empty named volume first receives what the image has at its target


def plan_mounts(
    spec: ContainerSpec, files: dict[str, str] | None = None, cgroups: dict[str, str] | None = None
) -> list[Step]:
    """The ordered steps that turn a mounted root into the container's filesystem. `files` maps
    container paths (/etc/hostname, ...) to host files bind-mounted over them; `cgroups` maps
    each hierarchy's name under /sys/fs/cgroup ("" on a v2-only host) to the container's own
    cgroup directory, shown there read-only as Docker does."""
    privileged = spec.security.privileged
    steps = [
        Step("mount", "/proc", "proc", "proc", _SAFE),
        Step("mount", "/dev", "tmpfs", "tmpfs", MS_NOSUID, "mode=755,size=65536k"),
    ]
    steps += [Step("mknod", f"/dev/{name}", device=(major, minor)) for name, major, minor in _DEVICES]
    if privileged:
        # Docker gives a privileged container every device node of the host.
        minimal = {f"/dev/{name}" for name, _, _ in _DEVICES} | {f"/dev/{name}" for name, _ in _DEV_LINKS}
        steps += [s for s in host_devices() if s.target not in minimal]
    steps += [Step("symlink", f"/dev/{name}", target_of) for name, target_of in _DEV_LINKS]
    steps += [
        Step("mount", "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"),
        Step("mount", "/dev/shm", "shm", "tmpfs", _SAFE, "mode=1777,size=65536k"),
        Step("mount", "/dev/mqueue", "mqueue", "mqueue", _SAFE),
        Step("mount", "/sys", "sysfs", "sysfs", _SAFE | (0 if privileged else MS_RDONLY)),
    ]
    steps += _cgroup_steps(cgroups or {}, readonly=not privileged)
    binds = [Step("bind", path, host, is_file=True) for path, host in (files or {}).items()]
    binds += [
        Step(
            "bind",
            m.target,
            m.source,
            readonly=m.readonly,
            is_file=os.path.isfile(m.source),
            copy_up=m.kind == "volume",
        )
        for m in spec.mounts
    ]
    binds += [tmpfs_step(t.target, t.options) for t in spec.tmpfs]
    if spec.init:
        binds.append(Step("bind", INIT_TARGET, INIT_BINARY, readonly=True, is_file=True))
    # Shallow targets first, so that a bind under another bind (a volume on /etc, then /etc/hostname)
    # lands on top of it, as the OCI runtime spec orders mounts.
    steps += sorted(binds, key=lambda b: (len(Path(b.target).parts), b.target))
    if not privileged:
        steps += [Step("mask", p) for p in MASKED_PATHS]
        steps += [Step("readonly", p) for p in READONLY_PATHS]
    return steps


def _cgroup_steps(cgroups: dict[str, str], readonly: bool) -> list[Step]:
    if not cgroups:
        return []
    if "" in cgroups:  # v2 only: the container's cgroup is the root of the tree it sees
        return [Step("bind", "/sys/fs/cgroup", cgroups[""], readonly=readonly)]
    # v1: a tmpfs holding one directory per hierarchy, each the container's own cgroup there.
    steps = [Step("mount", "/sys/fs/cgroup", "tmpfs", "tmpfs", _SAFE, "mode=755")]
    steps += [Step("bind", f"/sys/fs/cgroup/{name}", path, readonly=readonly) for name, path in sorted(cgroups.items())]
    if readonly:
        flags = syscalls.MS_REMOUNT | MS_RDONLY | _SAFE
        steps.append(Step("mount", "/sys/fs/cgroup", "tmpfs", "tmpfs", flags, "mode=755"))
    return steps


def host_devices(dev: Path = Path("/dev")) -> list[Step]:
    """mknod steps for the host's device nodes, for --privileged (pts, shm and mqueue are the
    container's own)."""
    steps = []
    for path in sorted(dev.rglob("*")):
        relative = path.relative_to(dev)
        if relative.parts[0] in ("pts", "shm", "mqueue", "console"):
            continue
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            continue
        steps.append(
            Step(
                "mknod",
                f"/dev/{relative}",
                device=(os.major(st.st_rdev), os.minor(st.st_rdev)),
                block=stat.S_ISBLK(st.st_mode),
                mode=stat.S_IMODE(st.st_mode),
                owner=(st.st_uid, st.st_gid),
            )
        )
    return steps


# mount(8) flag words a --tmpfs option list may carry; everything else is tmpfs data (size=, mode=).
_FLAG_WORDS = {
    "ro": (MS_RDONLY, True),
    "rw": (MS_RDONLY, False),
    "nosuid": (MS_NOSUID, True),
    "suid": (MS_NOSUID, False),
    "nodev": (MS_NODEV, True),
    "dev": (MS_NODEV, False),
    "noexec": (MS_NOEXEC, True),
    "exec": (MS_NOEXEC, False),
}


def tmpfs_step(target: str, options: str) -> Step:
    """--tmpfs PATH[:OPTIONS]: Docker's defaults are nosuid, nodev and noexec; `exec` etc. lift them."""
    flags = _SAFE
    data = []
    for option in filter(None, options.split(",")):
        if option in _FLAG_WORDS:
            flag, on = _FLAG_WORDS[option]
            flags = flags | flag if on else flags & ~flag
        else:
            data.append(option)
    return Step("mount", target, "tmpfs", "tmpfs", flags, ",".join(data))


def init_process(spec: ContainerSpec) -> ProcessSpec:
    """The process to exec as PID 1: with --init, tini running the command (`docker-init -- CMD`)."""
    if not spec.init:
        return spec.process
    return dataclasses.replace(spec.process, args=(INIT_TARGET, "--", *spec.process.args))


def escape_overlay_path(path: str) -> str:
    # overlayfs splits its options at "," and lowerdir at ":"; a backslash escapes both
    # (Documentation/filesystems/overlayfs.rst, "Multiple lower layers").
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def overlay_options(lower: list[str], upper: str, work: str) -> str:
    """lowerdir lists the top layer first, the reverse of the image's bottom-to-top order."""
    lowerdir = ":".join(escape_overlay_path(p) for p in reversed(lower))
    return f"lowerdir={lowerdir},upperdir={escape_overlay_path(upper)},workdir={escape_overlay_path(work)}"


# mount(2) copies at most one page of option data.
_PAGE = os.sysconf("SC_PAGE_SIZE")


def mount_rootfs(layers: list[str], upper: Path, work: Path, target: Path, flags: int = 0) -> None:
    """Mount the overlay of `layers` (bottom to top) with the private `upper` at `target`."""
    options = overlay_options(layers, str(upper), str(work))
    if len(options) >= _PAGE:
        # Too long for one page: name the directories relative to their common parent, as
        # Docker's overlay2 driver does with its short "l/" links.
        base = os.path.commonpath([*layers, str(upper), str(work)])
        os.chdir(base)
        options = overlay_options(
            [os.path.relpath(p, base) for p in layers], os.path.relpath(upper, base), os.path.relpath(work, base)
        )
    syscalls.mount("overlay", target, "overlay", flags, options)


def resolve_in_root(root: Path, path: str) -> Path:
    """`path` resolved under `root` without following symlinks out of it (a bind target given as
    /etc/x where the image links /etc to / must not land on the host)."""
    current = root
    for part in Path(path).parts[1:]:
        candidate = current / part
        hops = 0
        while candidate.is_symlink() and hops < 40:
            link = os.readlink(candidate)
            candidate = (
                resolve_in_root(root, link)
                if link.startswith("/")
                else resolve_in_root(root, os.path.join("/", os.path.relpath(current, root), link))
            )
            hops += 1
        current = candidate
    resolved = Path(os.path.normpath(current))
    if resolved != root and root not in resolved.parents:
        return root
    return resolved


def _ensure(target: Path, is_file: bool) -> None:
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_file:
        target.touch()
    else:
        target.mkdir()


def apply_mounts(root: Path, steps: list[Step]) -> None:
    for step in steps:
        target = resolve_in_root(root, step.target)
        if step.op == "mount":
            _ensure(target, False)
            syscalls.mount(step.source, target, step.fstype, step.flags, step.data or None)
        elif step.op == "mknod":
            target.parent.mkdir(parents=True, exist_ok=True)
            kind = stat.S_IFBLK if step.block else stat.S_IFCHR
            os.mknod(target, step.mode | kind, os.makedev(*step.device))
            os.chmod(target, step.mode)  # mknod honours the umask
            if step.owner != (0, 0):
                os.chown(target, *step.owner)
        elif step.op == "symlink":
            os.symlink(step.source, target)
        elif step.op == "bind":
            if step.copy_up:
                _copy_up(target, Path(step.source))
            _ensure(target, step.is_file)
            syscalls.mount(step.source, target, None, MS_BIND | MS_REC)
            if step.readonly:
                _remount_readonly(target)
        elif step.op == "mask":
            _mask(root, target)
        elif step.op == "readonly" and target.exists():
            syscalls.mount(target, target, None, MS_BIND | MS_REC)
            _remount_readonly(target)


def _copy_up(image_dir: Path, volume: Path) -> None:
    """Docker fills a new, empty volume with the image's content at the mount point, owners and
    modes included, so `-v data:/etc/app` starts from the image's configuration."""
    if not image_dir.is_dir() or image_dir.is_symlink() or any(volume.iterdir()):
        return
    shutil.copytree(image_dir, volume, symlinks=True, dirs_exist_ok=True)
    for path in [volume, *volume.rglob("*")]:
        source = image_dir / path.relative_to(volume)
        st = os.lstat(source)
        os.lchown(path, st.st_uid, st.st_gid)
        if not path.is_symlink():
            os.chmod(path, stat.S_IMODE(st.st_mode))


def _remount_readonly(target: Path) -> None:
    # A bind mount is created with its source's flags; MS_RDONLY only takes effect on a second,
    # remounting call (mount(2), "Creating a bind mount"). Keep nosuid/nodev/noexec as they were.
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY
    st = os.statvfs(target)
    for flag, mount_flag in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC)):
        if st.f_flag & flag:
            flags |= mount_flag
    syscalls.mount(None, target, None, flags)


def _mask(root: Path, target: Path) -> None:
    if not os.path.lexists(target):
        return
    if target.is_dir():
        syscalls.mount("tmpfs", target, "tmpfs", MS_RDONLY, "size=0")
    else:
        syscalls.mount(root / "dev/null", target, None, MS_BIND)


def pivot_root(new_root: Path) -> None:
    """Make `new_root` the root. pivot_root(".", ".") stacks the old root on top of the new one,
    so it can be unmounted at once without a put_old directory (pivot_root(2), NOTES; runc's pivotRoot)."""
    os.chdir(new_root)
    syscalls.pivot_root(".", ".")
    # The old root must not propagate our unmount back to the host (it is shared on most systems).
    syscalls.mount(None, ".", None, MS_REC | syscalls.MS_SLAVE)
    syscalls.umount2(".", syscalls.MNT_DETACH)
    os.chdir("/")


def readonly_root() -> None:
    _remount_readonly(Path("/"))  # keeping nodev when the root has it
