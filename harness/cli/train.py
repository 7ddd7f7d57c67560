"""Commands about one backbone: backbones, train and label."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from harness.cli.app import cli, import_tensorflow
from harness.cli.console import ProgressBars, echo, table, warn
from harness.cli.finetune import fine_tune_options
from harness.cli.options import (
    AT_LEAST_1,
    DEFAULT_BACKBONE,
    data_options,
    input_size_option,
    pipeline_options,
    weights_dir_option,
)
from harness.cli.preflight import preflight, with_fine_tuned
from harness.cli.types import QUANTIZED_SUFFIX, with_quantized_export
from harness.errors import HarnessError, printable
from harness.registry import list_backbones, registry


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
                "aliases": _aliases_text(spec.aliases),
            }
        )
    columns = ["name", "input", "features", "params", "imagenet weights", "description", "aliases"]
    echo(table(rows, columns))
    for error in registry.load_errors:
        warn(error)


def _aliases_text(aliases: tuple[str, ...]) -> str:
    plain = [a for a in aliases if not a.endswith(QUANTIZED_SUFFIX)]
    quantized = len(plain) < len(aliases)
    return ", ".join(plain) + (f" (also {QUANTIZED_SUFFIX})" if quantized else "")


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
@click.pass_context
def train_cmd(
    ctx: click.Context,
    data: Any,
    backbone: str,
    input_size: int | None,
    options: Any,
    fine_tune: Any,
    output_dir: Path,
    print_misclassified: bool,
) -> None:
    """Retrain a final layer on one backbone, evaluate it and export it.

    With --fine-tune, the fine-tuned model goes to OUTPUT_DIR+ftN beside the head-only one.
    """
    import dataclasses

    import_tensorflow(ctx)
    from harness.bench.envinfo import versions
    from harness.bench.measure import tflite_latency
    from harness.bench.runner import TimingOptions
    from harness.workflow import retrain_final_layer

    spec = registry.get(backbone, input_size=input_size)
    options = dataclasses.replace(options, fine_tune=fine_tune)
    dataset, _ = preflight(
        [spec], options, data, output_dir.parent, models=with_fine_tuned([output_dir], fine_tune)
    )
    if backbone.endswith(QUANTIZED_SUFFIX):
        options = with_quantized_export(options, backbone, echo)
    options = options.for_backbone(spec)
    bars = ProgressBars(spec.name)
    try:
        result = retrain_final_layer(
            spec, dataset, options, output_dir, log=echo, progress=bars, versions=versions()
        )
    finally:
        bars.close()
    tflite_latency(result, runs=TimingOptions().latency_runs, log=echo)
    print_training_result(result, print_misclassified=print_misclassified)
    if fine_tune is not None:
        fine_tune_and_report(result, dataset, options, output_dir, print_misclassified)


def fine_tune_and_report(
    result: Any, dataset: Any, options: Any, output_dir: Path, print_misclassified: bool
) -> None:
    """``harness train --fine-tune``: the fine-tuned model, exported and compared with head-only."""
    from harness.bench.accuracy import test_outcomes
    from harness.bench.measure import tflite_latency
    from harness.bench.runner import TimingOptions
    from harness.results.significance import mcnemar_counts
    from harness.workflow.fine_tune import fine_tune_retrained

    target = output_dir.with_name(f"{output_dir.name}+{options.fine_tune.tag}")
    bars = ProgressBars(result.spec.name)
    try:
        tuned = fine_tune_retrained(result, dataset, options, target, log=echo, progress=bars)
    finally:
        bars.close()
    tflite_latency(tuned, runs=TimingOptions().latency_runs, log=echo)
    ft = tuned.fine_tuned
    echo(f"fine-tuned model ({ft.stopped}, kept epoch {ft.best_epoch}) in {target}:")
    print_training_result(tuned, print_misclassified=print_misclassified)
    head_only, fine_tuned, p = mcnemar_counts(
        test_outcomes(result, dataset)["correct"], test_outcomes(tuned, dataset)["correct"]
    )
    echo(
        f"against head-only {result.evaluation.accuracy:.1%}: only head-only right on {head_only}, "
        f"only fine-tuned right on {fine_tuned} test images, McNemar p = {p:.3g}"
    )


def print_training_result(result: Any, *, print_misclassified: bool) -> None:
    ev = result.evaluation
    if ev.n == 0:
        echo("final test accuracy: not measured (no test images)")
        if result.export_dir is not None:
            echo(f"exported model to {result.export_dir}")
        return
    random_note = " (random weights: not a real result)" if result.metadata["weights"] == "random" else ""
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


@cli.command("label")
@click.option("--model", required=True, type=click.Path(path_type=Path), help="An exported model directory.")
@click.option("--top-k", type=AT_LEAST_1, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of text.")
@click.option(
    "--runtime",
    type=click.Choice(["auto", "tf", "litert"]),
    default="auto",
    show_default=True,
    help="For a model directory: the SavedModel on TensorFlow, or its float model.tflite on "
    "LiteRT (written by --export tflite); auto uses model.tflite when it is there.",
)
@click.argument("images", nargs=-1, required=True)
@click.pass_context
def label_cmd(
    ctx: click.Context, model: Path, top_k: int, as_json: bool, runtime: str, images: tuple[str, ...]
) -> None:
    """Classify IMAGES (files or folders) with an exported model, like label_image.py."""
    import_tensorflow(ctx)
    from harness.deploy.label import classify_files, collect_images, load_classifier
    from harness.deploy.tflite import tflite_file_name

    lite = model / tflite_file_name("none")
    if model.is_dir() and runtime != "tf" and lite.is_file():
        model = lite
    elif model.is_dir() and runtime == "litert":
        raise HarnessError(f"no {lite}: export the model with --export tflite to label on LiteRT")
    classifier = load_classifier(model)
    files, skipped = collect_images(list(images))
    results, failed = classify_files(classifier, files, top_k)
    for row in results:
        if as_json:
            echo(json.dumps(row))
        else:
            echo(row["image"])
            for item in row["top"]:
                echo(f"  {item['label']} {item['score']:.5f}")
    for path, reason in skipped + failed:
        warn(f"skipped {printable(str(path))}: {reason}")
    if not results:
        raise HarnessError("no image could be classified")
