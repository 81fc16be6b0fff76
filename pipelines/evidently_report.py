"""The drift gate's HTML report for people, built with Evidently 0.7 (Report, presets, tests).

It lives outside `gigmatch/` because the domain package does not depend on the
report library (an import-linter contract in pyproject.toml): the rules and the
verdict are in `gigmatch.monitoring.rules`, and this module only draws them. The report uses the same
columns, per-column methods and thresholds and the same drifted-columns share
as the verdict, so the page and the JSON agree column by column.

Evidently takes seconds to import: import this module lazily.
"""

from __future__ import annotations

import os

import pandas as pd

from gigmatch.monitoring.frame import SCORE
from gigmatch.monitoring.rules import column_rules
from gigmatch.params import DriftParams

_SAMPLE_SEED = 0


def build_html_report(reference: pd.DataFrame, current: pd.DataFrame, params: DriftParams) -> str:
    """A complete HTML page: dataset drift, the per-column drift table, and the score's drift.

    The reference is sampled down to `html_reference_rows` rows for the page
    (the plots need no more); the verdict's statistics use every row.
    """
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry, off before it is imported
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    rules = column_rules(params)
    numeric = [c for c, (kind, _) in rules.items() if kind == "numeric"]
    categorical = [c for c, (kind, _) in rules.items() if kind == "categorical"]
    definition = DataDefinition(numerical_columns=[*numeric, SCORE], categorical_columns=categorical)
    columns = [*numeric, *categorical, SCORE]
    if len(reference) > params.html_reference_rows:
        reference = reference.sample(params.html_reference_rows, random_state=_SAMPLE_SEED)
    preset = DataDriftPreset(
        columns=[*numeric, *categorical],
        drift_share=params.drift_share,
        per_column_method={c: rule.method for c, (_, rule) in rules.items()},
        per_column_threshold={c: rule.threshold for c, (_, rule) in rules.items()},
    )
    score = ValueDrift(column=SCORE, method=params.score.method, threshold=params.score.threshold)
    snapshot = Report([preset, score], include_tests=True).run(
        current_data=Dataset.from_pandas(current.loc[:, columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference.loc[:, columns], data_definition=definition),
    )
    return str(snapshot.get_html_str(as_iframe=False))
