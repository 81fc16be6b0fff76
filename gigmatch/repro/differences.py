"""A figure that differs between two fingerprints, and the exact comparison of their sections.

Every check of verify reports its findings as `Difference`s, grouped by the stage a
difference points at, in pipeline order: the first stage that differs is usually the
cause of everything after it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

# Compared in this order; the first stage that differs is usually the cause of the rest.
STAGES = ("format", "environment", "data", "params", "model", "metrics")
ABSENT = "(absent)"


@dataclass(frozen=True)
class Difference:
    stage: str  # format, environment, data, params, model, metrics
    figure: str  # dotted path inside the document, e.g. params.train.models.logistic.params.C
    expected: object  # the committed value (ABSENT when the figure is new)
    actual: object  # the reproduced value (ABSENT when the figure is gone)
    detail: str = ""  # what the figures mean, when they alone do not say (a tolerance, a swapped pair)

    @property
    def change(self) -> str:
        """The signed change of a number ("+0.0012"), else empty."""
        a, b = self.expected, self.actual
        numbers = isinstance(a, int | float) and isinstance(b, int | float)
        if numbers and not isinstance(a, bool) and not isinstance(b, bool):
            return f"{b - a:+.6g}"  # type: ignore[operator]
        return ""

    def describe(self) -> str:
        """`figure: expected -> actual (change): detail`, the stage first when the figure does not start with it."""
        where = self.figure if self.figure.split(".", 1)[0] == self.stage else f"{self.stage}: {self.figure}"
        change = f" ({self.change})" if self.change else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{where}: {show_value(self.expected)} -> {show_value(self.actual)}{change}{detail}"


def flatten(document: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """Nested mappings as dotted keys; lists and scalars are leaves."""
    flat: dict[str, object] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.") if value else {name: {}}
        else:
            flat[name] = value
    return flat


def diff(expected: Mapping[str, object], actual: Mapping[str, object]) -> list[Difference]:
    """Every figure that differs at all (exact comparison), by stage in pipeline order."""
    old, new = flatten(expected), flatten(actual)
    differences = []
    for figure in sorted(old.keys() | new.keys()):
        stage = figure.split(".", 1)[0]
        if figure not in old or figure not in new or not same_value(old[figure], new[figure]):
            differences.append(Difference(stage, figure, old.get(figure, ABSENT), new.get(figure, ABSENT)))
    return in_stage_order(differences)


def in_stage_order(differences: list[Difference]) -> list[Difference]:
    order = {stage: i for i, stage in enumerate(STAGES)}
    return sorted(differences, key=lambda d: (order.get(d.stage, len(order)), d.figure))


def same_value(a: object, b: object) -> bool:
    # JSON has one number type: 1 and 1.0 are the same figure, True and 1 are not.
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def show_value(value: object, limit: int = 80) -> str:
    """A figure as JSON, cut to `limit` characters."""
    text = ABSENT if value == ABSENT else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
