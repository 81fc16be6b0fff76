"""Step 3 of verify: the commit's inputs (environment, data pin, params) against those its fingerprint records.

A fingerprint made from other inputs cannot be reproduced, so verify says so
before spending minutes on training. The commit's inputs are computed by the
commit's own code: `python -m gigmatch.repro.inputs`, run in the scratch
checkout, prints them as JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gigmatch.data.pinning import read_pin
from gigmatch.params import load_params
from gigmatch.repro.differences import Difference, diff
from gigmatch.repro.fingerprint import input_sections
from gigmatch.repro.scratch import run_logged


def input_differences(
    workspace: Path, expected: Mapping[str, Any], env: Mapping[str, str], timeout: float, notes: list[str]
) -> list[Difference]:
    """The commit's inputs, computed by its own code in a subprocess, against the committed fingerprint's.

    When they cannot be computed (a commit older than this module), a note says so and nothing differs.
    """
    log_file = workspace.parent / "logs" / "inputs.log"
    code = run_logged([sys.executable, "-m", "gigmatch.repro.inputs"], workspace, env, timeout, log_file, check=False)
    lines = log_file.read_text(errors="replace").strip().splitlines()
    try:
        if code != 0:
            raise ValueError(f"exit {code}")
        inputs = json.loads(lines[-1])
    except (ValueError, IndexError) as exc:
        notes.append(f"could not compare the inputs before training ({exc}; log: {log_file}); training anyway")
        return []
    return diff({stage: expected.get(stage, {}) for stage in inputs}, inputs)


def main() -> None:
    """Print this checkout's input sections as one line of JSON (run from the checkout's root)."""
    sections = input_sections(load_params(Path("params.yaml")), read_pin(Path("data.dvc")).md5)
    print(json.dumps(sections, sort_keys=True))


if __name__ == "__main__":
    main()
