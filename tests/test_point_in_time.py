"""Point-in-time profiles: records grow as work is done, and features read them as of each application."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gigmatch.data.contract import FREELANCER_HISTORY, PROFILE_STATISTICS
from gigmatch.data.simulator import generate_marketplace
from gigmatch.data.simulator.careers import Careers, to_seconds
from gigmatch.data.snapshot import profile_statistics_note, read_tables
from gigmatch.data.validation import check_relations
from gigmatch.features.match_frame import build_match_frame
from gigmatch.features.names import FEATURE_NAMES
from gigmatch.features.transformer import MatchFeatures
from gigmatch.params import Params


@pytest.fixture(scope="module")
def market(params: Params):  # type: ignore[no-untyped-def]
    return generate_marketplace(params.simulate)


def _quarterly(market, values: np.ndarray) -> pd.Series:  # type: ignore[no-untyped-def]
    quarter = pd.to_datetime(market.applications["applied_at"]).dt.to_period("Q").to_numpy()
    return pd.Series(values).groupby(quarter).mean()


def test_newcomers_stop_being_newcomers_and_their_share_holds(market) -> None:  # type: ignore[no-untyped-def]
    history = market.freelancer_history
    grew = history.groupby("freelancer_id")["jobs_completed"].agg(["min", "max"])
    started_new = grew["min"] == 0
    assert (started_new & (grew["max"] > 0)).sum() > 100, "newcomers who get hired gain a record"
    match = build_match_frame(market.applications, market.jobs, market.freelancers, history)
    newcomer_share = _quarterly(market, (match["jobs_completed"] == 0).to_numpy()).iloc[:-1]  # the last is partial
    # Frozen profiles let this share double over the window (0.14 -> 0.33); evolving ones hold it.
    assert newcomer_share.max() - newcomer_share.min() < 0.03, newcomer_share.round(3).to_dict()
    # Snapshot values are the latest history row of every freelancer.
    latest = history.sort_values("valid_from").groupby("freelancer_id").last()
    current = market.freelancers.set_index("freelancer_id").loc[latest.index]
    for name in PROFILE_STATISTICS:
        pd.testing.assert_series_equal(current[name], latest[name], check_dtype=False)


def test_features_read_the_profile_the_outcome_was_drawn_on(market, params: Params) -> None:  # type: ignore[no-untyped-def]
    """The feature pipeline's as-of join agrees with the simulator's own record of every application."""
    from gigmatch.data.simulator.applications import sample_applicants
    from gigmatch.data.simulator.freelancers import simulate_freelancers
    from gigmatch.data.simulator.jobs import simulate_jobs
    from gigmatch.data.simulator.outcomes import simulate_outcomes
    from gigmatch.data.simulator.sampling import Timeline

    simulate = params.simulate
    timeline = Timeline.from_params(simulate.history_start, simulate.history_months)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(simulate.seed).spawn(4)]
    pool = simulate_freelancers(rngs[0], simulate, timeline)
    board = simulate_jobs(rngs[1], simulate, timeline)
    applicants = sample_applicants(rngs[2], simulate, board, pool)
    careers: Careers = simulate_outcomes(rngs[3], simulate.utility, board, pool, applicants).careers
    seen = careers.as_of(applicants.freelancer_idx, to_seconds(applicants.applied_day))
    match = build_match_frame(market.applications, market.jobs, market.freelancers, market.freelancer_history)
    assert np.array_equal(match["jobs_completed"].to_numpy(), seen.jobs_completed)
    np.testing.assert_array_equal(match["rating"].to_numpy(), seen.rating)
    np.testing.assert_array_equal(match["success_rate"].to_numpy(), seen.success_rate)


def test_a_planted_future_outcome_cannot_reach_a_feature(training_snapshot: Path) -> None:
    frames = read_tables(training_snapshot)
    apps, jobs, freelancers, history = (frames[t] for t in ("applications", "jobs", "freelancers", FREELANCER_HISTORY))
    features = MatchFeatures(text_max_features=2000).fit(build_match_frame(apps, jobs, freelancers, history))
    # A freelancer with several applications: plant a glowing record at the moment of one of them.
    busy = apps.groupby("freelancer_id")["applied_at"].count().idxmax()
    mine = apps[apps["freelancer_id"] == busy].sort_values("applied_at")
    moment = mine["applied_at"].iloc[len(mine) // 2]
    planted = pd.DataFrame(
        {
            "freelancer_id": [busy],
            "valid_from": [moment],
            "jobs_completed": [500],
            "rating": [1.0],
            "success_rate": [0.0],
        }
    ).astype(history.dtypes.to_dict())
    # The application's own outcome, and every later outcome, change too: the future in full.
    later = (apps["freelancer_id"] == busy) & (apps["applied_at"] >= moment)
    future_apps = apps.assign(outcome=np.where(later, 3, apps["outcome"]).astype(apps["outcome"].dtype))
    future_history = pd.concat([history, planted], ignore_index=True)
    assert not check_relations({**frames, FREELANCER_HISTORY: future_history, "applications": future_apps})

    before = features.transform(build_match_frame(apps, jobs, freelancers, history))
    after = features.transform(build_match_frame(future_apps, jobs, freelancers, future_history))
    up_to_now = (apps["applied_at"] <= moment).to_numpy()  # the application at the moment itself included
    assert np.array_equal(before[up_to_now], after[up_to_now], equal_nan=True)
    # ... and the plant is real: the freelancer's applications after it see the new record.
    reached = (later & (apps["applied_at"] > moment)).to_numpy()
    assert reached.any()
    column = list(FEATURE_NAMES).index("log_jobs_completed")
    assert (after[reached, column] > before[reached, column]).all()


def test_without_history_current_values_are_used_and_the_leak_is_named(training_snapshot: Path) -> None:
    frames = read_tables(training_snapshot)
    assert profile_statistics_note(frames) is None
    apps, jobs, freelancers = frames["applications"], frames["jobs"], frames["freelancers"]
    current = build_match_frame(apps, jobs, freelancers)
    rows = pd.Index(freelancers["freelancer_id"]).get_indexer(apps["freelancer_id"])
    assert np.array_equal(current["jobs_completed"].to_numpy(), freelancers["jobs_completed"].to_numpy()[rows])
    as_of = build_match_frame(apps, jobs, freelancers, frames[FREELANCER_HISTORY])
    assert (as_of["jobs_completed"].to_numpy() <= current["jobs_completed"].to_numpy()).all()
    assert (as_of["jobs_completed"] < current["jobs_completed"]).any()
    note = profile_statistics_note({k: v for k, v in frames.items() if k != FREELANCER_HISTORY})
    assert note is not None and "freelancer_history" in note and "optimistic" in note


def test_history_relations_are_checked(training_snapshot: Path) -> None:
    frames = read_tables(training_snapshot)
    history = frames[FREELANCER_HISTORY]
    first = history.iloc[[0]]
    stranger = first.assign(freelancer_id=10**12)
    too_early = first.assign(valid_from=pd.Timestamp("1990-01-01", tz="UTC"))
    fewer = history[history["jobs_completed"] > 5].iloc[[0]]
    fewer = fewer.assign(valid_from=fewer["valid_from"] + pd.Timedelta(seconds=1), jobs_completed=0)
    bad = pd.concat([history, stranger, too_early, fewer], ignore_index=True)
    found = {(v.column, v.check) for v in check_relations({**frames, FREELANCER_HISTORY: bad})}
    assert found == {
        ("freelancer_id", "foreign_key(freelancers.freelancer_id)"),
        ("valid_from", "valid_from >= freelancers.signup_date"),
        ("jobs_completed", "never decreases over time"),
    }
