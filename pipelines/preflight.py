"""Are the team's servers there, and do they accept us: asked before a command starts its work.

A sick server otherwise shows up as a hang (MLflow's client retries for minutes; its /health stays
green while its database is down) or as a library's error that names neither the server nor the
setting to fix. Each check takes seconds at most and names both.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from urllib.parse import urlparse

from gigmatch.errors import GigmatchError

TIMEOUT = 10.0  # seconds per question to a server


class ServiceError(GigmatchError):
    """A server of the team stack cannot be reached, refuses our credentials, or fails inside."""


def check_mlflow(tracking_uri: str, timeout: float = TIMEOUT) -> None:
    """The tracking server answers, and can read its backend store (a query, not just /health)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return  # a local store: nothing to reach
    where = f"the MLflow server at {tracking_uri} (MLFLOW_TRACKING_URI)"
    _get(f"{tracking_uri.rstrip('/')}/health", where, timeout)
    _post(
        f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/experiments/search",
        {"max_results": 1},
        f"{where}: its backend store (the server's --backend-store-uri: is its database up?)",
        timeout,
    )


def check_mlflow_artifacts(tracking_uri: str, timeout: float = TIMEOUT) -> None:
    """The server's proxied artifact store answers (it holds the S3 credentials, not us)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    _get(
        f"{tracking_uri.rstrip('/')}/api/2.0/mlflow-artifacts/artifacts?path=",
        f"the MLflow server at {tracking_uri} (MLFLOW_TRACKING_URI): its artifact store (the server's "
        "--artifacts-destination and its S3 keys: MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID on the server)",
        timeout,
    )


def check_prefect(api_url: str | None, timeout: float = TIMEOUT) -> None:
    """The Prefect API answers, and can read its database."""
    if not api_url:
        return  # an ephemeral server per process
    where = f"the Prefect server at {api_url} (PREFECT_API_URL)"
    _get(f"{api_url.rstrip('/')}/health", where, timeout)
    _post(f"{api_url.rstrip('/')}/flows/filter", {"limit": 1}, f"{where}: its database", timeout)


def check_bucket(url: str, timeout: float = TIMEOUT) -> None:
    """The S3 bucket of `url` (s3://bucket/...) exists and accepts our keys."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = urlparse(url).netloc
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "the AWS default endpoint")
    where = f"S3 at {endpoint} (AWS_ENDPOINT_URL), bucket {bucket!r} of {url}"
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1})
    try:
        boto3.client("s3", config=config).head_bucket(Bucket=bucket)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise ServiceError(f"{where}: no such bucket") from exc
        raise ServiceError(
            f"{where} refused the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (HTTP {status}): {exc}"
        ) from exc
    except BotoCoreError as exc:
        raise ServiceError(f"{where} cannot be reached: {exc}") from exc


def _get(url: str, where: str, timeout: float) -> None:
    _ask(urllib.request.Request(url), where, timeout)


def _post(url: str, body: object, where: str, timeout: float) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    _ask(request, where, timeout)


def _ask(request: urllib.request.Request, where: str, timeout: float) -> None:
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode(errors="replace").strip()
        raise ServiceError(f"{where} failed: HTTP {exc.code} {detail}") from exc
    except TimeoutError as exc:
        raise ServiceError(f"{where} did not answer within {timeout:.0f} s") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceError(f"{where} cannot be reached: {reason}") from exc
