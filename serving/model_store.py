"""The bundle being served, swapped atomically on reload.

Requests read `current` once and keep that reference for their whole life, so
a reload never changes the model under a request in flight. A bundle that fails
to load never replaces the one being served.
"""

from __future__ import annotations

import threading
from pathlib import Path

from gigmatch.bundle import Bundle, BundleError, load_bundle


class ModelStore:
    def __init__(self, path: Path):
        self.path = path
        self._bundle: Bundle | None = None
        self._error: str | None = "not loaded yet"
        self._reload_lock = threading.Lock()

    @property
    def current(self) -> Bundle | None:
        return self._bundle

    @property
    def error(self) -> str | None:
        """Why the last load failed (None after a success)."""
        return self._error

    def load(self) -> Bundle:
        """Load the bundle at `path` and swap it in; raises BundleError and keeps the old one on failure."""
        with self._reload_lock:  # one reload at a time; requests never wait on it
            try:
                bundle = load_bundle(self.path)
            except BundleError as exc:
                self._error = str(exc)
                raise
            self._bundle = bundle  # a single reference assignment: atomic for readers
            self._error = None
            return bundle
