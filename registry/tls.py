"""The server's TLS context from `http.tls`: certificate, client CAs (mutual TLS), the lowest
protocol version and the TLS 1.2 cipher suites, by distribution's (Go's) names.

uvicorn builds the context itself in each worker process through `uvicorn_context`, a module
function over the (picklable) TLS config, so every worker enforces the same settings.
"""

from __future__ import annotations

import ssl
from typing import Any

from registry.config import TLSConfig
from typedconfig import ConfigError

# Go's names (crypto/tls, which distribution takes `ciphersuites` from) to OpenSSL's.
TLS12_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
# TLS 1.3's suites: accepted as Go accepts them, though neither lets them be chosen.
TLS13_SUITES = frozenset({"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"})
VERSIONS = {"tls1.2": ssl.TLSVersion.TLSv1_2, "tls1.3": ssl.TLSVersion.TLSv1_3}


def cipher_string(names: list[str]) -> str:
    """The OpenSSL cipher list for `http.tls.ciphersuites`; empty: OpenSSL's defaults."""
    chosen = []
    for i, name in enumerate(names):
        if name in TLS13_SUITES:
            continue
        if name not in TLS12_SUITES:
            raise ConfigError(f"http.tls.ciphersuites[{i}]: unknown cipher suite {name!r}")
        chosen.append(TLS12_SUITES[name])
    if names and not chosen:
        # Only TLS 1.3 suites named: TLS 1.2 has nothing left to offer.
        return ""
    return ":".join(chosen)


def server_context(tls: TLSConfig) -> ssl.SSLContext:
    """Raises `ConfigError` naming the key whose file or value cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = VERSIONS[tls.minimumtls]
    names = [n for n in tls.ciphersuites if n not in TLS13_SUITES]
    if tls.ciphersuites and not names and tls.minimumtls == "tls1.2":
        # Only TLS 1.3 suites were named, which cannot be chosen: serve TLS 1.3 alone.
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    elif names:
        try:
            context.set_ciphers(cipher_string(tls.ciphersuites))
        except ssl.SSLError:
            raise ConfigError("http.tls.ciphersuites: OpenSSL here offers none of these suites") from None
    try:
        context.load_cert_chain(tls.certificate, tls.key or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"http.tls.certificate/key: cannot load {tls.certificate}: {exc}") from None
    if tls.clientcas:
        for i, path in enumerate(tls.clientcas):
            try:
                context.load_verify_locations(cafile=path)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"http.tls.clientcas[{i}]: cannot load {path}: {exc}") from None
        # As distribution: a client without a certificate one of these CAs signed is refused
        # during the handshake, before any request is read.
        context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    return context


def uvicorn_context(tls: TLSConfig, config: Any, default: Any) -> ssl.SSLContext:
    """uvicorn's `ssl_context_factory` (bound to `tls` with functools.partial)."""
    return server_context(tls)
