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
def report_cmd(
    runs: tuple[str, ...],
    results_dir: Path,
    output_dir: Path | None,
    min_accuracy: float,
    title: str,
    speed: str,
) -> None:
    """Re-render reports from stored RUNS (ids, id prefixes or files; default: all stored runs)."""
    from harness.results.report import render_report
    from harness.results.store import find_runs, load_runs

    records = load_runs(find_runs(list(runs), results_dir), warn)
    written = render_report(
        records, output_dir or results_dir, title=title, min_accuracy=min_accuracy, speed=speed
    )
    echo(f"{len(records)} run(s): {written['html']} (also {written['md'].name}, {written['csv'].name})")


@cli.command("recommend")
@click.argument("runs", nargs=-1)
@results_dir_option
@click.option(
    "--min-accuracy", type=click.FloatRange(0, 1), required=True, help="Test accuracy target, e.g. 0.9."
)
@click.option("--device", type=click.Choice(["cpu", "gpu"]), help="Only rows measured on this device.")
@speed_option("--by", "The speed column to rank by.")
@click.option(
    "--max-size-mb", type=float, help="Only models at most this large (SavedModel, or the TFLite file)."
)
def recommend_cmd(
    runs: tuple[str, ...],
    results_dir: Path,
    min_accuracy: float,
    device: str | None,
    by: str,
    max_size_mb: float | None,
) -> None:
    """Name the fastest backbone whose test accuracy meets --min-accuracy."""
    from harness.results.analysis import accuracy_column, recommend, size_column
    from harness.results.store import find_runs, load_runs, runs_frame

    frame = runs_frame(load_runs(find_runs(list(runs), results_dir), warn))
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
    """Per-backbone speed-up of RUN_B over RUN_A (e.g. GPU over CPU)."""
    from harness.results.analysis import compare_runs
    from harness.results.report import render_report
    from harness.results.store import find_runs, load_run, runs_frame

    records = [load_run(p) for p in find_runs([run_a, run_b], results_dir)]
    a, b = (runs_frame([r]) for r in records)
    merged = compare_runs(a[a["error"].isna()], b[b["error"].isna()])
    if merged.empty:
        raise HarnessError("the two runs share no successful backbone")
    cols = [
        "backbone",
        "device_a",
        "device_b",
        "bottleneck_img_per_s_a",
        "bottleneck_img_per_s_b",
        "throughput_speedup",
        "latency_ms_p50_a",
        "latency_ms_p50_b",
        "latency_speedup",
    ]
    echo(table(merged[cols].round(3).to_dict("records"), cols))
    if output_dir:
        written = render_report(records, output_dir, title=f"harness: {run_a} vs {run_b}")
        echo(f"report: {written['html']}")
