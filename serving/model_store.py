"""The bundle being served, swapped atomically on reload.

Requests read `current` once and keep that reference for their whole life, so
a reload never changes the model under a request in flight. A bundle that fails
to load never replaces the one being served. `load` is called off the event loop
(the admin route runs in FastAPI's thread pool, SIGHUP hands it to an executor):
reading and checking a bundle takes about 0.1 s of CPU, which requests in flight
share with it rather than wait for.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from gigmatch.model.bundle import Bundle, BundleError, load_bundle
from gigmatch.model.explain import prepare_reasons
from gigmatch.model.pipeline import estimator_of


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
        with self._reload_lock, _polite_gil():  # one reload at a time; requests never wait on it
            try:
                bundle = load_bundle(self.path)
                _prepare_reasons(bundle)
            except BundleError as exc:
                self._error = str(exc)
                raise
            self._bundle = bundle  # a single reference assignment: atomic for readers
            self._error = None
            return bundle


def _prepare_reasons(bundle: Bundle) -> None:
    """What the model's reasons need, built now: its first request would pay for it otherwise."""
    try:
        prepare_reasons(estimator_of(bundle.model))
    except Exception as exc:  # a model whose reasons cannot be computed is not ready to serve
        raise BundleError(f"the model in {bundle.path} cannot explain its scores: {exc}") from exc


_LOADING_SWITCH_INTERVAL = 0.0002  # seconds


@contextlib.contextmanager
def _polite_gil() -> Iterator[None]:
    """While a bundle loads in its thread, hand the GIL back to the event loop sooner.

    The loop gives the GIL up at every socket call; the loading thread then holds it until
    it is asked to drop it, by default 5 ms later, so each of the loop's calls could cost it
    5 ms.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, _LOADING_SWITCH_INTERVAL))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def freeze_long_lived_objects() -> None:
    """Move what is alive now (the libraries) out of the garbage collector's view; call it before the first load.

    A full collection walks every tracked object: about 200,000 once the libraries are
    imported, 110-250 ms here, a pause that lands on whichever request triggers it (the
    p99). Frozen objects are skipped. Only the libraries are frozen, not a model: a
    replaced model is then garbage like any other (its feature lookups hold reference
    cycles, which only a collection frees, and a frozen cycle is never collected), and a
    reload needs no collection of its own. The previous way (unfreeze, collect, freeze at
    every load) held the GIL for those 110-250 ms at each reload: every request in flight
    waited (benchmarks/bench_reload.py).
    """
    gc.collect()
    gc.freeze()
