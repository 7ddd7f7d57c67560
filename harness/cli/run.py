"""``harness run``: several backbones, timed, stored and reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.cli.app import cli, import_tensorflow
from harness.cli.console import ProgressBars, echo, report_dataset, table
from harness.cli.fine_tune_options import fine_tune_options
from harness.cli.options import (
    DEFAULT_BACKBONE,
    data_options,
    input_size_option,
    pipeline_options,
)
from harness.cli.results_options import results_dir_option
from harness.cli.timing_options import timing_options
from harness.cli.types import BackboneList, ThreadCounts
from harness.errors import HarnessError
from harness.plan import DataOptions, FineTuneConfig, PipelineOptions, TimingOptions
from harness.schema import console_columns


@cli.command("run")
@data_options
@click.option(
    "--backbones",
    "backbone_names",
    type=BackboneList(),
    default=DEFAULT_BACKBONE,
    show_default=True,
    help="Comma-separated names or wildcards.",
)
@input_size_option
@pipeline_options
@fine_tune_options
@timing_options
@results_dir_option
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where this run's report goes [default: RESULTS_DIR/<run id>].",
)
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("harness-models"),
    show_default=True,
    help="Where each backbone's exported model goes.",
)
@click.option(
    "--repeats",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Retrain the head on this many splits (retrain.py's, then salted ones) from the cached "
    "bottlenecks and report the mean and sd of test accuracy; nothing is extracted again.",
)
@click.option(
    "--learning-curve",
    is_flag=True,
    help="Also retrain on 5, 10, 20, 50, 100 and all training images per class (3 draws each) "
    "and plot test accuracy against images per class.",
)
@click.option(
    "--min-accuracy",
    type=click.FloatRange(0, 1),
    default=0.9,
    show_default=True,
    help="Target of the report's recommendation.",
)
@click.option(
    "--audit",
    is_flag=True,
    help="Also audit the photos on each backbone's cached bottlenecks: label issues, duplicates "
    "and leaks, imbalance (the audit extra); the report shows them as thumbnails.",
)
@click.option(
    "--targets",
    "target_names",
    metavar="TARGETS",
    envvar="HARNESS_TARGETS",
    help="Where each exported model is measured, comma-separated: savedmodel, litert, litert-int8, "
    "openvino, onnxruntime (the deploy extra), a plugin's, or ssh://[user@]host[:port][/TARGET] "
    "[default: every target whose runtime is installed; none for none].",
)
@click.option(
    "--threads",
    type=ThreadCounts(),
    default="",
    help="Threads of each target, comma-separated, each measured (e.g. 1,4) [default: all cores].",
)
@click.pass_context
def run_cmd(
    ctx: click.Context,
    data: DataOptions,
    backbone_names: list[str],
    input_size: int | None,
    options: PipelineOptions,
    fine_tune: FineTuneConfig | None,
    timing: TimingOptions,
    results_dir: Path,
    report_dir: Path | None,
    models_dir: Path,
    repeats: int,
    learning_curve: bool,
    min_accuracy: float,
    audit: bool,
    target_names: str | None,
    threads: tuple[int, ...],
) -> None:
    """Benchmark several backbones and write a comparison report."""
    import dataclasses

    from harness.plan import check_audit_installed, parse_targets

    if audit:
        check_audit_installed()
    import_tensorflow(ctx)
    from harness.bench.accuracy import AccuracyOptions
    from harness.bench.envinfo import environment
    from harness.bench.runner import run_backbones
    from harness.results.report import render_report
    from harness.results.store import runs_dir, save_run
    from harness.workflow.prepare import model_folders, plan_backbones, prepare_run, with_fine_tuned

    options = dataclasses.replace(options, fine_tune=fine_tune, targets=parse_targets(target_names, threads))
    targets = plan_backbones(backbone_names, input_size)
    dataset, targets = prepare_run(
        targets,
        options,
        data,
        outputs=[runs_dir(results_dir), models_dir, report_dir or results_dir],
        models=with_fine_tuned(model_folders(targets, models_dir), fine_tune),
        reports=[report_dir] if report_dir else [],
    )
    report_dataset(dataset)
    names = ", ".join(t.spec.name for t in targets)
    echo(f"backbones: {names} on {options.device}, weights {options.weights}")
    record = run_backbones(
        targets,
        dataset,
        options,
        timing,
        models_dir,
        environment=environment(),
        log=echo,
        progress_for=ProgressBars,
        debug=ctx.meta.get("harness.debug", False),
        accuracy=AccuracyOptions(repeats=repeats, learning_curve=learning_curve, audit=audit),
    )
    path = save_run(record, runs_dir(results_dir))
    report_dir = report_dir or results_dir / record["run_id"]
    written = render_report(
        [record], report_dir, title=f"harness run {record['run_id']}", min_accuracy=min_accuracy
    )
    print_rows(record["rows"])
    echo(f"run saved to {path}")
    echo(f"report: {written['html']} (also {written['md'].name}, {written['csv'].name})")
    failed = [r["backbone"] for r in record["rows"] if r.get("error")]
    if failed and len(failed) == len(record["rows"]):
        raise HarnessError(f"every backbone failed ({', '.join(failed)}); see {path}")


def print_rows(rows: list[dict[str, Any]]) -> None:
    """The run's summary: the schema's console columns."""
    from harness.results.store import runs_frame
    from harness.results.tables import display_frame

    frame = display_frame(runs_frame([{"rows": rows}]), console_columns())
    shown = frame.astype(object).where(frame.notna(), "")
    echo(table(shown.to_dict("records"), list(frame.columns)))
