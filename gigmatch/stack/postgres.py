"""The stack's PostgreSQL: one cluster under the stack folder, a database and a role per server.

Run as root (CI, containers), the server runs as the `postgres` user, which Debian's package creates:
PostgreSQL refuses to run as root. Every connection needs a password (scram-sha-256), also over
loopback, so a wrong one is refused rather than waved through by `trust`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from gigmatch.errors import GigmatchError

SUPERUSER = "postgres"


class PostgresError(GigmatchError):
    """PostgreSQL is missing, or its cluster cannot be made or reached."""


def bin_dir(configured: Path | None) -> Path:
    """PostgreSQL's bin directory: the configured one, else the newest Debian version's."""
    candidates = [configured] if configured else sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major)
    for candidate in reversed(candidates):
        if (candidate / "postgres").exists() and (candidate / "initdb").exists():
            return candidate
    raise PostgresError(
        f"no PostgreSQL server in {configured or '/usr/lib/postgresql/*/bin'} (GIGMATCH_STACK_POSTGRES_BIN): "
        "install it with `apt-get install postgresql`"
    )


def server_user() -> str | None:
    """Who the server runs as: the `postgres` user when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError as exc:
        raise PostgresError("running as root, but there is no `postgres` user to run PostgreSQL as") from exc
    return SUPERUSER


def prepare(data_dir: Path, socket_dir: Path, superuser_password: str, postgres_bin: Path) -> bool:
    """Create the cluster in `data_dir` unless it exists (data survives a restart). True if created."""
    user = server_user()
    socket_dir.mkdir(parents=True, exist_ok=True)
    for directory in (data_dir.parent, socket_dir):
        _own(directory, user)
    _check_reachable(data_dir.parent, user)
    if (data_dir / "PG_VERSION").exists():
        return False
    if data_dir.exists():
        shutil.rmtree(data_dir)  # a half-made cluster from an interrupted first start
    password_file = data_dir.parent / ".superuser-password"
    password_file.write_text(superuser_password + "\n")
    os.chmod(password_file, 0o600)
    _own(password_file, user)
    try:
        result = subprocess.run(
            [
                str(postgres_bin / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "-E", "UTF8",
                "--auth=scram-sha-256", f"--pwfile={password_file}", "--no-instructions",
            ],
            user=user, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise PostgresError(f"initdb failed in {data_dir}: {(result.stderr or result.stdout).strip()[-500:]}")
    return True


def server_argv(postgres_bin: Path, data_dir: Path, port: int, socket_dir: Path) -> list[str]:
    return [
        str(postgres_bin / "postgres"), "-D", str(data_dir),
        "-c", "listen_addresses=127.0.0.1", "-p", str(port), "-k", str(socket_dir),
    ]  # fmt: skip


def ensure_databases(port: int, superuser_password: str, owners: Mapping[str, str]) -> None:
    """A database per name in `owners`, owned by a role of the same name with that password."""
    import psycopg2  # the team extra: only the stack needs it here

    connection = psycopg2.connect(
        host="127.0.0.1", port=port, user=SUPERUSER, password=superuser_password, dbname="postgres", connect_timeout=5
    )
    connection.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
    try:
        with connection.cursor() as cursor:
            for name, password in owners.items():
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
                verb = "ALTER" if cursor.fetchone() else "CREATE"
                cursor.execute(f'{verb} ROLE "{name}" LOGIN PASSWORD %s', (password,))
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
    finally:
        connection.close()


def is_ready(port: int, superuser_password: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(
            host="127.0.0.1", port=port, user=SUPERUSER, password=superuser_password, dbname="postgres",
            connect_timeout=2,
        ).close()  # fmt: skip
        return True
    except psycopg2.Error:
        return False


def _major(path: Path) -> float:
    try:
        return float(path.parent.name)
    except ValueError:
        return 0.0


def _own(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(path, 0o700 if path.is_dir() else os.stat(path).st_mode & 0o777)


def _check_reachable(directory: Path, user: str | None) -> None:
    """The server's user must be able to walk down to its data: every parent must let others pass."""
    if user is None:
        return
    for parent in directory.resolve().parents:
        if not os.stat(parent).st_mode & 0o001:
            raise PostgresError(
                f"PostgreSQL runs as `{user}`, who cannot enter {parent} (mode {os.stat(parent).st_mode & 0o777:o}): "
                "set GIGMATCH_STACK_DIR to a folder under a path others may traverse, or `chmod o+x` it"
            )
