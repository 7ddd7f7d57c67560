"""Commands over stored runs: report, recommend and compare (no TensorFlow needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.cli.app import cli
from harness.cli.console import echo, table, warn
from harness.cli.results_options import results_dir_option, speed_option
from harness.errors import HarnessError


@cli.command("report")
@click.argument("runs", nargs=-1)
@results_dir_option
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where report.csv, report.md and report.html go [default: RESULTS_DIR].",
)
@click.option("--min-accuracy", type=click.FloatRange(0, 1), default=0.9, show_default=True)
@click.option("--title", default="harness report", show_default=True)
@speed_option("--speed", "The speed column of the Pareto chart and the recommendation.")
@click.option("--all-runs", is_flag=True, help="Show every run's rows, not only each backbone's latest run.")
def report_cmd(
    runs: tuple[str, ...],
    results_dir: Path,
    output_dir: Path | None,
    min_accuracy: float,
    title: str,
    speed: str,
    all_runs: bool,
) -> None:
    """Re-render reports from stored RUNS (ids, id prefixes or files; default: all stored runs)."""
    from harness.results.report import render_report
    from harness.results.store import find_runs, load_runs

    records = load_runs(find_runs(list(runs), results_dir), warn)
    written = render_report(
        records,
        output_dir or results_dir,
        title=title,
        min_accuracy=min_accuracy,
        speed=speed,
        all_runs=all_runs,
    )
    echo(f"{len(records)} run(s): {written['html']} (also {written['md'].name}, {written['csv'].name})")


@cli.command("recommend")
@click.argument("runs", nargs=-1)
@results_dir_option
@click.option(
    "--target",
    help="Decide for this deployment target (as measured by harness run --targets): the fastest "
    "backbone on it within the budgets, not significantly less accurate than the most accurate that fits.",
)
@click.option(
    "--threads", type=click.IntRange(1), help="With --target: that thread count [default: the most]."
)
@click.option("--max-latency-ms", type=float, help="With --target: latency p50 budget at batch 1.")
@click.option("--max-memory-mb", type=float, help="With --target: peak resident memory budget.")
@click.option(
    "--min-accuracy",
    type=click.FloatRange(0, 1),
    help="Test accuracy target, e.g. 0.9 (required without --target).",
)
@click.option("--device", type=click.Choice(["cpu", "gpu"]), help="Only rows measured on this device.")
@speed_option("--by", "The speed column to rank by (without --target).")
@click.option(
    "--max-size-mb",
    type=float,
    help="Only models at most this large (the target's file, the SavedModel, or the TFLite file).",
)
def recommend_cmd(
    runs: tuple[str, ...],
    results_dir: Path,
    target: str | None,
    threads: int | None,
    max_latency_ms: float | None,
    max_memory_mb: float | None,
    min_accuracy: float | None,
    device: str | None,
    by: str,
    max_size_mb: float | None,
) -> None:
    """Name the backbone to ship: on --target within its budgets, or the fastest by --by whose
    test accuracy meets --min-accuracy."""
    from harness.results.analysis import accuracy_column, recommend, size_column
    from harness.results.store import find_runs, load_runs, runs_frame

    records = load_runs(find_runs(list(runs), results_dir), warn)
    if target is not None:
        from harness.results.targets import Budget, recommend_for_target

        budget = Budget(max_latency_ms, max_memory_mb, max_size_mb, min_accuracy)
        pick = recommend_for_target(records, target, budget, threads=threads)
        echo(pick.message)
        if not pick.candidates.empty:
            cols = ["backbone", "threads", "latency_ms_p50", "latency_ms_p90", "peak_memory_mb", "size_mb"]
            cols += ["test_accuracy", "run_id"]
            echo(table(pick.candidates[cols].round(4).to_dict("records"), cols))
        if pick.row is None:
            sys.exit(2)
        return
    if max_latency_ms is not None or max_memory_mb is not None or threads is not None:
        raise HarnessError("--max-latency-ms, --max-memory-mb and --threads need --target")
    if min_accuracy is None:
        raise HarnessError("give --min-accuracy (or --target)")
    frame = runs_frame(records)
    rec = recommend(frame, min_accuracy, device=device, speed=by, max_size_mb=max_size_mb)
    echo(rec.message)
    if not rec.candidates.empty:
        cols = ["backbone", "device", by, accuracy_column(by), size_column(by), "run_id"]
        echo(table(rec.candidates[cols].round(4).to_dict("records"), cols))
    if rec.row is None:
        sys.exit(2)


@cli.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@results_dir_option
@click.option(
    "--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Also write an HTML report."
)
def compare_cmd(run_a: str, run_b: str, results_dir: Path, output_dir: Path | None) -> None:
    """Per-backbone speed-ups of RUN_B over RUN_A, each with its 95% interval (e.g. GPU over CPU,
    or two runs of one machine: "within noise" when the interval covers 1)."""
    from harness.results.report import render_report
    from harness.results.store import find_runs, load_run
    from harness.results.targets import speedups

    records = [load_run(p) for p in find_runs([run_a, run_b], results_dir)]
    merged = speedups(*records)
    if merged.empty:
        raise HarnessError("the two runs share no timed backbone")
    merged["interval"] = [f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(merged["ci_low"], merged["ci_high"])]
    cols = ["backbone", "measure", "a", "b", "speedup", "interval", "verdict"]
    echo(table(merged[cols].round(3).to_dict("records"), cols))
    echo(
        f"speed-up: above 1, B is faster; the {len(merged)} intervals hold together at 95% "
        "(Bonferroni; t on the log of each process's or pass's median)"
    )
    if output_dir:
        written = render_report(records, output_dir, title=f"harness: {run_a} vs {run_b}")
        echo(f"report: {written['html']}")
