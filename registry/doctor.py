"""`dockyard doctor`: checks a registry's config and, if it runs, the registry itself, and says what
is wrong and how to fix it. Each check is one function returning findings; nothing is changed
except a small probe key written to (and removed from) storage."""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import ipaddress
import shutil
import socket
import ssl
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from registry.cmdline import add_config_arguments, load_or_exit
from registry.config import Config
from storage_backends import StorageError, open_backend

if TYPE_CHECKING:
    from cryptography import x509

Level = Literal["ok", "warn", "fail"]

# Past this much skew, tokens issued by one side look expired or not yet valid to the other.
CLOCK_SKEW_WARN = 5.0
CERT_EXPIRY_WARN_DAYS = 21
FREE_DISK_WARN_FRACTION = 0.10
FREE_DISK_WARN_BYTES = 5 * 1024**3
_PROBE_PREFIX = "dockyard/doctor"


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    message: str
    fix: str = ""


@dataclass(frozen=True)
class Thresholds:
    clock_skew: float = CLOCK_SKEW_WARN
    cert_expiry_days: int = CERT_EXPIRY_WARN_DAYS
    free_fraction: float = FREE_DISK_WARN_FRACTION
    free_bytes: int = FREE_DISK_WARN_BYTES


def default_url(config: Config) -> str:
    host, port = config.host_port
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.http.tls.certificate else "http"
    return f"{scheme}://{host}:{port}"


# -- storage -----------------------------------------------------------------------------


async def check_storage(config: Config) -> list[Finding]:
    driver = config.storage.driver
    try:
        backend = open_backend(driver, config.storage.driver_options)
    except Exception as exc:
        return [Finding("fail", "storage", f"cannot open the {driver} backend: {exc}", "check storage.* in the config")]
    key = f"{_PROBE_PREFIX}/{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    try:
        token = uuid.uuid4().bytes
        await backend.put(key, token)
        if await backend.get(key) != token:
            return [Finding("fail", "storage", "storage returned other bytes than were written", _storage_fix(config))]
        await backend.delete(key)
    except (StorageError, OSError) as exc:
        return [Finding("fail", "storage", f"{driver} storage is not writable: {exc}", _storage_fix(config))]
    finally:
        await backend.close()
    return [Finding("ok", "storage", f"{driver} storage is readable and writable")]


def _storage_fix(config: Config) -> str:
    if config.storage.driver == "filesystem":
        root = config.storage.filesystem_root
        return f"create {root} and give it to the user the registry runs as (chown -R dockyard: {root})"
    if config.storage.driver == "s3":
        return "check that the bucket exists, the endpoint answers, and the keys may put, get and delete objects"
    return "check storage.* in the config"


def check_disk(config: Config, limits: Thresholds) -> list[Finding]:
    if config.storage.driver != "filesystem":
        return []
    root = Path(config.storage.filesystem_root)
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free = usage.free / usage.total if usage.total else 0.0
    text = f"{_gib(usage.free)} free of {_gib(usage.total)} ({free:.0%}) at {root}"
    if usage.free < limits.free_bytes or free < limits.free_fraction:
        return [
            Finding(
                "warn",
                "disk",
                text,
                "run `dockyard gc --delete-untagged` (after deleting what you no longer need), or grow the volume",
            )
        ]
    return [Finding("ok", "disk", text)]


def _gib(size: float) -> str:
    return f"{size / 1024**3:.1f} GiB"


# -- the running registry ------------------------------------------------------------------


async def check_registry(url: str, config: Config, limits: Thresholds, verify: bool | str = True) -> list[Finding]:
    import httpx  # imported here: only `doctor` talks HTTP, and httpx is slow to load

    findings: list[Finding] = []
    api = config.http.prefix.rstrip("/") + "/v2/"  # where http.prefix puts the API
    try:
        async with httpx.AsyncClient(base_url=url, verify=verify, timeout=10) as client:
            started = time.time()
            response = await client.get(api)
            finished = time.time()
            ready = await client.get("/readyz")
    except httpx.ConnectError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return [
                Finding(
                    "fail",
                    "tls",
                    f"{url}: the certificate is not trusted here: {exc}",
                    "install the CA that signed it (Docker: /etc/docker/certs.d/HOST:PORT/ca.crt; "
                    "system: /usr/local/share/ca-certificates + update-ca-certificates)",
                )
            ]
        return [Finding("fail", "reachable", f"{url}: {exc}", "is `dockyard serve` running and listening there?")]
    except httpx.HTTPError as exc:
        return [Finding("fail", "reachable", f"{url}: {exc}", "is `dockyard serve` running and listening there?")]
    if response.status_code not in (200, 401):
        findings.append(
            Finding(
                "fail", "api", f"GET {url}{api} answered {response.status_code}", "is this a registry? check the URL"
            )
        )
    elif response.headers.get("docker-distribution-api-version") != "registry/2.0":
        findings.append(
            Finding(
                "warn",
                "api",
                "the registry's answer lacks Docker-Distribution-Api-Version: registry/2.0",
                "a proxy in front may strip headers; Docker needs this one",
            )
        )
    else:
        findings.append(Finding("ok", "api", f"{url}{api} answers {response.status_code}"))
    if ready.status_code == 200:
        findings.append(Finding("ok", "ready", "/readyz: storage reachable from the server"))
    else:
        detail = ready.text.strip()[:300]
        findings.append(
            Finding("fail", "ready", f"/readyz answered {ready.status_code}: {detail}", "see the storage finding")
        )
    findings += check_clock(response.headers.get("date"), (started + finished) / 2, config, limits)
    return findings


def check_clock(date_header: str | None, local: float, config: Config, limits: Thresholds) -> list[Finding]:
    if not date_header:
        return [Finding("warn", "clock", "the registry sent no Date header; cannot compare clocks")]
    try:
        remote = email.utils.parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return [Finding("warn", "clock", f"unreadable Date header {date_header!r}")]
    skew = remote - local
    leeway = config.auth.token.leeway if config.auth.token is not None else limits.clock_skew
    text = f"the registry's clock is {abs(skew):.0f}s {'ahead of' if skew > 0 else 'behind'} this machine's"
    # The Date header has one-second resolution; anything within two seconds is agreement.
    if abs(skew) <= max(2.0, min(leeway, limits.clock_skew)):
        return [Finding("ok", "clock", text)]
    fix = "run an NTP client on both machines (systemd-timesyncd, chrony)"
    if abs(skew) > leeway:
        return [Finding("fail", "clock", f"{text}: bearer tokens will be rejected as expired or not yet valid", fix)]
    return [Finding("warn", "clock", text, fix)]


# -- TLS -----------------------------------------------------------------------------------


def check_certificate_file(config: Config, url: str, limits: Thresholds) -> list[Finding]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    tls = config.http.tls
    if not tls.certificate:
        return []
    try:
        pem = Path(tls.certificate).read_bytes()
        chain = x509.load_pem_x509_certificates(pem)
    except (OSError, ValueError) as exc:
        return [Finding("fail", "tls", f"cannot read http.tls.certificate {tls.certificate}: {exc}", "")]
    findings = check_certificate(chain[0], _hosts_to_serve(config, url), limits, source=tls.certificate)
    try:
        key = serialization.load_pem_private_key(Path(tls.key).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        findings.append(Finding("fail", "tls", f"cannot read http.tls.key {tls.key}: {exc}", ""))
        return findings
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != chain[0].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        findings.append(
            Finding(
                "fail", "tls", "http.tls.key does not belong to http.tls.certificate", "configure the matching pair"
            )
        )
    return findings


def _hosts_to_serve(config: Config, url: str) -> list[str]:
    hosts = []
    if config.http.host:
        hosts.append(urlsplit(config.http.host).hostname or "")
    hosts.append(urlsplit(url).hostname or "")
    return sorted({h for h in hosts if h})


def check_certificate(cert: x509.Certificate, hosts: list[str], limits: Thresholds, source: str) -> list[Finding]:
    findings: list[Finding] = []
    now = datetime.now(UTC)
    days_left = (cert.not_valid_after_utc - now).total_seconds() / 86400
    renew = "renew it (`dockyard tls selfsigned` for a private CA, or your ACME client)"
    if cert.not_valid_before_utc > now:
        findings.append(
            Finding("fail", "tls", f"{source} is not valid before {cert.not_valid_before_utc:%Y-%m-%d}", "")
        )
    if days_left < 0:
        findings.append(Finding("fail", "tls", f"{source} expired on {cert.not_valid_after_utc:%Y-%m-%d}", renew))
    elif days_left < limits.cert_expiry_days:
        findings.append(Finding("warn", "tls", f"{source} expires in {days_left:.0f} days", renew))
    else:
        findings.append(Finding("ok", "tls", f"{source} valid until {cert.not_valid_after_utc:%Y-%m-%d}"))
    names = _certificate_names(cert)
    for host in hosts:
        if not any(_matches(pattern, host) for pattern in names):
            findings.append(
                Finding(
                    "fail",
                    "tls",
                    f"{source} is not valid for {host} (it names {', '.join(names) or 'no hosts'})",
                    f"issue a certificate with {host} in its subjectAltName (`dockyard tls selfsigned --host {host}`)",
                )
            )
    return findings


def _certificate_names(cert: x509.Certificate) -> list[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def _matches(pattern: str, host: str) -> bool:
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(pattern)
    except ValueError:
        pass
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        return "." in host and host.split(".", 1)[1] == pattern[2:]
    return pattern == host


def check_served_certificate(url: str, limits: Thresholds) -> list[Finding]:
    from cryptography import x509

    """The certificate the server actually presents (it may differ from the config's file)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return []
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # read whatever is served; trust is judged by check_registry
    try:
        with (
            socket.create_connection((parts.hostname, parts.port or 443), timeout=10) as sock,
            context.wrap_socket(sock, server_hostname=parts.hostname) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError as exc:
        return [Finding("fail", "tls", f"TLS handshake with {parts.netloc} failed: {exc}", "")]
    if der is None:
        return [Finding("fail", "tls", f"{parts.netloc} presented no certificate", "")]
    return check_certificate(
        x509.load_der_x509_certificate(der), [parts.hostname], limits, f"{parts.netloc}'s certificate"
    )


# -- config --------------------------------------------------------------------------------


def check_config(config: Config) -> list[Finding]:
    findings: list[Finding] = []
    if not config.storage.delete.enabled:
        findings.append(
            Finding(
                "warn",
                "config",
                "storage.delete.enabled is false: nothing can be deleted, so GC frees only abandoned uploads",
                "set storage.delete.enabled: true if images are ever removed",
            )
        )
    if config.gc.graceperiod < 600:
        findings.append(
            Finding(
                "warn",
                "config",
                f"gc.graceperiod is {config.gc.graceperiod}: a slow push may lose its layers before its manifest lands",
                "use at least 10m (1h is the default)",
            )
        )
    host, _ = config.host_port
    if config.metrics.enabled and not config.metrics.token and not _loopback(host):
        findings.append(
            Finding(
                "warn",
                "config",
                f"{config.metrics.path} is open to anyone who reaches {config.http.addr}",
                "set metrics.token (scrapers send it as a bearer token), or keep the port private",
            )
        )
    if config.auth.mode == "none" and not _loopback(host):
        findings.append(
            Finding(
                "warn",
                "config",
                f"no authentication and listening on {config.http.addr}: anyone who reaches it may push and delete",
                "configure auth.htpasswd (`dockyard user add`) or auth.tokenserver",
            )
        )
    if not findings:
        findings.append(Finding("ok", "config", "no risky settings found"))
    return findings


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


# -- running it all ------------------------------------------------------------------------


async def diagnose(
    config: Config, url: str | None = None, limits: Thresholds | None = None, verify: bool | str = True
) -> list[Finding]:
    limits = limits or Thresholds()
    target = url or default_url(config)
    findings = check_config(config)
    findings += await check_storage(config)
    findings += check_disk(config, limits)
    findings += check_certificate_file(config, target, limits)
    findings += await asyncio.to_thread(check_served_certificate, target, limits)
    findings += await check_registry(target, config, limits, verify)
    return findings


_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def render(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{_MARK[finding.level]} {finding.check:<9} {finding.message}")
        if finding.fix and finding.level != "ok":
            lines.append(f"{'':14} fix: {finding.fix}")
    problems = sum(f.level == "fail" for f in findings)
    warnings = sum(f.level == "warn" for f in findings)
    lines.append(f"{problems} problem(s), {warnings} warning(s)")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("doctor", help="check the config and a running registry; print fixes")
    add_config_arguments(parser)
    parser.add_argument("--url", help="the registry to check (default: from http.addr and http.tls)")
    parser.add_argument("--ca", metavar="FILE", help="trust this CA when checking an https registry")
    parser.set_defaults(func=doctor_command)


def doctor_command(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if config is None:
        print("FAIL config    the config does not load (see above)")
        return 1
    findings = asyncio.run(diagnose(config, args.url, verify=args.ca or True))
    print(render(findings))
    sys.stdout.flush()
    return 1 if any(f.level == "fail" for f in findings) else 0
