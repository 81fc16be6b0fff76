"""How well a profile's text matches a job description: the cosine of their TF-IDF vectors.

Computed as scikit-learn's `TfidfVectorizer` weights them (sublinear tf, idf,
L2 norm), one text at a time, and the cosine for all rows at once in numpy. The
arithmetic is the same, in the same order, as summing the products of the
shorter vector's terms one by one: the numbers are bit for bit those of that
plain Python loop, whichever rows are computed together (tests/test_ranking.py),
and equal to the cosine of the fitted TfidfVectorizer's own vectors to float
rounding on the whole pinned snapshot (tests/test_features.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Cells of the (description, term) table one pass looks shared terms up in; more
# descriptions than fit (training: thousands) are taken a block at a time.
_TABLE_CELLS = 1 << 22


@dataclass(frozen=True, eq=False, slots=True)  # compared by identity
class TextVector:
    """A text's L2-normalised TF-IDF weights: term ids in order of first occurrence, and weights.

    Held as packed bytes (int64 ids, float64 weights): a batch joins hundreds of
    vectors end to end, and joining bytes costs a tenth of concatenating arrays.
    """

    terms: bytes
    weights: bytes

    @classmethod
    def of(cls, terms: Sequence[int] | np.ndarray, weights: Sequence[float] | np.ndarray) -> TextVector:
        return cls(np.asarray(terms, dtype=np.int64).tobytes(), np.asarray(weights, dtype=np.float64).tobytes())

    def __len__(self) -> int:
        return len(self.terms) // 8


def vectorise(
    text: str, analyse: Callable[[str], list[str]], idf: Mapping[str, float], vocabulary: Mapping[str, int]
) -> TextVector:
    counts: dict[str, int] = {}
    for token in analyse(text):
        if token in idf:
            counts[token] = counts.get(token, 0) + 1
    weights = {t: (1.0 + math.log(c)) * idf[t] for t, c in counts.items()}  # sublinear tf
    norm = math.sqrt(sum(w * w for w in weights.values()))
    if norm == 0:
        return TextVector(b"", b"")
    return TextVector.of([vocabulary[t] for t in weights], [w / norm for w in weights.values()])


def paired_cosine(
    descriptions: Sequence[TextVector],
    description_rows: Sequence[int] | np.ndarray,
    profiles: Sequence[TextVector],
    profile_rows: Sequence[int] | np.ndarray,
) -> np.ndarray:
    """Per row, the cosine of `descriptions[description_rows[i]]` and `profiles[profile_rows[i]]`.

    The products of the terms two vectors share, added one by one starting from
    zero in the order of the shorter vector (the description on a tie). A term
    only one of them has would add +0.0, which changes nothing, so only shared
    terms are visited: each profile term that some description has is looked up
    in a table of its row's description's terms (per request in a batch of 16:
    69 us -> 23 us against sorting every term), and the products found are
    summed per row in order.
    """
    row_description = np.asarray(description_rows, dtype=np.int64)
    row_profile = np.asarray(profile_rows, dtype=np.int64)
    cosine = np.zeros(len(row_description))
    if not len(cosine):
        return cosine
    description = _Stacked(descriptions)
    profile = _Stacked(profiles)

    # Terms some description has, numbered 0..k-1; a profile's other terms are shared with none.
    description_terms, description_codes = np.unique(description.terms, return_inverse=True)
    code_of_term = np.full(int(max(description.terms.max(initial=0), profile.terms.max(initial=0))) + 1, -1)
    code_of_term[description_terms] = np.arange(len(description_terms))
    profile_codes = code_of_term[profile.terms]
    candidates = np.flatnonzero(profile_codes >= 0)  # profile entries that may be shared
    candidate_counts = np.bincount(profile.owner[candidates], minlength=len(profiles))
    candidate_starts = np.cumsum(candidate_counts) - candidate_counts
    profile_position = np.arange(len(profile.terms)) - profile.starts[profile.owner]  # each term's, in its profile
    longest = int(max(description.lengths.max(), profile.lengths.max()))

    per_block = max(1, _TABLE_CELLS // max(len(description_terms), 1))
    for first in range(0, len(descriptions), per_block):
        last = min(first + per_block, len(descriptions))
        rows = (
            np.arange(len(cosine))
            if first == 0 and last == len(descriptions)
            else np.flatnonzero((row_description >= first) & (row_description < last))
        )
        # table[description, code]: the term's index in description.terms, or -1.
        table = np.full((last - first, len(description_terms)), -1)
        owned = slice(description.starts[first], description.starts[last - 1] + description.lengths[last - 1])
        table[description.owner[owned] - first, description_codes[owned]] = np.arange(owned.start, owned.stop)

        # Each row's candidate profile entries, then the ones its description has.
        counts = candidate_counts[row_profile[rows]]
        entry_row = np.repeat(rows, counts)
        offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        entry = candidates[np.repeat(candidate_starts[row_profile[rows]], counts) + offset]
        found = table[row_description[entry_row] - first, profile_codes[entry]]
        shared = found >= 0
        row, entry, found = entry_row[shared], entry[shared], found[shared]
        products = profile.weights[entry] * description.weights[found]

        # The shorter vector's order: the profile's when it is shorter, else the description's.
        row_descriptions = row_description[row]
        profile_is_shorter = profile.lengths[row_profile[row]] < description.lengths[row_descriptions]
        position = np.where(profile_is_shorter, profile_position[entry], found - description.starts[row_descriptions])
        # By row, then position (distinct within a row); entries arrive in row order, which timsort exploits.
        order = np.argsort(row * (longest + 1) + position, kind="stable")
        # bincount adds its weights into each bin one by one, in input order, from zero.
        cosine += np.bincount(row[order], weights=products[order], minlength=len(cosine))
    return cosine


class _Stacked:
    """Vectors end to end: terms, weights, each entry's vector, each vector's start and length."""

    def __init__(self, vectors: Sequence[TextVector]):
        self.terms = np.frombuffer(b"".join([v.terms for v in vectors]), dtype=np.int64)
        self.weights = np.frombuffer(b"".join([v.weights for v in vectors]), dtype=np.float64)
        self.lengths = np.fromiter(map(len, vectors), dtype=np.int64, count=len(vectors))
        self.starts = np.cumsum(self.lengths) - self.lengths
        self.owner = np.repeat(np.arange(len(vectors)), self.lengths)
