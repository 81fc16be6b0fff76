"""The closed loop, live, end to end on loopback (`devtools.live_loop.two_futures`): a real `gigmatch serve`,
`gigmatch replay` playing the marketplace, the real monitoring and training flows, real DVC and MLflow.

A stationary period must not block; a `concept` drift must: the snapshot grows by the matured outcomes
into a new DVC data version, the model retrained on it waits as challenger in the server's shadow.
Then two futures. The drift stays: the challenger wins online, is promoted and rolled out while a replay
is under way (no request fails, the version served changes), and live NDCG@10 recovers. The drift ends:
the challenger loses online, stays challenger, and the champion serves on. `benchmarks/bench_loop.py`
prints the same run's figures and plots them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from devtools.live_loop import MODEL, STEPS, Future, two_futures

pytestmark = pytest.mark.slow

STATIONARY, DRIFT, SHADOW, ROLLOUT, AFTER = (step[0] for step in STEPS)


def test_the_loop_closes_on_live_traffic_and_only_a_better_challenger_is_rolled_out(
    tmp_path: Path, prefect_harness: None
) -> None:
    """One test in steps: every step reads the run before it (and pytest-xdist would split a module's tests
    over its workers, each running the whole loop again: its groups do not hold here, see tests/test_stack.py)."""
    futures = two_futures(tmp_path, log=print)
    _the_drift_blocks_only_when_it_comes_and_the_retraining_is_on_a_new_data_version(futures)
    _the_drift_stays_the_challenger_wins_online_and_is_rolled_out_with_no_failed_request(futures)
    _the_drift_ends_the_challenger_loses_online_and_nothing_is_rolled_out(futures)
    _the_model_retrained_on_drift_names_its_data_version_in_its_lineage(futures, tmp_path / "ends")


def _replay(future: Future, name: str):  # type: ignore[no-untyped-def]
    return next(r for r in future.replays if r.name == name)


def _client(root: Path) -> MlflowClient:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _the_drift_blocks_only_when_it_comes_and_the_retraining_is_on_a_new_data_version(
    futures: dict[str, Future],
) -> None:
    future = futures["stays"]
    stationary, drift = future.monitors["stationary"], future.monitors["drift"]
    assert stationary.status in {"no_drift", "warning"} and stationary.retraining is None
    assert not stationary.gate.verdict.drift_detected  # type: ignore[union-attr]

    before, after = _replay(future, STATIONARY).by_version, _replay(future, DRIFT).by_version
    assert after[future.champion] < before[future.champion] - 0.08  # the live drop the gate must see
    assert drift.status == "drift" and "ranking_quality" in drift.gate.verdict.failed_rules  # type: ignore[union-attr]

    version = drift.data_version
    assert version is not None and version.added["applications"] > 50_000
    assert version.md5 != version.parent_md5
    retrained = drift.retraining
    assert retrained is not None and retrained.decision.alias == "challenger"
    assert any("waiting: live evidence" in reason for reason in retrained.decision.reasons)
    assert future.shadowed == retrained.version  # sent to the server's shadow slot


def _the_drift_stays_the_challenger_wins_online_and_is_rolled_out_with_no_failed_request(
    futures: dict[str, Future],
) -> None:
    future = futures["stays"]
    retrained = future.monitors["drift"].retraining
    assert retrained is not None
    online = future.monitors["online"]
    shadow = online.live_quality["shadow"]  # type: ignore[index]
    assert shadow["requests"] >= 200 and shadow["ndcg_at_10_margin"] > 0, shadow
    assert online.online_promotion == {
        "challenger_version": retrained.version,
        "promote": True,
        "reasons": online.online_promotion["reasons"],  # type: ignore[index]
    }
    rollout = _replay(future, ROLLOUT)
    assert rollout.failed == 0 and rollout.requests > 100
    served = rollout.versions_in_order
    assert served[0] == future.champion and served[-1] == retrained.version, set(served)
    first_new = served.index(retrained.version)
    assert set(served[first_new + 50 :]) == {retrained.version}  # once out, it stays out
    assert future.served_at_end == retrained.version

    dropped = _replay(future, DRIFT).by_version[future.champion]
    recovered = _replay(future, AFTER).by_version[retrained.version]
    assert recovered > dropped, (dropped, recovered)


def _the_drift_ends_the_challenger_loses_online_and_nothing_is_rolled_out(futures: dict[str, Future]) -> None:
    future = futures["ends"]
    retrained = future.monitors["drift"].retraining
    assert retrained is not None
    online = future.monitors["online"]
    assert online.online_promotion is not None and online.online_promotion["promote"] is False
    assert any(reason.startswith("failed: live NDCG@10 margin") for reason in online.online_promotion["reasons"])  # type: ignore[attr-defined]
    for name in (SHADOW, ROLLOUT):
        replay = _replay(future, name)
        assert replay.failed == 0 and set(replay.versions_in_order) == {future.champion}, name
    assert future.served_at_end == future.champion


def _the_model_retrained_on_drift_names_its_data_version_in_its_lineage(futures: dict[str, Future], root: Path) -> None:
    future = futures["ends"]  # the registry as the loop left it: the challenger registered, not promoted
    drift = future.monitors["drift"]
    assert drift.retraining is not None and drift.data_version is not None
    client = _client(root)
    version = client.get_model_version(MODEL, drift.retraining.version)
    assert version.tags["data_md5"] == drift.data_version.md5 == future.data_md5
    assert version.tags["data_parent_md5"] == drift.data_version.parent_md5
    assert version.tags["offline_gate"] == "passed"
    training_run = client.get_run(client.get_run(version.run_id).data.tags["mlflow.parentRunId"])
    assert training_run.data.tags["data_md5"] == drift.data_version.md5
    assert training_run.data.tags["data_parent_md5"] == drift.data_version.parent_md5
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == future.champion
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == drift.retraining.version
    pin = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    assert pin == drift.data_version.md5
