"""The two tiers of "the same model", on fingerprints made under other BLAS kernels.

The fixtures in tests/fixtures/fingerprints/ are local records of the default model on
the pinned data, made once by hand on one machine with the kernel forced
(`OPENBLAS_CORETYPE=Haswell gigmatch train`, `=Sandybridge`, and the CPU's own,
SkylakeX; README, "The same model on another machine"). Nothing here sets the
variable: the tests compare the files.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gigmatch.repro.differences import Difference
from gigmatch.repro.fingerprint import (
    FINGERPRINT_FILE,
    LOCAL_FINGERPRINT_FILE,
    SCORE_DECIMALS,
    committed_form,
    probe_scores,
    read_local_record,
    scores_sha256,
    write_fingerprint,
)
from gigmatch.repro.recording import fingerprint_to_commit, record_fingerprint, write_recorded
from gigmatch.repro.tiers import EXACT, METRIC_TOLERANCE, NUMERICAL, SCORE_TOLERANCE, agreement

FIXTURES = Path(__file__).parent / "fixtures" / "fingerprints"
KERNELS = ("SkylakeX", "Haswell", "Sandybridge")


def record(kernel: str) -> dict[str, Any]:
    found = read_local_record(FIXTURES / f"{kernel}.local.json")
    assert found is not None, kernel
    return found


def made_under(kernel: str) -> dict[str, Any]:
    return copy.deepcopy(record(kernel)["fingerprint"])


def job_with_a_clear_order(document: dict[str, Any]) -> tuple[str, int]:
    """A probe job and a rank whose score is well apart from the next one's (no near tie)."""
    for job, entry in document["model"]["probe"]["ranking"].items():
        gaps = -np.diff(entry["scores"])
        if len(gaps) and gaps[0] > 1e-3:
            return job, 0
    raise AssertionError("no probe job with a clear order")


# ---------------------------------------------------------------- the fixtures are what they say


def test_the_fixtures_were_made_under_three_kernels_from_one_model() -> None:
    assert [record(k)["platform"]["blas_kernels"] for k in KERNELS] == [[k] for k in KERNELS]
    digests = {record(k)["scores_sha256"] for k in KERNELS}
    assert len(digests) == 3, "each kernel gave other bits"
    for kernel in KERNELS:
        assert record(kernel)["scores_sha256"] == scores_sha256(probe_scores(made_under(kernel)))


# ---------------------------------------------------------------- numerical across kernels, exact on one


@pytest.mark.parametrize(("reference", "fresh"), list(itertools.permutations(KERNELS, 2)))
def test_another_kernel_gives_the_same_model_numerically(reference: str, fresh: str) -> None:
    found = agreement(made_under(reference), made_under(fresh))

    assert found.tier == NUMERICAL and found.differences == []
    assert 0 < found.max_score_deviation < SCORE_TOLERANCE / 1000, found.max_score_deviation
    assert found.rows == 596 and found.ties == 0
    assert found.summary().startswith(f"numerically equal: max |Δscore| {found.max_score_deviation:.1e} over 596")


@pytest.mark.parametrize("kernel", KERNELS)
def test_the_same_bits_are_the_exact_tier(kernel: str) -> None:
    found = agreement(made_under(kernel), made_under(kernel))
    assert found.tier == EXACT and found.max_score_deviation == 0.0


def test_one_ulp_passes_the_numerical_tier_and_fails_the_exact_one() -> None:
    reference, fresh = made_under("SkylakeX"), made_under("SkylakeX")
    entry = next(iter(fresh["model"]["probe"]["ranking"].values()))
    entry["scores"][3] = float(np.nextafter(entry["scores"][3], 1.0))

    found = agreement(reference, fresh)
    assert found.tier == NUMERICAL and 0 < found.max_score_deviation < 1e-16


@pytest.mark.parametrize("fresh", KERNELS)
def test_the_committed_form_is_the_same_model_for_every_kernel(fresh: str) -> None:
    committed = committed_form(made_under("SkylakeX"))
    found = agreement(committed, made_under(fresh))
    assert found.tier == NUMERICAL, [d.describe() for d in found.differences]
    assert found.reference_decimals == SCORE_DECIMALS and "kept to 10 places" in found.summary()
    assert "platform" not in committed


# ---------------------------------------------------------------- a real change fails, naming the figure


def test_a_swapped_pair_fails_naming_the_job_and_the_pair() -> None:
    reference, fresh = made_under("SkylakeX"), made_under("Haswell")
    job, rank = job_with_a_clear_order(reference)
    scores = fresh["model"]["probe"]["ranking"][job]["scores"]
    scores[rank], scores[rank + 1] = scores[rank + 1], scores[rank]
    first, second = reference["model"]["probe"]["ranking"][job]["freelancers"][rank : rank + 2]

    found = agreement(reference, fresh)
    assert not found.holds
    swap = [d for d in found.differences if d.figure == f"model.probe.ranking.{job}"]
    assert swap == [
        Difference(
            "model",
            f"model.probe.ranking.{job}",
            [first, second],
            [second, first],
            swap[0].detail,
        )
    ]
    assert f"freelancers {first} and {second} swap ranks 1 and 2" in swap[0].detail


def test_a_score_beyond_the_tolerance_fails_naming_the_row() -> None:
    reference, fresh = made_under("SkylakeX"), made_under("Sandybridge")
    job, _ = job_with_a_clear_order(reference)
    entry = fresh["model"]["probe"]["ranking"][job]
    entry["scores"][0] += 3 * SCORE_TOLERANCE  # the top applicant: no order changes

    found = agreement(reference, fresh)
    [moved] = found.differences
    assert moved.figure == "model.probe.scores" and f"{job}/{entry['freelancers'][0]}" in moved.detail
    assert "1 of 596 probe scores beyond it" in moved.detail


def test_scores_above_one_get_a_relative_bound() -> None:
    """LambdaRank's scores are not probabilities: 3e-9 on a score of 5 is 6e-10 of it."""
    reference = made_under("SkylakeX")
    entry = next(iter(reference["model"]["probe"]["ranking"].values()))
    entry["scores"] = [5.0 - i for i in range(len(entry["scores"]))]
    fresh = copy.deepcopy(reference)
    fresh["model"]["probe"]["ranking"][next(iter(fresh["model"]["probe"]["ranking"]))]["scores"][0] += 3e-9

    assert agreement(reference, fresh).tier == NUMERICAL


def test_applicants_tied_within_the_tolerance_may_swap() -> None:
    reference = made_under("SkylakeX")
    entry = next(iter(reference["model"]["probe"]["ranking"].values()))
    entry["scores"][1] = entry["scores"][0] - 1e-12  # a near tie at the top
    fresh = copy.deepcopy(reference)
    top = next(iter(fresh["model"]["probe"]["ranking"].values()))
    top["scores"][0], top["scores"][1] = top["scores"][1], top["scores"][0]

    found = agreement(reference, fresh)
    assert found.tier == NUMERICAL and found.ties == 1 and "1 near-tied pair(s)" in found.summary()


def test_metrics_agree_to_1e6_and_no_further() -> None:
    reference = made_under("SkylakeX")
    within = copy.deepcopy(reference)
    within["metrics"]["test"]["ndcg_at_10"] = round(within["metrics"]["test"]["ndcg_at_10"] + METRIC_TOLERANCE, 6)
    beyond = copy.deepcopy(reference)
    beyond["metrics"]["test"]["ndcg_at_10"] += 2 * METRIC_TOLERANCE

    assert agreement(reference, within).tier == NUMERICAL  # a rounding flip in the sixth place
    [moved] = agreement(reference, beyond).differences
    assert moved.figure == "metrics.test.ndcg_at_10" and "beyond the tolerance" in moved.detail


@pytest.mark.parametrize(
    ("figure", "value"),
    [
        ("params.train.seed", 8),
        ("params.train.models.logistic.params.C", 0.5),
        ("data.md5", "0" * 32 + ".dir"),
        ("environment.numpy", "2.5.0"),
        ("model.kind", "lambdarank"),
    ],
)
def test_inputs_and_the_model_kind_are_compared_exactly(figure: str, value: object) -> None:
    reference, fresh = made_under("SkylakeX"), made_under("Haswell")
    *parents, leaf = figure.split(".")
    node = fresh
    for key in parents:
        node = node[key]
    old, node[leaf] = node[leaf], value

    found = agreement(reference, fresh)
    assert not found.holds and [(d.figure, d.expected, d.actual) for d in found.differences] == [(figure, old, value)]


def test_an_unreadable_ranking_is_named() -> None:
    fresh = made_under("SkylakeX")
    fresh["model"]["probe"]["ranking"] = {"4251": {"freelancers": [1, 2], "scores": [0.5]}}
    found = agreement(made_under("SkylakeX"), fresh)
    assert not found.holds and found.differences[0].figure == "model.probe.ranking"


# ---------------------------------------------------------------- the committed file is not rewritten by another CPU


@pytest.mark.parametrize("fresh", ("Haswell", "Sandybridge"))
def test_a_run_on_another_kernel_keeps_the_committed_file(tmp_path: Path, fresh: str) -> None:
    write_fingerprint(tmp_path / FINGERPRINT_FILE, committed_form(made_under("SkylakeX")))
    before = (tmp_path / FINGERPRINT_FILE).read_bytes()

    recorded = record_fingerprint(tmp_path, made_under(fresh), "abc123", dirty=False)
    write_recorded(tmp_path, recorded)

    assert recorded.kept and recorded.why.startswith("kept: numerically equal")
    assert (tmp_path / FINGERPRINT_FILE).read_bytes() == before
    local = json.loads((tmp_path / LOCAL_FINGERPRINT_FILE).read_text())
    assert local["scores_sha256"] == record(fresh)["scores_sha256"] and local["made_at"]["commit"] == "abc123"


def test_a_different_model_rewrites_the_committed_file(tmp_path: Path) -> None:
    write_fingerprint(tmp_path / FINGERPRINT_FILE, committed_form(made_under("SkylakeX")))
    changed = made_under("Haswell")
    changed["params"]["train"]["seed"] = 8

    recorded = record_fingerprint(tmp_path, changed, "abc123", dirty=True)
    write_recorded(tmp_path, recorded)

    assert not recorded.kept and "params.train.seed: 7 -> 8" in recorded.why
    assert json.loads((tmp_path / FINGERPRINT_FILE).read_text()) == committed_form(changed)


def test_without_a_committed_file_the_fresh_one_is_committed_in_its_committed_form() -> None:
    fresh = made_under("Sandybridge")
    committed, why = fingerprint_to_commit(None, fresh)
    assert committed == committed_form(fresh) and why == "no committed fingerprint yet"
