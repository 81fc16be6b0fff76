"""Load a bundle's model with only the code the bundle carries, score its input example, print the row count.

Run by tests/test_container.py with the clean serving environment's interpreter, from a
directory without the repository: the model's classes must come from `model/code/`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import skops.io as sio
import yaml


def main(model_dir: Path) -> None:
    sys.path.insert(0, str(model_dir / "code"))  # what MLflow's loader does with the model's code paths
    flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["sklearn"]
    model = sio.load(model_dir / flavor["pickled_model"], trusted=flavor["skops_trusted_types"])
    example = json.loads((model_dir / "input_example.json").read_text())
    frame = pd.DataFrame(example["data"], columns=example["columns"]).astype({"rating": float, "success_rate": float})
    scores = model.predict_proba(frame)
    loaded_from = Path(sys.modules[type(model.steps[0][1]).__module__].__file__ or "").resolve()
    print(json.dumps({"rows": len(scores), "features_from": str(loaded_from)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
