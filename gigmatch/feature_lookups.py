"""What `MatchFeatures.transform` derives from a fitted transformer once and reuses.

The skill index and the skill-to-category matrix, and bounded memos of the
TF-IDF vector of each text and the skill columns of each skill list. Freelancers
apply to many jobs with the same profile, so serving meets the same texts again
and again; parsing them costs more than the rest of their row.

Kept beside the transformer, not on it: its attributes are what skops saves with
the model. A memo is keyed by the text itself, so a hit is exactly what a miss
computes; a refitted transformer gets fresh lookups.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import numpy as np

from gigmatch.text_match import TextVector, vectorise

T = TypeVar("T")
TEXT_CACHE_SIZE = 20_000  # distinct texts whose TF-IDF vectors a fitted transformer keeps
SKILL_CACHE_SIZE = 20_000  # distinct skill lists whose columns a fitted transformer keeps


class Memo(Generic[T]):
    """A bounded memo of a pure function of a string; least recently used out first."""

    def __init__(self, compute: Callable[[str], T], capacity: int):
        self._compute = compute
        self._capacity = capacity
        self._values: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()  # one fitted transformer may score in several threads

    def __len__(self) -> int:
        return len(self._values)

    def get_many(self, keys: Iterable[str]) -> list[T]:
        keys = list(keys)
        with self._lock:  # one acquisition for the hits of a whole request
            found = [self._values.get(key) for key in keys]
            for key, value in zip(keys, found, strict=True):
                if value is not None:
                    self._values.move_to_end(key)
        for i, key in enumerate(keys):
            if found[i] is None:
                value = found[i] = self._compute(key)
                with self._lock:
                    self._values[key] = value
                    if len(self._values) > self._capacity:
                        self._values.popitem(last=False)
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
        self.skill_columns = Memo(lambda text: skill_columns(text, self.skill_index), SKILL_CACHE_SIZE)

    def is_for(self, features: Any) -> bool:
        return self.fitted_idf is features.term_idf_ and self.fitted_vocabulary is features.skill_vocabulary_


def skill_columns(text: str, index: dict[str, int]) -> tuple[int, ...]:
    """Vocabulary columns of a space-separated skill list; skills outside the vocabulary are ignored."""
    return tuple(index[skill] for skill in text.split() if skill in index)


_LOOKUPS: weakref.WeakKeyDictionary[Any, FittedLookups] = weakref.WeakKeyDictionary()
_LOOKUPS_LOCK = threading.Lock()


def lookups_for(features: Any) -> FittedLookups:
    """The lookups of a fitted transformer, made on first use and again after a refit."""
    with _LOOKUPS_LOCK:
        lookups = _LOOKUPS.get(features)
        if lookups is None or not lookups.is_for(features):
            lookups = _LOOKUPS[features] = FittedLookups(features)
        return lookups


def forget_all() -> None:
    """Drop every transformer's lookups (a benchmark's cold start)."""
    with _LOOKUPS_LOCK:
        _LOOKUPS.clear()
