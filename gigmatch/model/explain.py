"""Why a candidate ranks where it does: each feature's contribution to its score.

`contributions` is exact where the model allows it:
  - a scaled linear model: coefficient x standardised value (log-odds against the
    average training applicant);
  - LightGBM: its own SHAP values (`pred_contrib`);
  - anything else: how much the score drops (or rises) when the feature is set
    to the mean of the other candidates for the same job.

`reason_contributions` is what a request's reasons use: the same, except for LightGBM,
whose exact SHAP values cost 53 ms per 50 candidates with a 600-tree ranker (TreeSHAP
walks every leaf of every tree for each row), ten times the rest of a request. There it
gives path attributions (Saabas; `treeinterpreter`'s method): each split on a row's path
credits its feature with the change it makes to the tree's expected score. They add up to
the raw score minus the ensemble's expected score, as SHAP values do, and agree with them
in sign (99.9% on the top three), but they are not consistent (Lundberg et al., 2018: a
feature can get less credit from a model that relies on it more), so the top reason can
differ from SHAP's: the serving benchmark prints how often. A row's attributions depend
only on the leaf it reaches in each tree, so they are a table lookup per tree
(`PathAttributions`), about 2 ms per 50 candidates with the scores included. Offline
figures (the drift gate's reliance) keep the exact SHAP values of `contributions`.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from lightgbm import Booster, LGBMModel, LGBMRanker
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from gigmatch.model.pipeline import match_scores


def contributions(estimator: BaseEstimator, features: np.ndarray) -> np.ndarray:
    """Rows x features: signed contribution of each feature to each row's score."""
    if is_scaled_linear(estimator):
        return scaled_linear_scores(estimator, features)[1]
    if isinstance(estimator, LGBMModel):
        return np.asarray(estimator.booster_.predict(features, pred_contrib=True))[:, :-1]
    return _mean_replacement(estimator, features)


def reason_contributions(estimator: BaseEstimator, features: np.ndarray) -> np.ndarray:
    """Rows x features, for a request's reasons: `contributions`, with path attributions for LightGBM's ranker."""
    if has_leaf_table(estimator):
        return path_attributions_of(estimator)(features)
    return contributions(estimator, features)


def has_leaf_table(estimator: BaseEstimator) -> bool:
    """LightGBM's ranker: one tree per round, plain leaves, and its score is the raw sum of its leaves.

    (A LightGBM classifier's score is a probability and a Poisson model's an exponential of the sum,
    so the table's sum is not their score; they keep `contributions`.)
    """
    # getattr, not get_params: this runs for every batch, and get_params introspects the constructor.
    return isinstance(estimator, LGBMRanker) and not getattr(estimator, "linear_tree", False)


def row_wise_scores(estimator: BaseEstimator, features: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(scores, every row's reason contributions) from one pass, where each row's are its own alone: the
    linear model and LightGBM's ranker. None for a model whose contributions compare a job's rows."""
    if is_scaled_linear(estimator):
        return scaled_linear_scores(estimator, features)
    if has_leaf_table(estimator):
        return path_attributions_of(estimator).scores_and_contributions(features)
    return None


@dataclass(frozen=True)
class PathAttributions:
    """A LightGBM ensemble's path attributions as a table: one row of feature credits per (tree, leaf).

    Built once per model from its dump (0.1-0.3 s for 600 trees). A row's attributions are
    the sum of its leaves' table rows: LightGBM finds the leaves (`pred_leaf`), and one
    sparse product (rows x leaves, one 1 per tree) sums them. The table's last column is
    the leaf's value, so the same product gives the raw score, summed tree by tree in the
    order LightGBM sums it: the same bits as `predict`, from one pass down the trees
    instead of two (1.9 ms of a 6.2 ms request, 50 candidates, 600 trees).
    """

    booster: Booster
    table: np.ndarray  # (trees x leaves) x (features + 1): each feature's credit on the path to that leaf, its value
    leaf_offset: np.ndarray  # per tree, its first row in `table`
    expected_score: float  # the raw score of a row no split tells anything about: the trees' root values
    threads: int  # LightGBM's threads to find the leaves, as the estimator's own predict would use

    @classmethod
    def of(cls, booster: Booster, threads: int = 1) -> PathAttributions:
        trees = booster.dump_model()["tree_info"]
        width, n_features = max(tree["num_leaves"] for tree in trees), booster.num_feature()
        table = np.zeros((len(trees), width, n_features + 1))
        expected = 0.0
        for t, tree in enumerate(trees):
            root = tree["tree_structure"]
            expected += _node_value(root)
            pending = [(root, np.zeros(n_features + 1))]
            while pending:
                node, credit = pending.pop()
                if "split_feature" not in node:  # a leaf; a tree of one leaf moves every row alike: no feature earns it
                    leaf = node.get("leaf_index", 0)  # a one-leaf tree's only leaf carries no index in the dump
                    table[t, leaf] = credit
                    table[t, leaf, -1] = node["leaf_value"]
                    continue
                for child in (node["left_child"], node["right_child"]):
                    child_credit = credit.copy()
                    child_credit[node["split_feature"]] += _node_value(child) - node["internal_value"]
                    pending.append((child, child_credit))
        return cls(booster, table.reshape(-1, n_features + 1), np.arange(len(trees)) * width, expected, threads)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Rows x features: each feature's credit for the row's raw score."""
        return self.scores_and_contributions(features)[1]

    def scores_and_contributions(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(raw scores, bit for bit `predict`'s; rows x features contributions) from one pass down the trees."""
        if not len(features):
            return np.zeros(0), np.zeros((0, self.table.shape[1] - 1))
        found = self.booster.predict(features, pred_leaf=True, num_threads=self.threads)
        leaves = np.asarray(found, dtype=np.intp).reshape(len(features), -1)
        trees = leaves.shape[1]
        picks = sp.csr_matrix(
            (np.ones(leaves.size), (leaves + self.leaf_offset[:trees]).ravel(), np.arange(0, leaves.size + 1, trees)),
            shape=(len(features), len(self.table)),
        )
        summed = np.asarray(picks @ self.table)
        # Contiguous copies: the prediction log's writer (orjson) serialises only C-contiguous arrays.
        return np.ascontiguousarray(summed[:, -1]), np.ascontiguousarray(summed[:, :-1])


def _node_value(node: dict[str, Any]) -> float:
    return float(node["internal_value"] if "split_feature" in node else node["leaf_value"])


_PATH_ATTRIBUTIONS: weakref.WeakKeyDictionary[LGBMModel, PathAttributions] = weakref.WeakKeyDictionary()
_PATH_ATTRIBUTIONS_LOCK = threading.Lock()


def path_attributions_of(estimator: LGBMModel) -> PathAttributions:
    """The fitted estimator's table, built at first use and kept while the estimator lives (and is not refitted).

    Looked up without the lock, and built outside it: a reload building a new model's table
    (0.1-0.3 s) must not stall the requests ranked with the current one.
    """
    table = _PATH_ATTRIBUTIONS.get(estimator)
    if table is not None and table.booster is estimator.booster_:
        return table
    threads = estimator.n_jobs if isinstance(estimator.n_jobs, int) and estimator.n_jobs > 0 else 0  # 0: OpenMP's
    built = PathAttributions.of(estimator.booster_, threads)
    with _PATH_ATTRIBUTIONS_LOCK:  # two threads building at once keep one table
        table = _PATH_ATTRIBUTIONS.get(estimator)
        if table is None or table.booster is not estimator.booster_:
            table = _PATH_ATTRIBUTIONS[estimator] = built
        return table


def prepare_reasons(estimator: BaseEstimator) -> None:
    """Build what `reason_contributions` needs for this estimator now, rather than at its first request."""
    if has_leaf_table(estimator):
        path_attributions_of(estimator)


def is_scaled_linear(estimator: BaseEstimator) -> bool:
    """A standard scaler (centring and scaling) followed by a binary logistic regression."""
    if not (isinstance(estimator, Pipeline) and len(estimator.steps) == 2):
        return False
    scaler, linear = estimator.steps[0][1], estimator.steps[1][1]
    return (
        isinstance(scaler, StandardScaler)
        and scaler.with_mean
        and scaler.with_std
        and isinstance(linear, LogisticRegression)
        and len(linear.classes_) == 2
    )


def scaled_linear_scores(estimator: Pipeline, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(match scores, contributions) of a scaled logistic regression, from one standardisation.

    The score is the logistic of the intercept plus the sum of the contributions, so it
    is exactly what the reasons explain, and each row is summed on its own: a row
    scores the same bits whichever rows it is ranked with. It agrees with
    `match_scores` (scikit-learn's matrix product) to rounding, without its input
    validation, which on a request's 50 rows costs several times the arithmetic (0.2 ms of 0.3).
    """
    scaler, linear = estimator.steps[0][1], estimator.steps[1][1]
    standard = np.asarray(features, dtype=np.float64) - scaler.mean_
    standard /= scaler.scale_
    effects = standard * linear.coef_[0]
    return expit(effects.sum(axis=1) + linear.intercept_[0]), effects


def _mean_replacement(estimator: BaseEstimator, features: np.ndarray) -> np.ndarray:
    n, k = features.shape
    base = match_scores(estimator, features)
    probes = np.repeat(features[None, :, :], k, axis=0)  # k copies of the rows
    probes[np.arange(k), :, np.arange(k)] = features.mean(axis=0)[:, None]
    shifted = match_scores(estimator, probes.reshape(k * n, k)).reshape(k, n)
    return (base[None, :] - shifted).T


def top_reasons(effects: np.ndarray, count: int) -> np.ndarray:
    """Per row, the indices of the `count` largest contributions by size, largest first.

    Rows x features in, rows x min(count, features) out; ties keep feature order.
    """
    count = max(0, min(count, effects.shape[-1]))
    order = np.argsort(-np.abs(effects), axis=-1, kind="stable")
    return order[..., :count]
