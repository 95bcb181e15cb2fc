"""Each backend's typed options: the keys of its `storage.<driver>` section.

They live apart from the backends so that reading a config never imports boto3; each backend's
`from_config` takes its own class. `registry/config.py` composes them into the `storage` section.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FilesystemOptions:
    rootdirectory: str = "./data"
    maxthreads: int = 100


@dataclass(frozen=True)
class S3Options:
    bucket: str = ""
    region: str = "us-east-1"
    regionendpoint: str = ""
    forcepathstyle: bool = False
    accesskey: str = ""
    secretkey: str = ""
    sessiontoken: str = ""
    rootdirectory: str = ""
    encrypt: bool = False
    keyid: str = ""
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    storageclass: str = "STANDARD"
    chunksize: int = 10 * 1024 * 1024
    multipartcopychunksize: int = 32 * 1024 * 1024
    multipartcopymaxconcurrency: int = 100
    multipartcopythresholdsize: int = 32 * 1024 * 1024
    objectacl: str = "private"
    useragent: str = ""
    usedualstack: bool = False
    accelerate: bool = False
    loglevel: str = "off"
    # Dockyard: seconds a presigned redirect URL stays valid; retries on throttling/timeouts.
    redirectexpiry: int = 1200
    maxretries: int = 5


@dataclass(frozen=True)
class MemoryOptions:
    pass


__all__ = ["FilesystemOptions", "MemoryOptions", "S3Options"]
