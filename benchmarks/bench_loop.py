"""The closed loop, live, on loopback: one marketplace, two futures, figures from one run and a plot.

`devtools.live_loop.two_futures` (tests/test_loop.py asserts the same run's outcome): a project of its
own (git, DVC, an MLflow store), a champion trained on a simulated snapshot of 1,500 jobs, served by
a real `gigmatch serve` with a shadow slot; `gigmatch replay` plays the marketplace (150 requests/s,
outcomes 0.2 s after each answer, position bias eta 1), the real monitoring flow judges it:

  1-stationary   300 jobs of the training distribution       monitor: must not block
  2-drift      4,000 jobs of `concept` drift (price-first)   monitor: blocks; the snapshot grows by the
                                                             matured outcomes (a new DVC version); the
                                                             model retrained on it passes the offline
                                                             gate and waits as challenger, in shadow
  then, in each future, from the same state:
  3-shadow       400 jobs, the challenger scoring each one beside the champion
  4-rollout    up to 3,000 jobs at 40/s, stopped 3 s after monitoring has judged the challenger's
               online evidence (promoted and rolled out while it runs, or not)
  5-after        600 jobs, once a new champion serves

The drift stays: replays 3-5 keep the concept drift; the challenger wins online, is rolled out with
no failed request and live NDCG@10 recovers. The drift ends: they are stationary again; the
challenger loses online, stays challenger, and nothing is rolled out.

    python benchmarks/bench_loop.py [--plot benchmarks/figures/loop.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.live_loop import STEPS, Future, two_futures  # noqa: E402


def summary(future: Future) -> list[str]:
    drift, online = future.monitors["drift"], future.monitors["online"]
    data, retrained = drift.data_version, drift.retraining
    shadow = (online.live_quality or {}).get("shadow") or {}
    assert isinstance(shadow, dict)
    lines = [f"future: the drift {future.name} after the retraining ({future.seconds} s in all)"]
    lines.append(f"  champion: version {future.champion}")
    for figures in future.replays:
        by_version = ", ".join(f"v{v} {n:.4f}" for v, n in figures.by_version.items())
        lines.append(
            f"  replay {figures.name:<13} {figures.requests:>5} requests, {figures.failed} failed,"
            f" {figures.seconds:>5.1f} s; live NDCG@10 {by_version}"
        )
    lines.append(f"  monitor after stationary: {future.monitors['stationary'].status}")
    assert drift.gate is not None
    rule = next(r for r in drift.gate.verdict.rules if r.rule == "ranking_quality")
    lines.append(
        f"  monitor after drift: {drift.status}, failed {', '.join(drift.gate.verdict.failed_rules)}: {rule.detail}"
    )
    if data is not None:
        lines.append(f"  new data version {data.md5} (from {data.parent_md5}), added {data.added}")
    if retrained is not None:
        lines.append(f"  retrained: version {retrained.version}: {retrained.decision.summary()}")
    lines.append(f"  shadow: version {future.shadowed}")
    for side in ("champion", "challenger"):
        figures = shadow.get(side) or {}
        lines.append(
            f"  online {side:<10} v{figures.get('model_version')}: NDCG@10 {figures.get('ndcg_at_10')},"
            f" hire recall@10 {figures.get('hire_recall_at_10')}"
        )
    lines.append(
        f"  online: {shadow.get('requests')} requests both ranked, margin {shadow.get('ndcg_at_10_margin')},"
        f" score rank correlation {shadow.get('score_rank_correlation')}"
    )
    promotion = online.online_promotion or {}
    lines.append(f"  online promotion: {promotion.get('promote')}: {'; '.join(promotion.get('reasons', []))}")  # type: ignore[arg-type]
    rollout = next(r for r in future.replays if r.name == STEPS[3][0])
    served = rollout.versions_in_order
    switches = [i for i in range(1, len(served)) if served[i] != served[i - 1]]
    lines.append(
        f"  during the rollout replay: {rollout.failed} failed of {rollout.requests}; versions in the order served"
        f" {list(dict.fromkeys(served))}, switching at answer {switches}"
    )
    lines.append(f"  serving at the end: version {future.served_at_end}; data.dvc {future.data_md5}")
    return lines


def plot(futures: dict[str, Future], path: Path) -> None:
    """Live NDCG@10 along the replays (rolling mean of 100 answers), one panel per future, a colour per version."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    figure, axes = plt.subplots(len(futures), 1, figsize=(11, 3.4 * len(futures)), squeeze=False, sharex=True)
    colours: dict[str, str] = {}
    for axis, future in zip(axes[:, 0], futures.values(), strict=True):
        start = 0
        for figures in future.replays:
            values = pd.Series(figures.ndcg_in_order, dtype=float)
            smooth = values.rolling(100, min_periods=20).mean().to_numpy()
            versions = np.asarray(figures.versions_in_order)
            for version in dict.fromkeys(figures.versions_in_order):
                colour = colours.setdefault(version, f"C{len(colours)}")
                shown = np.where(versions == version, smooth, np.nan)
                axis.plot(start + np.arange(len(shown)), shown, color=colour, lw=1.2, label=f"version {version}")
            axis.axvline(start, color="grey", lw=0.6, ls=":")
            axis.text(start + 10, 0.42, figures.name, fontsize=8, rotation=90, va="bottom", color="grey")
            start += len(figures.versions_in_order)
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=False))
        axis.legend(unique.values(), unique.keys(), loc="lower left", fontsize=8)
        axis.set_title(f"the drift {future.name} after the retraining", fontsize=10)
        axis.set_ylabel("live NDCG@10")
        axis.set_ylim(0.4, 1.0)
    axes[-1, 0].set_xlabel("answers, in the order the replays sent them (rolling mean of 100)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "figures" / "loop.png")
    args = parser.parse_args()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180), tempfile.TemporaryDirectory(prefix="gigmatch-loop-") as tmp:
        futures = two_futures(Path(tmp), log=lambda line: print(line, file=sys.stderr, flush=True))
    for future in futures.values():
        print("\n".join(summary(future)))
    plot(futures, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
