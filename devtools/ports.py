"""A free TCP port on loopback, for the servers the developer tools start (one home for it in devtools)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
