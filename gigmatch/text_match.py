"""How well a profile's text matches a job description: the cosine of their TF-IDF vectors.

Computed as scikit-learn's `TfidfVectorizer` weights them (sublinear tf, idf,
L2 norm), one text at a time, and the cosine for all rows at once in numpy. The
arithmetic is the same, in the same order, as summing the products of the
shorter vector's terms one by one: the numbers are bit for bit those of that
plain Python loop, whichever rows are computed together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)  # compared by identity: the fields are arrays
class TextVector:
    """A text's L2-normalised TF-IDF weights: term ids in order of first occurrence, and weights."""

    terms: np.ndarray  # int64 vocabulary ids
    weights: np.ndarray  # float64


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
        return TextVector(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))
    return TextVector(
        np.fromiter((vocabulary[t] for t in weights), dtype=np.int64, count=len(weights)),
        np.fromiter((w / norm for w in weights.values()), dtype=np.float64, count=len(weights)),
    )


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
    terms are visited: each profile term is looked up among its row's
    description's terms, and the products found are summed per row in order.
    """
    n_rows = len(description_rows)
    if n_rows == 0:
        return np.zeros(0)
    description_terms, description_weights, description_lengths = _stack(descriptions)
    profile_terms, profile_weights, profile_lengths = _stack(profiles)
    row_description = np.asarray(description_rows, dtype=np.int64)
    row_profile = np.asarray(profile_rows, dtype=np.int64)
    description_starts = np.cumsum(description_lengths) - description_lengths
    profile_starts = np.cumsum(profile_lengths) - profile_lengths

    # Every term of each row's profile, with its position in the profile.
    counts = profile_lengths[row_profile]
    entry_row = np.repeat(np.arange(n_rows), counts)
    entry_position = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    entry = profile_starts[row_profile][entry_row] + entry_position

    # Looked up as (description, term) among all descriptions' terms, sorted once.
    span = int(max(description_terms.max(initial=0), profile_terms.max(initial=0))) + 1
    keys = np.repeat(np.arange(len(descriptions), dtype=np.int64), description_lengths) * span + description_terms
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = keys[by_key]
    wanted = row_description[entry_row] * span + profile_terms[entry]
    found_at = np.minimum(np.searchsorted(sorted_keys, wanted), max(len(sorted_keys) - 1, 0))
    shared = sorted_keys[found_at] == wanted if len(sorted_keys) else np.zeros(len(wanted), dtype=bool)
    row = entry_row[shared]
    in_description = by_key[found_at[shared]]
    products = profile_weights[entry[shared]] * description_weights[in_description]

    # The shorter vector's order: the profile's when it is shorter, else the description's.
    profile_is_shorter = counts < description_lengths[row_description]
    position = np.where(
        profile_is_shorter[row],
        entry_position[shared],
        in_description - description_starts[row_description[row]],
    )
    order = np.lexsort((position, row))
    # bincount adds its weights into each bin one by one, in input order, from zero.
    return np.bincount(row[order], weights=products[order], minlength=n_rows)


def _stack(vectors: Sequence[TextVector]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All vectors' terms and weights end to end, and each vector's length."""
    if not vectors:
        return np.empty(0, dtype=np.int64), np.empty(0), np.zeros(0, dtype=np.int64)
    terms = [v.terms for v in vectors]
    lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
    return np.concatenate(terms), np.concatenate([v.weights for v in vectors]), lengths
