"""`gigmatch replay`: play the marketplace against a running server (the plan and outcome model:
`gigmatch.monitoring.replay`; the HTTP driver: `gigmatch.monitoring.replay_driver`)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gigmatch.cli.app import ParamsOption, app, console
from gigmatch.errors import ExitCode
from gigmatch.params import DEFAULT_PARAMS_PATH, load_params

if TYPE_CHECKING:  # the command imports them when it runs (the simulator is not cheap to import)
    from gigmatch.monitoring.replay import NdcgFigure, ReplayPlan
    from gigmatch.monitoring.replay_driver import ReplayProgress, ReplayResult

# Hard caps: a replay is load on a server, and its plan is held in memory (10,000 jobs: ~400,000 rows simulated).
MAX_RATE = 200.0
MAX_DURATION = 3600.0
MAX_REQUESTS = 10_000
MAX_OUTCOME_DELAY = 300.0


@app.command("replay")
def replay(
    url: Annotated[str, typer.Option(help="The server to drive (loopback only, unless --allow-remote).")] = (
        "http://127.0.0.1:8000"
    ),
    seed: Annotated[int, typer.Option(help="Replay seed: the same seed gives the same requests and outcomes.")] = 0,
    scenario: Annotated[
        str, typer.Option(help="Drift scenario played from --drift-from-day (`gigmatch data scenarios`).")
    ] = "none",
    magnitude: Annotated[
        float | None, typer.Option(help="The scenario's magnitude \\[default: the scenario's own].")
    ] = None,
    drift_from_day: Annotated[int, typer.Option(min=0, help="First simulated day of the drift (days 0, 1, ...).")] = 0,
    jobs_per_day: Annotated[int, typer.Option(min=1, max=10_000, help="Requests (jobs) per simulated day.")] = 40,
    rate: Annotated[float, typer.Option(min=0.01, max=MAX_RATE, help="Requests per second.")] = 10.0,
    duration: Annotated[
        float, typer.Option(min=0.1, max=MAX_DURATION, help="Seconds during which requests are sent, at most.")
    ] = 60.0,
    max_requests: Annotated[int, typer.Option(min=1, max=MAX_REQUESTS, help="Requests to send, at most.")] = 600,
    outcome_delay: Annotated[
        float, typer.Option(min=0.0, max=MAX_OUTCOME_DELAY, help="Seconds from an answer to its outcomes.")
    ] = 2.0,
    position_bias: Annotated[
        float, typer.Option(min=0.0, max=10.0, help="eta: rank r is examined with probability (1/r)**eta.")
    ] = 1.0,
    timeout: Annotated[float, typer.Option(min=0.5, max=120.0, help="Seconds per HTTP call.")] = 10.0,
    record: Annotated[
        Path | None, typer.Option(help="Write a JSON-lines record of every request and its outcomes here.")
    ] = None,
    market_dir: Annotated[
        Path | None,
        typer.Option(
            help="Write the marketplace's records of what was posted (jobs, freelancers, profile history) here, "
            "one folder per replay: what monitoring's retraining joins the outcomes to (GIGMATCH_MARKET_DIR)."
        ),
    ] = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a non-loopback --url.")] = False,
    params_path: ParamsOption = DEFAULT_PARAMS_PATH,
) -> None:
    """Replay the marketplace against a running server: jobs to /v1/match, outcomes to /v1/outcomes.

    Jobs and applicants come from the simulator (params.yaml `simulate`, the
    training split's period): scenario `none`, then --scenario from
    --drift-from-day (a day is --jobs-per-day requests). Requests leave at
    --rate per second, at most --max-requests of them within --duration
    seconds; the outcomes of each answer are posted --outcome-delay seconds
    later (batched). Position bias: the client examines the candidate at
    served rank r with probability (1/r)**eta (--position-bias); an examined
    candidate gets its true simulated outcome, an unexamined one is reported
    rejected (0). The same --seed against the same model gives the same
    requests and outcomes.

    Prints a progress line each second (stderr) and a summary (stdout):
    requests, outcomes, live NDCG@10 per model version from the outcomes it
    reported. The API key comes from GIGMATCH_API_KEY.

    Exit codes: 0 every request answered and every outcome batch taken; 1 some
    failed (counted, named in the summary); 3 the server cannot be reached, is
    not ready or refuses the key (named by URL); 64 bad arguments, or a
    non-loopback --url without --allow-remote.
    """
    from gigmatch.monitoring.replay import ReplaySpec, plan_replay
    from gigmatch.monitoring.replay_driver import Pacing, ReplayError, check_server, check_target, run_replay
    from gigmatch.monitoring.scenarios import SCENARIOS

    base = check_target(url, allow_remote)  # before anything touches the network
    if scenario not in SCENARIOS:
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}", param_hint="--scenario"
        )
    requests = min(max_requests, max(1, math.floor(duration * rate)))
    spec = ReplaySpec(seed, requests, jobs_per_day, scenario, magnitude, drift_from_day, position_bias)
    params = load_params(params_path)
    api_key = os.environ.get("GIGMATCH_API_KEY")
    version = check_server(base, api_key, timeout)
    # The training split's share of the history, as `gigmatch data batch` draws: `none` is what the champion saw.
    window = 1.0 - params.split.valid_fraction - params.split.test_fraction
    plan = plan_replay(params.simulate, spec, window)
    phases = ", ".join(f"{p.scenario} from day {p.first // jobs_per_day} ({p.count} jobs)" for p in plan.phases)
    console.print(f"replaying {requests} jobs against {base} (serving version {version}): {phases}")
    progress = _ProgressLine()
    result = run_replay(plan, base, api_key, Pacing(rate, duration, outcome_delay, timeout), progress)
    progress.close()
    if record is not None:
        from gigmatch.monitoring.replay_driver import write_record

        write_record(record, plan, result)
    if market_dir is not None:
        _write_market(market_dir, plan, result)
    print(render_summary(plan, result, record))
    if result.fatal is not None:
        raise ReplayError(result.fatal)
    if not result.ok:
        raise typer.Exit(ExitCode.CHECK_FAILED)


def _write_market(directory: Path, plan: ReplayPlan, result: ReplayResult) -> None:
    import datetime as dt

    from gigmatch.data.feedback import write_market
    from gigmatch.monitoring.replay_market import market_tables

    sent_at = {index: r.sent_at for index, r in result.records.items() if r.sent_at is not None}
    tables = market_tables(plan, sent_at)
    if tables:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        written = write_market(directory, tables, f"replay-{stamp}-seed{plan.spec.seed}")
        console.print(f"marketplace records of {len(tables['jobs'])} jobs: {written}")


class _ProgressLine:
    """One line rewritten in place on a terminal; a line per tick otherwise (logs, tests)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, progress: ReplayProgress) -> None:
        line = progress_text(progress)
        if self.tty:
            sys.stderr.write(f"\r\x1b[2K{line}")
        else:
            sys.stderr.write(f"{line}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def progress_text(p: ReplayProgress) -> str:
    return (
        f"[{p.elapsed:6.1f}s] requests {p.sent:,}/{p.planned:,} sent, {p.answered:,} answered, {p.failed:,} failed"
        f" | outcomes {p.outcomes_posted:,} posted, {p.outcomes_accepted:,} accepted"
        f", {p.outcome_batches_failed:,} batches failed | live NDCG@10 {_ndcg_text(p.ndcg)}"
    )


def render_summary(plan: ReplayPlan, result: ReplayResult, record: Path | None) -> str:
    """The end-of-replay report: counts, latency, live and true NDCG@10 per model version and per phase, errors."""
    from gigmatch.monitoring.replay import ndcg_by

    p, spec = result.progress, plan.spec
    rate = p.sent / p.elapsed if p.elapsed else 0.0
    latency = result.latency_ms()
    lines = [
        f"replay finished in {p.elapsed:.1f} s: {result.stop_reason}",
        f"requests: {p.sent:,} of {p.planned:,} planned sent ({rate:.1f}/s), {p.answered:,} answered, "
        f"{p.failed:,} failed" + (f"; latency p50 {latency['p50']} ms, p99 {latency['p99']} ms" if latency else ""),
        f"outcomes: {p.outcomes_posted:,} posted in {p.outcome_batches:,} batches, {p.outcomes_accepted:,} accepted, "
        f"{p.outcomes_duplicate:,} duplicates, {p.outcomes_dropped:,} dropped, "
        f"{p.outcome_batches_failed:,} batches failed",
        f"live NDCG@10 per model version, on the outcomes reported (position bias eta={spec.position_bias:g}) and on"
        " the true ones (every candidate examined), over the requests with a shortlist or hire:",
    ]
    live, true = p.ndcg, ndcg_by(result.served, lambda s: s.model_version, truth=True)
    lines += [f"  version {v}: {_figure(live[v])}; true outcomes {_figure(true[v])}" for v in live] or ["  none yet"]
    if len(plan.phases) > 1:
        lines.append("by phase:")
        by_phase = ndcg_by(result.served, lambda s: f"{s.phase} (version {s.model_version})")
        true_by_phase = ndcg_by(result.served, lambda s: f"{s.phase} (version {s.model_version})", truth=True)
        lines += [f"  {k}: {_figure(v)}; true outcomes {_figure(true_by_phase[k])}" for k, v in by_phase.items()]
    if result.errors:
        lines.append("errors:")
        lines += [f"  {kind} x{count:,}: {message}" for kind, (count, message) in sorted(result.errors.items())]
    if record is not None:
        lines.append(f"record: {record}")
    return "\n".join(lines)


def _ndcg_text(figures: dict[str, NdcgFigure]) -> str:
    return ", ".join(f"v{version} {_figure(figure)}" for version, figure in figures.items()) or "-"


def _figure(figure: NdcgFigure) -> str:
    value = "n/a" if figure.value is None else f"{figure.value:.3f}"
    return f"{value} over {figure.graded:,} of {figure.requests:,} requests"
