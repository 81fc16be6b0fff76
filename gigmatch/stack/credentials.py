"""The stack's generated secrets: made once, kept in the stack folder (0600), reused on every start,
so data written under one password is read under the same one after a restart."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from gigmatch.files import atomic_write_text

CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    postgres_password: str  # the cluster's superuser (`postgres`)
    mlflow_db_password: str  # role and database `mlflow`
    prefect_db_password: str  # role and database `prefect`
    s3_access_key: str
    s3_secret_key: str

    @classmethod
    def generate(cls) -> Credentials:
        # Hex only: safe unquoted in URLs, shell and Make.
        return cls(
            secrets.token_hex(16),
            secrets.token_hex(16),
            secrets.token_hex(16),
            "gigmatch" + secrets.token_hex(6),
            secrets.token_hex(20),
        )


def load_or_create(stack_dir: Path) -> Credentials:
    path = stack_dir / CREDENTIALS_FILE
    if path.exists():
        stored = json.loads(path.read_text())
        return Credentials(**{f.name: str(stored[f.name]) for f in fields(Credentials)})
    credentials = Credentials.generate()
    stack_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(asdict(credentials), indent=2) + "\n")
    os.chmod(path, 0o600)
    return credentials
