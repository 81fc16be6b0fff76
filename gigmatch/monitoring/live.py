"""Live ranking quality: the outcomes clients report, joined to the answers that ranked them.

Each /v1/match answer is a prediction-log line with a `request_id`; clients report
what became of its candidates to /v1/outcomes (`gigmatch.monitoring.outcome_log`).
An answer counts once it has matured (`drift.outcome_maturity_hours` since it was
logged, so late hires have had time to arrive) and at least one of its candidates
has a reported outcome; its candidates without a report count as rejected (0),
as a client reports the ones it acted on. Outcomes for a request id the log does
not hold (another server's, or older than the log) are left out and counted.

Per model version: requests, NDCG@k, MAP@k and hire recall@k (hired or better
among the top k), the figures the training reports give on the test split. With a
shadow challenger (`serving.shadow`, its own log), the two side by side on the very
requests both ranked: NDCG@k, hire recall@k, the challenger's margin, and how alike
their orders are (Spearman's correlation of the scores within a request, averaged).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from gigmatch.data.contract import HIRED, REJECTED
from gigmatch.monitoring.frame import OUTCOME
from gigmatch.monitoring.outcome_log import read_outcome_log
from gigmatch.monitoring.prediction_log import CANDIDATE_ID, LOG_GLOB, SCORE, read_records, spread_records
from gigmatch.training.ranking_metrics import average_precision_at_k, ndcg_per_group, recall_at_k

_ANSWER_COLUMNS = ("request_id", "logged_at", "model_version", "job_id", CANDIDATE_ID, SCORE)


@dataclass(frozen=True)
class LiveOutcomes:
    """Matured answers with their outcomes (one row per candidate), and what could not be joined."""

    rows: pd.DataFrame  # _ANSWER_COLUMNS + outcome
    unmatched_outcomes: int  # reported for a request id the log does not hold
    waiting_requests: int  # answers with outcomes that have not matured yet


def answers(lines: Iterable[str], source: str) -> pd.DataFrame:
    """Prediction-log lines as one row per candidate: request id, time, version, job, candidate, score."""
    spread = spread_records(read_records(lines, source))
    if not spread:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in _ANSWER_COLUMNS})
    frame = pd.DataFrame({name: spread.get(name, [None] * len(spread[SCORE])) for name in _ANSWER_COLUMNS})
    frame["logged_at"] = pd.to_datetime(frame["logged_at"], utc=True, format="ISO8601")
    frame[CANDIDATE_ID] = frame[CANDIDATE_ID].astype(np.int64)
    frame[SCORE] = frame[SCORE].astype(np.float64)
    return frame


def read_answers(log_dir: Path) -> pd.DataFrame:
    """Every answer in a prediction-log directory."""
    frames = []
    for path in sorted(Path(log_dir).glob(LOG_GLOB)):
        with open(path, encoding="utf-8") as handle:
            frames.append(answers(handle, str(path)))
    return pd.concat(frames, ignore_index=True) if frames else answers([], str(log_dir))


def join_outcomes(answered: pd.DataFrame, outcomes: pd.DataFrame, matured_before: datetime) -> LiveOutcomes:
    """Answers logged before `matured_before` that have at least one outcome, every candidate graded."""
    known = set(answered["request_id"])
    unmatched = int((~outcomes["request_id"].isin(known)).sum())
    graded = answered.merge(
        outcomes.loc[:, ["request_id", "freelancer_id", OUTCOME]].rename(columns={"freelancer_id": CANDIDATE_ID}),
        on=["request_id", CANDIDATE_ID],
        how="left",
    )
    reported = graded.groupby("request_id")[OUTCOME].transform(lambda v: v.notna().any())
    matured = graded["logged_at"] < pd.Timestamp(matured_before)
    waiting = int(graded.loc[reported & ~matured, "request_id"].nunique())
    rows = graded[reported & matured].copy()
    rows[OUTCOME] = rows[OUTCOME].fillna(REJECTED).astype(np.int64)
    return LiveOutcomes(rows.reset_index(drop=True), unmatched, waiting)


def quality_by_version(rows: pd.DataFrame, k: int) -> dict[str, dict[str, float | int | None]]:
    """Per model version: requests, NDCG@k, MAP@k and hire recall@k over the matured answers (None: undefined)."""
    out: dict[str, dict[str, float | int | None]] = {}
    for version, part in rows.groupby("model_version", sort=True):
        request = part["request_id"].to_numpy()
        score, outcome = part[SCORE].to_numpy(), part[OUTCOME].to_numpy()
        _, ndcg = ndcg_per_group(request, score, outcome, k)
        hired = outcome >= HIRED
        figures: dict[str, float | int | None] = {
            "requests": int(part["request_id"].nunique()),
            "candidates": len(part),
        }
        figures[f"ndcg_at_{k}"] = round(float(ndcg.mean()), 6) if len(ndcg) else None
        figures[f"map_at_{k}"] = round(average_precision_at_k(request, score, hired, k), 6) if hired.any() else None
        figures[f"hire_recall_at_{k}"] = round(recall_at_k(request, score, hired, k), 6) if hired.any() else None
        out[str(version)] = figures
    return out


def ranking_rows(joined: LiveOutcomes, model_version: str) -> pd.DataFrame:
    """One version's matured rows in the shape the ranking-quality rule reads (a request is a query)."""
    rows = joined.rows[joined.rows["model_version"].astype(str) == str(model_version)]
    return pd.DataFrame({"job_id": rows["request_id"], SCORE: rows[SCORE], OUTCOME: rows[OUTCOME].astype(float)})


@dataclass(frozen=True)
class LiveReference:
    """A version's live baseline (NDCG@k of its first matured requests) and its latest matured rows."""

    baseline_ndcg: float
    baseline_requests: int
    window: pd.DataFrame  # the latest requests' rows, in the shape `ranking_rows` gives


def live_reference(
    joined: LiveOutcomes, model_version: str, baseline_requests: int, window_requests: int, k: int
) -> LiveReference | None:
    """The version's first `baseline_requests` matured requests against its latest `window_requests`
    (None until it has the baseline's; the two overlap while it has fewer than both together)."""
    rows = joined.rows[joined.rows["model_version"].astype(str) == str(model_version)]
    order = rows.groupby("request_id")["logged_at"].min().sort_values(kind="stable")
    if len(order) < baseline_requests:
        return None
    first, latest = set(order.index[:baseline_requests]), set(order.index[-window_requests:])
    base = rows[rows["request_id"].isin(first)]
    _, ndcg = ndcg_per_group(base["request_id"].to_numpy(), base[SCORE].to_numpy(), base[OUTCOME].to_numpy(), k)
    if not len(ndcg):
        return None
    window = LiveOutcomes(rows[rows["request_id"].isin(latest)], 0, 0)
    return LiveReference(float(ndcg.mean()), baseline_requests, ranking_rows(window, model_version))


def shadow_comparison(served: pd.DataFrame, shadow: pd.DataFrame, k: int) -> dict[str, object]:
    """Champion and challenger on the matured requests both ranked (rows as `LiveOutcomes.rows`)."""
    common = set(served["request_id"]) & set(shadow["request_id"])
    if not common:
        return {"requests": 0}
    sides = {}
    for side, rows in (("champion", served), ("challenger", shadow)):
        part = rows[rows["request_id"].isin(common)].sort_values(["request_id", CANDIDATE_ID])
        [figures] = quality_by_version(part.assign(model_version="both"), k).values()
        versions = sorted(part["model_version"].astype(str).unique())
        sides[side] = {"model_version": ", ".join(versions), **figures}
        sides[side].pop("requests")
    paired = served.merge(shadow, on=["request_id", CANDIDATE_ID], suffixes=("_champion", "_challenger"))
    paired = paired[paired["request_id"].isin(common)]
    scores = [f"{SCORE}_champion", f"{SCORE}_challenger"]
    ranks = paired.groupby("request_id")[scores].rank().assign(request_id=paired["request_id"])
    correlation = ranks.groupby("request_id")[scores].corr().xs(scores[0], level=1)[scores[1]]
    ndcg = f"ndcg_at_{k}"
    margin = None
    if sides["champion"][ndcg] is not None and sides["challenger"][ndcg] is not None:
        margin = round(float(sides["challenger"][ndcg]) - float(sides["champion"][ndcg]), 6)  # type: ignore[arg-type]
    return {
        "requests": len(common),
        **sides,
        f"{ndcg}_margin": margin,
        "score_rank_correlation": round(float(correlation.mean()), 6) if correlation.notna().any() else None,
    }


def live_report(
    log_dir: Path, outcome_dir: Path, matured_before: datetime, k: int, shadow_dir: Path | None = None
) -> tuple[LiveOutcomes, dict[str, object]]:
    """The join and its figures, from the logs as they stand (the shadow's too, when it has one)."""
    outcomes = read_outcome_log(outcome_dir)
    joined = join_outcomes(read_answers(log_dir), outcomes, matured_before)
    document: dict[str, object] = {
        "matured_before": matured_before.isoformat(),
        "by_model_version": quality_by_version(joined.rows, k),
        "outcomes_without_an_answer": joined.unmatched_outcomes,
        "requests_waiting_to_mature": joined.waiting_requests,
    }
    if shadow_dir is not None and Path(shadow_dir).is_dir():
        shadowed = join_outcomes(read_answers(shadow_dir), outcomes, matured_before)
        document["shadow"] = shadow_comparison(joined.rows, shadowed.rows, k)
    return joined, document
