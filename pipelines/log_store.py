"""Serving's logs in object storage: shipped by the host that wrote them, read by monitoring wherever it runs.

Layout under GIGMATCH_LOG_STORE (s3://bucket[/prefix]): `predictions/predictions-YYYYMMDD.<host>.jsonl`,
`outcomes/outcomes-YYYYMMDD.<host>.jsonl` and the shadow challenger's `shadow/predictions-YYYYMMDD.<host>.jsonl`,
one object per host and day. A day's file is shipped
once the day is over (UTC) and never rewritten: an object that exists is skipped, so shipping is
idempotent and a reader mirrors each key once. `include_today` ships the day's file as it stands,
for a host that is stopping (a container's exit): later lines of that day from the same host would
not be shipped again, so do not use it on a host that keeps serving.

The mirror keeps the object's name, which still matches the log's glob (`predictions-*.jsonl`), so
the monitoring flow reads a mirror exactly as it reads a server's own log directory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gigmatch.monitoring.outcome_log import OUTCOME_LOG_GLOB
from gigmatch.monitoring.prediction_log import LOG_GLOB
from pipelines.preflight import ServiceError, check_bucket

_DAY = re.compile(r"^(?P<kind>predictions|outcomes)-(?P<day>\d{8})\.jsonl$")


@dataclass(frozen=True)
class LogKind:
    name: str  # the folder under the store
    prefix: str  # the daily files' prefix: "predictions" (served answers and the shadow's) or "outcomes"
    glob: str


PREDICTIONS = LogKind("predictions", "predictions", LOG_GLOB)
OUTCOMES = LogKind("outcomes", "outcomes", OUTCOME_LOG_GLOB)
SHADOW = LogKind("shadow", "predictions", LOG_GLOB)  # the challenger's rankings, in the prediction log's format


def host_name() -> str:
    """This host's name as it goes into an object's name (letters, digits, dashes)."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()).strip("-") or "host"


def ship(log_dir: Path, kind: LogKind, store: str, host: str, include_today: bool = False) -> list[str]:
    """Upload each finished daily file of `log_dir` that the store does not have yet; the keys shipped."""
    check_bucket(store)
    client, bucket, prefix = _client(store)
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    shipped = []
    for path in sorted(Path(log_dir).glob(kind.glob)):
        match = _DAY.match(path.name)
        if match is None or (match["day"] >= today and not include_today):
            continue
        key = f"{prefix}{kind.name}/{kind.prefix}-{match['day']}.{host}.jsonl"
        if _exists(client, bucket, key):
            continue
        with _errors(store):
            client.upload_file(str(path), bucket, key)
        shipped.append(key)
    return shipped


def mirror(store: str, kind: LogKind, into: Path) -> list[Path]:
    """Download each shipped object of `kind` not yet in `into` (written atomically); the new files."""
    check_bucket(store)
    client, bucket, prefix = _client(store)
    into.mkdir(parents=True, exist_ok=True)
    fetched = []
    with _errors(store):
        paginator = client.get_paginator("list_objects_v2")
        keys = [
            entry["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}{kind.name}/")
            for entry in page.get("Contents", [])
        ]
    for key in keys:
        target = into / key.rsplit("/", 1)[-1]
        if target.exists():
            continue  # shipped objects are never rewritten
        with tempfile.NamedTemporaryFile(dir=into, prefix=f".{target.name}.", delete=False) as part:
            try:
                with _errors(store):
                    client.download_fileobj(bucket, key, part)
            except BaseException:
                os.unlink(part.name)
                raise
        os.replace(part.name, target)
        fetched.append(target)
    return fetched


def _client(store: str) -> tuple[Any, str, str]:
    import boto3
    from botocore.config import Config

    parsed = urlparse(store)
    prefix = parsed.path.strip("/")
    config = Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3})
    return boto3.client("s3", config=config), parsed.netloc, f"{prefix}/" if prefix else ""


def _exists(client: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return False
        raise ServiceError(f"S3 refused to tell whether {key} exists in {bucket}: {exc}") from exc


@contextmanager
def _errors(store: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise ServiceError(f"the log store {store} (GIGMATCH_LOG_STORE, AWS_ENDPOINT_URL) failed: {exc}") from exc
