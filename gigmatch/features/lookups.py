"""What `MatchFeatures.transform` derives from a fitted transformer once and reuses.

The skill index and the skill-to-category matrix, and bounded memos of the
TF-IDF vector of each text and the skill indicator row of each skill list. Freelancers
apply to many jobs with the same profile, so serving meets the same texts again
and again; parsing them costs more than the rest of their row (ranking 50
candidates with reasons: 1.63 ms with no text seen before, 0.96 ms with the
texts cached; benchmarks/bench_serving.py prints both).

Kept beside the transformer, not on it: its attributes are what skops saves with
the model. A memo is keyed by the text itself, so a hit is exactly what a miss
computes; a refitted transformer gets fresh lookups.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from gigmatch.features.skills import skill_indicator_row
from gigmatch.features.text import TextVector, vectorise

T = TypeVar("T")
TEXT_CACHE_SIZE = 20_000  # distinct texts whose TF-IDF vectors a fitted transformer keeps
SKILL_CACHE_SIZE = 20_000  # distinct skill lists whose columns a fitted transformer keeps


class Memo(Generic[T]):
    """A bounded memo of a pure function of a string.

    Two generations rather than a strict LRU, so that a hit is one dict lookup and
    reorders nothing: new keys, and old keys used again, go to the young
    generation; when it holds half the capacity it becomes the old one and the
    previous old one is dropped. A key used once per half-capacity new keys stays.
    """

    def __init__(self, compute: Callable[[str], T], capacity: int):
        self._compute = compute
        self._half = max(1, capacity // 2)
        self._young: dict[str, T] = {}
        self._old: dict[str, T] = {}
        self._lock = threading.Lock()  # one fitted transformer may score in several threads

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def get_many(self, keys: Sequence[str]) -> list[T]:
        found: list[T | None] = list(map(self._young.get, keys))
        if None not in found:  # all hits (values compare by identity): no loop in Python
            return found  # type: ignore[return-value]
        for i, value in enumerate(found):
            if value is not None:
                continue
            key = keys[i]
            value = self._old.get(key)
            if value is None:
                value = self._compute(key)  # outside the lock: another thread's hits need not wait
            found[i] = value
            with self._lock:
                self._young[key] = value
                if len(self._young) >= self._half:
                    self._old, self._young = self._young, {}
        return found  # type: ignore[return-value]


class FittedLookups:
    """Lookups derived from one fitted `MatchFeatures`."""

    def __init__(self, features: Any):
        self.fitted_vocabulary = features.skill_vocabulary_
        self.fitted_idf = features.term_idf_
        self.skill_index = {s: i for i, s in enumerate(features.skill_vocabulary_)}
        categories = features.skill_category_
        self.skill_to_category = np.zeros((len(categories), int(categories.max()) + 1))
        self.skill_to_category[np.arange(len(categories)), categories] = 1.0
        analyse = features.text_vectorizer_.build_analyzer()
        vocabulary = features.text_vectorizer_.vocabulary_
        self.text_vectors: Memo[TextVector] = Memo(
            lambda text: vectorise(text, analyse, self.fitted_idf, vocabulary), TEXT_CACHE_SIZE
        )
        self.skill_rows = Memo(lambda text: skill_indicator_row(text, self.skill_index), SKILL_CACHE_SIZE)

    def is_for(self, features: Any) -> bool:
        return self.fitted_idf is features.term_idf_ and self.fitted_vocabulary is features.skill_vocabulary_


_LOOKUPS: weakref.WeakKeyDictionary[Any, FittedLookups] = weakref.WeakKeyDictionary()
_LOOKUPS_LOCK = threading.Lock()


def lookups_for(features: Any) -> FittedLookups:
    """The lookups of a fitted transformer, made on first use and again after a refit."""
    with _LOOKUPS_LOCK:
        lookups = _LOOKUPS.get(features)
        if lookups is None or not lookups.is_for(features):
            lookups = _LOOKUPS[features] = FittedLookups(features)
        return lookups
