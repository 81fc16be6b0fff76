"""The marketplace simulator: deterministic, within its documented ranges, with a real signal."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gigmatch.cli import main
from gigmatch.data.simulator import generate_marketplace
from gigmatch.data.snapshot import read_tables
from gigmatch.data.taxonomy import CATEGORIES, SKILLS
from gigmatch.params import Params, SimulateParams, override
from gigmatch.training.ranking_metrics import ndcg_at_k


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_same_seed_gives_byte_identical_files(tmp_path: Path, params: Params) -> None:
    args = ["data", "generate", "--jobs", "150", "--freelancers", "1500"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert main([*args, "--out", str(tmp_path / "c"), "--seed", str(params.simulate.seed + 1)]) == 0
    assert _digests(tmp_path / "a") != _digests(tmp_path / "c")


def test_generate_writes_the_tables_the_history_and_the_truth(small_snapshot: Path) -> None:
    assert sorted(p.name for p in small_snapshot.iterdir()) == [
        "applications.parquet",
        "freelancer_history.parquet",
        "freelancers.parquet",
        "jobs.parquet",
        "simulator_truth.parquet",
    ]


def test_taxonomy_size() -> None:
    assert 140 <= len(SKILLS) <= 160 and len(CATEGORIES) == 12
    assert len({s.slug for s in SKILLS}) == len(SKILLS)
    newer_roles = {"prompt_engineering", "llm_app_development", "rag_pipelines", "rlhf_labeling", "model_monitoring"}
    assert newer_roles <= {s.slug for s in SKILLS}


@pytest.fixture(scope="module")
def default_market(params: Params) -> dict[str, pd.DataFrame]:
    """The default-size marketplace (about 120,000 applications), generated in memory."""
    market = generate_marketplace(params.simulate)
    return {
        "freelancers": market.freelancers,
        "jobs": market.jobs,
        "applications": market.applications,
        "truth": market.simulator_truth,
    }


def test_default_size(default_market: dict[str, pd.DataFrame]) -> None:
    assert len(default_market["jobs"]) == 5000
    assert len(default_market["freelancers"]) == 20000
    assert 110_000 <= len(default_market["applications"]) <= 130_000


def test_ranges(default_market: dict[str, pd.DataFrame], params: Params) -> None:
    apps, fl, jobs = default_market["applications"], default_market["freelancers"], default_market["jobs"]
    per_job = apps.groupby("job_id").size()
    assert per_job.min() >= params.simulate.min_applicants and per_job.max() <= params.simulate.max_applicants
    n_skills = fl["skills"].map(len)
    assert n_skills.min() == 3 and n_skills.max() == 12
    span = jobs["posted_at"].max() - jobs["posted_at"].min()
    assert pd.Timedelta(days=500) < span < pd.Timedelta(days=550)  # about 18 months
    assert set(apps["outcome"].unique()) == {0, 1, 2, 3}
    # No track record means no rating (the profiles as they stand at the snapshot).
    assert fl.loc[fl["jobs_completed"] == 0, "rating"].isna().all()
    assert fl.loc[fl["jobs_completed"] > 0, "rating"].notna().all()
    # Rates are log-normal-ish: right-skewed, and vary by region.
    rate = fl["hourly_rate_usd"]
    assert rate.mean() > rate.median()
    by_region = fl.groupby("region")["hourly_rate_usd"].median()
    assert by_region["north_america"] > 2 * by_region["south_asia"]


def test_applicants_skew_toward_related_skills(default_market: dict[str, pd.DataFrame]) -> None:
    apps, fl, jobs = default_market["applications"], default_market["freelancers"], default_market["jobs"]
    skills = fl.set_index("freelancer_id")["skills"].map(set)
    required = jobs.set_index("job_id")["required_skills"].map(set)
    sample = apps.sample(5000, random_state=0)
    overlaps = [bool(required[j] & skills[f]) for j, f in zip(sample["job_id"], sample["freelancer_id"], strict=True)]
    rng = np.random.default_rng(0)
    random_pairs = zip(rng.choice(jobs["job_id"], 5000), rng.choice(fl["freelancer_id"], 5000), strict=True)
    random_overlaps = [bool(required[j] & skills[f]) for j, f in random_pairs]
    assert np.mean(overlaps) > 2 * np.mean(random_overlaps)


def test_demand_shifts_over_time(default_market: dict[str, pd.DataFrame]) -> None:
    jobs = default_market["jobs"]
    first, last = (
        jobs["posted_at"] < jobs["posted_at"].quantile(0.2),
        jobs["posted_at"] > jobs["posted_at"].quantile(0.8),
    )
    llm_share = lambda mask: (jobs.loc[mask, "category"] == "llm_apps").mean()  # noqa: E731
    assert llm_share(last) > 2 * llm_share(first)
    hourly = jobs["budget_type"] == "hourly"
    assert jobs.loc[last & hourly, "budget_usd"].median() > jobs.loc[first & hourly, "budget_usd"].median()


def test_signal_is_real(default_market: dict[str, pd.DataFrame], record_property: pytest.RecordProperty) -> None:
    """Ranking by the true match probability beats random ranking by a wide margin."""
    apps, truth = default_market["applications"], default_market["truth"]
    assert (apps[["job_id", "freelancer_id"]].to_numpy() == truth[["job_id", "freelancer_id"]].to_numpy()).all()
    group, relevance = apps["job_id"].to_numpy(), apps["outcome"].to_numpy()
    oracle = ndcg_at_k(group, truth["true_match_probability"].to_numpy(), relevance, k=10)
    random = ndcg_at_k(group, np.random.default_rng(7).random(len(apps)), relevance, k=10)
    record_property("oracle_ndcg_at_10", round(oracle, 4))
    record_property("random_ndcg_at_10", round(random, 4))
    print(f"NDCG@10 oracle {oracle:.4f} vs random {random:.4f}")
    assert oracle > random + 0.25
    assert oracle > 2 * random


def test_truth_is_a_probability_per_job(default_market: dict[str, pd.DataFrame]) -> None:
    truth = default_market["truth"]
    per_job = truth.groupby("job_id")["true_match_probability"].sum()
    # Hire probabilities of a job's applicants sum to at most 1 (the rest is "no hire").
    assert (per_job <= 1 + 1e-4).all() and (per_job > 0).all()


def test_trend_scale_zero_freezes_demand(small_simulate: SimulateParams) -> None:
    frozen = generate_marketplace(override(small_simulate, n_jobs=3000, demand_trend_scale=0.0)).jobs
    early, late = (
        frozen["posted_at"] < frozen["posted_at"].median(),
        frozen["posted_at"] >= frozen["posted_at"].median(),
    )
    share = lambda mask: (frozen.loc[mask, "category"] == "llm_apps").mean()  # noqa: E731
    assert abs(share(late) - share(early)) < 0.02


def test_written_snapshot_reads_back_equal(small_snapshot: Path, small_simulate: SimulateParams) -> None:
    market = generate_marketplace(small_simulate)
    frames = read_tables(small_snapshot)
    pd.testing.assert_series_equal(
        frames["applications"]["outcome"], pd.Series(market.applications["outcome"], name="outcome")
    )
    assert list(frames["freelancers"]["skills"].iloc[0]) == list(market.freelancers["skills"].iloc[0])


def test_a_top_up_round_with_no_eligible_applicant_is_fine() -> None:
    """Small batches meet rounds where every drawn candidate signed up after the post."""
    from gigmatch.data.simulator.applications import _first_occurrences

    assert _first_occurrences(np.array([], dtype=np.int64)).tolist() == []
    assert _first_occurrences(np.array([5, 3, 5, 1, 3])).tolist() == [0, 1, 3]
