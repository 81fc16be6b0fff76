"""Is a server up: an HTTP health route or a TCP port, asked with a short timeout."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET `url` answers 2xx within `timeout` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return 200 <= answer.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
