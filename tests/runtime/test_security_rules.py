"""Pure parts of the security settings, no root needed: Docker's capability arithmetic, the
--security-opt grammar, the JSON profile reader and the per-container resolution of a profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.seccomp import filter_for
from runtime.seccomp.bpf import compile_profile
from runtime.seccomp.default import DEFAULT_PROFILE
from runtime.seccomp.profile import ProfileError, parse_docker_json, resolve
from runtime.security import DEFAULT_CAPS, Security, SecurityError, parse_security_opts, tweak_capabilities
from runtime.spec import ContainerSpec, ProcessSpec


def test_tweak_capabilities_follows_docker() -> None:
    assert tweak_capabilities([], [], False) == DEFAULT_CAPS
    assert tweak_capabilities(["net_admin"], ["CHOWN", "cap_kill"], False) == (
        *(c for c in DEFAULT_CAPS if c not in ("CAP_CHOWN", "CAP_KILL")),
        "CAP_NET_ADMIN",
    )
    assert tweak_capabilities(["NET_RAW"], ["ALL"], False) == ("CAP_NET_RAW",)
    everything = tweak_capabilities(["all"], ["SYS_ADMIN"], False)
    assert "CAP_SYS_ADMIN" not in everything and "CAP_SYS_MODULE" in everything
    assert "CAP_SYS_ADMIN" in tweak_capabilities([], ["ALL"], True)  # --privileged wins
    with pytest.raises(SecurityError, match='unknown capability: "CAP_NOPE"'):
        tweak_capabilities(["nope"], [], False)


def test_security_opts(tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    assert parse_security_opts(["no-new-privileges"]) == {"no_new_privileges": True}
    assert parse_security_opts(["no-new-privileges:false"]) == {"no_new_privileges": False}
    assert parse_security_opts(["seccomp=unconfined"]) == {"seccomp": "unconfined"}
    assert parse_security_opts([f"seccomp={profile}"]) == {"seccomp": profile.read_text()}
    for bad in ("apparmor=unconfined", "label=disable", "no-new-privileges=maybe", "seccomp"):
        with pytest.raises(SecurityError, match="invalid --security-opt"):
            parse_security_opts([bad])


def test_spec_round_trip_keeps_security() -> None:
    spec = ContainerSpec(
        id="a" * 64,
        name="c",
        image="i",
        image_id="",
        layers=(),
        process=ProcessSpec(("sh",)),
        hostname="h",
        security=Security(caps=("CAP_KILL",), privileged=False, no_new_privileges=True, seccomp="unconfined"),
    )
    assert ContainerSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    # A config.json written before these settings existed reads as Docker's defaults.
    old = spec.to_dict()
    del old["security"]
    assert ContainerSpec.from_dict(old).security == Security()


def _names(profile_text: str, caps: tuple[str, ...], machine: str = "x86_64", release: str = "6.1.0") -> set[str]:
    profile = parse_docker_json(profile_text)
    assert profile is not None
    return {n for rule in resolve(profile, caps, machine, release).rules for n in rule.names}


def test_includes_and_excludes() -> None:
    text = json.dumps(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["c"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
                {"names": ["d"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
                {"names": ["e"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
                {"name": "f", "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "6.0"}},
            ],
        }
    )
    assert _names(text, DEFAULT_CAPS) == {"b", "e"}
    assert _names(text, ("CAP_SYS_ADMIN",)) == {"a", "e"}
    assert _names(text, (), machine="aarch64") == {"b", "c", "d", "e"}
    assert _names(text, (), release="4.19.0") == {"b", "f"}


def test_arch_map_picks_the_machines_entry() -> None:
    text = json.dumps(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            ],
        }
    )
    profile = parse_docker_json(text)
    assert profile is not None
    assert resolve(profile, (), "x86_64").architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    assert resolve(profile, (), "aarch64").architectures == ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("[", "Decoding seccomp profile failed"),
        ('{"defaultAction": "SCMP_ACT_NOTIFY"}', "seccomp agent"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x"}', "listenerPath"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap": [{}]}', "archMap"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"]}]}', "'name' and 'names'"),
        (
            '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", '
            '"args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}',
            "unknown operator",
        ),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}', "flags"),
    ],
)
def test_profile_errors(profile: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_docker_json(profile)


def test_empty_profile_means_no_filter() -> None:
    assert parse_docker_json("{}") is None
    assert filter_for("{}", DEFAULT_CAPS) is None
    assert filter_for("unconfined", DEFAULT_CAPS) is None


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_default_profile_compiles_within_the_kernels_limit(machine: str) -> None:
    program = compile_profile(resolve(DEFAULT_PROFILE, DEFAULT_CAPS, machine, "6.1.0"))
    assert 300 < len(program) < 4096
    # Every instruction is a valid struct sock_filter: 8 bytes, jumps within the program.
    for pc, (code, jt, jf, k) in enumerate(program.instructions):
        if code & 0x07 == 0x05:
            targets = [pc + 1 + k] if code == 0x05 else [pc + 1 + jt, pc + 1 + jf]
            assert all(t < len(program) for t in targets)
        else:
            assert 0 <= k < 2**32
    assert len(program.pack()) == 8 * len(program)
