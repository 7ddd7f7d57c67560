"""Commands about one backbone: backbones and train."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.cli.app import cli, import_tensorflow
from harness.cli.console import ProgressBars, echo, print_audit, report_dataset, table, warn
from harness.cli.fine_tune_options import fine_tune_options
from harness.cli.options import (
    DEFAULT_BACKBONE,
    data_options,
    input_size_option,
    pipeline_options,
    weights_dir_option,
)
from harness.plan import DEFAULT_LATENCY_RUNS, DataOptions, FineTuneConfig, PipelineOptions, Weights
from harness.registry import BackboneSpec, list_backbones, registry

if TYPE_CHECKING:
    from harness.workflow import Dataset, Retrained


@cli.command("backbones")
@click.argument("pattern", default="*")
@weights_dir_option
def backbones_cmd(pattern: str, weights_dir: Path | None) -> None:
    """List registered backbones matching PATTERN (wildcards allowed)."""
    rows = []
    for spec in list_backbones(pattern):
        rows.append(
            {
                "name": spec.name,
                "input": spec.input_size,
                "features": spec.feature_size,
                "params": f"{spec.params / 1e6:.2f}M" if spec.params else "?",
                "imagenet weights": spec.weights_status(weights_dir),
                "description": spec.description,
                "aliases": _aliases_text(spec),
            }
        )
    columns = ["name", "input", "features", "params", "imagenet weights", "description", "aliases"]
    echo(table(rows, columns))
    for error in registry.load_errors:
        warn(error)


def _aliases_text(spec: BackboneSpec) -> str:
    """Plain aliases, then the exporting ones by what they add to a plain name."""
    plain = list(spec.aliases)
    added = set()
    for name, _ in spec.alias_exports:
        base = max((p for p in plain if name.startswith(p + "_")), key=len, default=None)
        added.add(name[len(base) :] if base else name)
    extra = f" (also {', '.join(sorted(added))})" if added else ""
    return ", ".join(plain) + extra


@cli.command("targets")
def targets_cmd() -> None:
    """List the deployment targets harness run --targets measures on, and whether they run here."""
    from harness.plan import registered_targets

    rows = []
    for spec in registered_targets().values():
        missing = spec.missing()
        status = "installed" if not missing else f"needs {', '.join(missing)} ({spec.extra or 'pip'})"
        rows.append({"name": spec.name, "runs": spec.description, "here": status})
    remote = "ssh://[user@]host[:port][/TARGET]"
    rows.append({"name": remote, "runs": "TARGET on a remote machine", "here": ""})
    echo(table(rows, ["name", "runs", "here"]))


@cli.command("train")
@data_options
@click.option("--backbone", default=DEFAULT_BACKBONE, show_default=True, help="Backbone name or hub:HANDLE.")
@input_size_option
@pipeline_options
@fine_tune_options
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("harness-model"),
    show_default=True,
    help="Where the exported SavedModel, labels.txt and harness.json go.",
)
@click.option("--print-misclassified", is_flag=True, help="List the misclassified test images.")
@click.option(
    "--audit",
    is_flag=True,
    help="Also audit the photos on the cached bottlenecks: label issues, duplicates and leaks, "
    "imbalance (the audit extra).",
)
@click.pass_context
def train_cmd(
    ctx: click.Context,
    data: DataOptions,
    backbone: str,
    input_size: int | None,
    options: PipelineOptions,
    fine_tune: FineTuneConfig | None,
    output_dir: Path,
    print_misclassified: bool,
    audit: bool,
) -> None:
    """Retrain a final layer on one backbone, evaluate it and export it.

    With --fine-tune, the fine-tuned model goes to OUTPUT_DIR+ftN beside the head-only one.
    """
    import dataclasses

    from harness.plan import check_audit_installed

    if audit:
        check_audit_installed()
    import_tensorflow(ctx)
    from harness.bench.envinfo import versions
    from harness.bench.measure import tflite_latency
    from harness.workflow import retrain_final_layer
    from harness.workflow.prepare import plan_backbones, prepare_run, with_fine_tuned

    options = dataclasses.replace(options, fine_tune=fine_tune)
    (target,) = plan_backbones([backbone], input_size)
    dataset, (target,) = prepare_run(
        [target],
        options,
        data,
        outputs=[output_dir.parent],
        models=with_fine_tuned([output_dir], fine_tune),
    )
    report_dataset(dataset)
    spec = target.spec
    options = options.for_backbone(spec)
    bars = ProgressBars(spec.name)
    try:
        result = retrain_final_layer(
            target, dataset, options, output_dir, log=echo, progress=bars, versions=versions()
        )
    finally:
        bars.close()
    tflite_latency(result, runs=DEFAULT_LATENCY_RUNS, log=echo)
    print_training_result(result, print_misclassified=print_misclassified)
    if audit:
        from harness.workflow.audit import audit_extracted

        print_audit(audit_extracted(result.extraction, dataset, options), top=10)
    if fine_tune is not None:
        fine_tune_and_report(result, dataset, options, output_dir, print_misclassified)


def fine_tune_and_report(
    result: Retrained, dataset: Dataset, options: PipelineOptions, output_dir: Path, print_misclassified: bool
) -> None:
    """``harness train --fine-tune``: the fine-tuned model, exported and compared with head-only."""
    from harness.bench.accuracy import against_head_only
    from harness.bench.measure import tflite_latency
    from harness.workflow.fine_tune import fine_tune_retrained

    target = output_dir.with_name(f"{output_dir.name}+{options.fine_tune.tag}")
    bars = ProgressBars(result.spec.name)
    try:
        tuned = fine_tune_retrained(result, dataset, options, target, log=echo, progress=bars)
    finally:
        bars.close()
    tflite_latency(tuned, runs=DEFAULT_LATENCY_RUNS, log=echo)
    ft = tuned.fine_tuned
    echo(f"fine-tuned model ({ft.stopped}, kept epoch {ft.best_epoch}) in {target}:")
    print_training_result(tuned, print_misclassified=print_misclassified)
    head_only, fine_tuned, p = against_head_only(result, tuned, dataset)
    echo(
        f"against head-only {result.evaluation.accuracy:.1%}: only head-only right on {head_only}, "
        f"only fine-tuned right on {fine_tuned} test images, McNemar p = {p:.3g}"
    )


def print_training_result(result: Retrained, *, print_misclassified: bool) -> None:
    ev = result.evaluation
    if ev.n == 0:
        echo("final test accuracy: not measured (no test images)")
        if result.export_dir is not None:
            echo(f"exported model to {result.export_dir}")
        return
    random_note = (
        " (random weights: not a real result)" if result.metadata["weights"] == Weights.RANDOM else ""
    )
    echo(
        f"final test accuracy = {ev.accuracy * 100:.1f}% (N={ev.n}, 95% CI "
        f"{ev.ci95[0] * 100:.1f}-{ev.ci95[1] * 100:.1f}%){random_note}"
    )
    metrics = ["precision", "recall", "f1"]
    echo(
        table(
            [
                {"class": r["class"], **{m: f"{r[m]:.3f}" for m in metrics}, "support": r["support"]}
                for r in ev.per_class
            ],
            ["class", *metrics, "support"],
        )
    )
    classes = [r["class"] for r in ev.per_class]
    echo("confusion matrix (rows: true, columns: predicted):")
    echo(
        table(
            [
                {"true": c, **{p: ev.confusion[i][j] for j, p in enumerate(classes)}}
                for i, c in enumerate(classes)
            ],
            ["true", *classes],
        )
    )
    if print_misclassified:
        echo(f"misclassified test images ({len(ev.misclassified)}):")
        for m in ev.misclassified:
            echo(f"  {m['image']}: {m['true']} -> {m['predicted']} ({m['confidence']:.3f})")
    if result.export_dir is not None:
        echo(f"exported model to {result.export_dir}")
    if result.graphdef is not None:
        echo(f"frozen graph for label_image: {result.graphdef[0]} (labels {result.graphdef[1]})")
