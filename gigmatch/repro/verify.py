"""The client reproduction check: a clean checkout must give back the committed model fingerprint.

`verify(repo)` does what a client does with a fresh clone, in a scratch directory,
one step per module of this package:

1. **checkout** (`checkout`): a clone of the commit (`HEAD` by default), detached,
   so nothing uncommitted in the working tree can leak in.
2. **environment** (`environment`): the running virtual environment must match the
   commit's `uv.lock` (every locked package that is installed, at the locked version).
3. **inputs** (`inputs`): the commit's environment, data pin and params against those
   the committed fingerprint was made from; a stale fingerprint stops here.
4. **data** (`pinned_data`): exactly what `data.dvc` pins (DVC cache, the default
   remote, else regenerated from the seed with the committed simulator), md5 checked.
5. **pipeline** (`pipeline`): `dvc repro --force train` with a fresh MLflow SQLite
   store and Prefect home inside the scratch (`scratch`), the locked `.venv` first on
   PATH and the checkout first on PYTHONPATH (the project is installed editable, so
   without it the working tree's code would run instead of the commit's).
6. **compare** (`compare`): the reproduced fingerprint (the scratch's
   `reports/fingerprint.local.json`) against the committed one, by the tiers of
   `gigmatch.repro.tiers`: numerically equal at least (every probe score within the
   tolerance, every ranking and everything else identical), and exact when this
   machine's own last run (`reports/fingerprint.local.json` of the repository, written
   by `make run`) is of the same model and has the same bits.

Exit codes (`gigmatch.errors.ExitCode`): 0 the model is the same (exact or numerical
tier, said in the message); 1 it is not (naming the figure), or
the data cannot be made to match its pin, or the environment is not the locked one
(with a readable diff); 2 the data contract is broken (the validate stage refused
the data); 3 any other error (git, DVC or the pipeline crashed).

Bit-for-bit identity of two fresh runs on the same platform rests on: the seeds in
params.yaml (`simulate.seed` for regenerated data, `train.seed`, `evaluate.baseline_seed`);
one thread per estimator (`train.threads`: LightGBM's `n_jobs`; threadpoolctl caps
OpenMP and BLAS per fit and around the whole flow); LightGBM's deterministic mode
(`deterministic=True, force_row_wise=True`); rows sorted by (job_id, freelancer_id)
before anything is fitted; no clock, run id or registry state in the fingerprint;
and `uv.lock` (checked in step 2). Nothing depends on PYTHONHASHSEED: the check does
not set it, so each run gets its own random hash seed. On another CPU, OpenBLAS
picks other kernels and the last bits move: that is the numerical tier.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gigmatch.data.pinning import PinError
from gigmatch.errors import ExitCode
from gigmatch.repro.checkout import checkout, repository_root, uncommitted_notes
from gigmatch.repro.compare import Comparison, compare_fingerprints, rewritten_files_notes, stale_lock_notes
from gigmatch.repro.differences import Difference
from gigmatch.repro.environment import lock_differences
from gigmatch.repro.fingerprint import FINGERPRINT_FILE, FORMAT, read_fingerprint
from gigmatch.repro.inputs import input_differences
from gigmatch.repro.pinned_data import materialise_pinned_data
from gigmatch.repro.pipeline import reproduce_training, validate_contract
from gigmatch.repro.scratch import DEFAULT_TIMEOUT_SECONDS, VerifyError, pipeline_env


@dataclass
class VerifyResult:
    code: int  # an ExitCode: OK, CHECK_FAILED, CONTRACT_BROKEN or ERROR
    commit: str | None
    scratch: Path
    differences: list[Difference] = field(default_factory=list)
    message: str = ""  # why it failed, when it did
    notes: list[str] = field(default_factory=list)  # warnings that do not fail the check
    seconds: dict[str, float] = field(default_factory=dict)  # per step
    expected: dict[str, Any] | None = None  # the committed fingerprint
    actual: dict[str, Any] | None = None  # the reproduced one, at full precision
    comparison: Comparison | None = None

    @property
    def tier(self) -> str | None:
        """The tier that held (exact or numerical), None unless the check passed."""
        return self.comparison.tier if self.ok and self.comparison is not None else None

    @property
    def ok(self) -> bool:
        return self.code == ExitCode.OK

    @property
    def first_stage(self) -> str | None:
        """The earliest stage that differs: usually the cause of everything after it."""
        return self.differences[0].stage if self.differences else None

    def fail(self, differences: list[Difference], message: str) -> VerifyResult:
        self.code, self.message = ExitCode.CHECK_FAILED, message
        self.differences = differences
        return self


def verify(
    repo_root: Path,
    scratch_dir: Path | None = None,
    *,
    rev: str = "HEAD",
    full: bool = False,
    prefect_api_url: str | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    log: Callable[[str], None] = lambda message: None,
) -> VerifyResult:
    """Reproduce `rev` of `repo_root` in `scratch_dir` (a new temporary directory if None) and compare.

    If the commit's inputs differ from those its fingerprint records, the fingerprint is
    stale and cannot match, so the check stops before training with that diff, unless
    `full` (then it trains anyway and shows every figure that moves). `prefect_api_url`
    runs the flow against an existing Prefect server instead of an ephemeral one in the
    scratch (faster; nothing in the fingerprint depends on it).
    """
    scratch = Path(scratch_dir) if scratch_dir is not None else Path(tempfile.mkdtemp(prefix="gigmatch-verify-"))
    scratch.mkdir(parents=True, exist_ok=True)
    workspace = scratch / "repo"
    result = VerifyResult(ExitCode.ERROR, None, scratch)
    started = time.perf_counter()
    try:
        with _timed(result, "checkout"):
            root = repository_root(repo_root)
            log(f"checking out {rev} of {root} into {workspace}")
            result.commit = checkout(root, rev, workspace)
            result.notes += uncommitted_notes(root)
            committed = workspace / "reports" / FINGERPRINT_FILE
            if not committed.is_file():
                return result.fail(
                    [],
                    f"commit {result.commit[:12]} has no reports/{FINGERPRINT_FILE}: nothing to compare with. "
                    "Run `make repro` and commit the fingerprint with dvc.lock.",
                )
            result.expected = read_fingerprint(committed)
            if (found := result.expected.get("format")) != FORMAT:
                return result.fail(
                    [Difference("format", "format", found, FORMAT)],
                    f"commit {result.commit[:12]}'s fingerprint is of format {found} and this verify reads format "
                    f"{FORMAT}: refresh it with `dvc repro` and commit it, or verify an old commit with its own code "
                    "(check it out, then `make verify`)",
                )
        with _timed(result, "environment"):
            log("checking the environment against uv.lock")
            if unlocked := lock_differences(workspace / "uv.lock"):
                return result.fail(
                    unlocked, "the environment is not the one uv.lock pins: run `make install` (uv sync --locked)"
                )
        env = pipeline_env(workspace, scratch, prefect_api_url)
        with _timed(result, "inputs"):
            log("comparing the commit's inputs with those the fingerprint was made from")
            stale = input_differences(workspace, result.expected, env, timeout_seconds, result.notes)
        if stale and not full:
            if any(d.stage == "data" for d in stale):
                # New data may also break the contract, which matters more than a stale fingerprint (exit 2).
                with _timed(result, "data"):
                    log("the data changed: checking it against the contract")
                    if materialise_pinned_data(workspace, env, timeout_seconds, log, result.notes) is None:
                        validate_contract(workspace, scratch / "logs" / "validate.log", env, timeout_seconds)
            return result.fail(
                stale,
                f"the committed fingerprint was made from other inputs ({stale[0].stage} first), so it cannot "
                "be reproduced: refresh it with `dvc repro` (`dvc repro --force train` after a dependency "
                "upgrade) and commit dvc.lock and reports/; `--full` trains anyway to show every figure that moves",
            )
        if stale:
            result.notes.append(f"inputs differ from the fingerprint's ({stale[0].describe()}); training anyway")
        with _timed(result, "data"):
            log("materialising the pinned data")
            if (
                data_difference := materialise_pinned_data(workspace, env, timeout_seconds, log, result.notes)
            ) is not None:
                return result.fail([data_difference], "the data cannot be made to match its pin in data.dvc")
        with _timed(result, "pipeline"):
            log("reproducing the pipeline (dvc repro --force train)")
            reproduce_training(workspace, scratch / "logs" / "repro.log", env, timeout_seconds)
        with _timed(result, "compare"):
            result.comparison = comparison = compare_fingerprints(result.expected, workspace, root)
            result.actual = comparison.fresh["fingerprint"]
            result.notes += comparison.notes + stale_lock_notes(workspace) + rewritten_files_notes(workspace)
        if not comparison.committed.holds:
            differences = comparison.committed.differences
            return result.fail(
                differences,
                f"the reproduced model is not the committed one, first in {differences[0].stage} "
                f"({differences[0].figure})",
            )
        result.code = ExitCode.OK
        return result
    except VerifyError as exc:
        result.code, result.message = exc.code, str(exc)
        return result
    except (OSError, ValueError, PinError) as exc:  # FingerprintError is a ValueError
        result.code, result.message = ExitCode.ERROR, f"{type(exc).__name__}: {exc}"
        return result
    finally:
        result.seconds["total"] = round(time.perf_counter() - started, 1)


@contextmanager
def _timed(result: VerifyResult, step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        result.seconds[step] = round(time.perf_counter() - start, 1)
