"""Commands that build backbones: backbones, train, label and run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.cli import (
    DEFAULT_BACKBONE,
    BackboneList,
    cli,
    data_options,
    ensure_writable,
    import_tensorflow,
    pipeline_options,
    report_dataset,
    results_dir_option,
    train_options,
    weights_options,
)
from harness.console import ProgressBars, echo, table, warn
from harness.errors import HarnessError
from harness.registry import list_backbones, registry, weights_available


@cli.command("backbones")
@click.argument("pattern", default="*")
@click.option("--weights-dir", type=click.Path(file_okay=False, path_type=Path), envvar="HARNESS_WEIGHTS_DIR")
def backbones_cmd(pattern: str, weights_dir: Path | None) -> None:
    """List registered backbones matching PATTERN (wildcards allowed)."""
    rows = []
    for spec in list_backbones(pattern):
        available = weights_available(spec, weights_dir)
        rows.append(
            {
                "name": spec.name,
                "input": spec.input_size,
                "features": spec.feature_size,
                "params": f"{spec.params / 1e6:.2f}M" if spec.params else "?",
                "imagenet weights": {True: "on disk", False: "not on disk", None: "-"}[available],
                "description": spec.description,
            }
        )
    echo(table(rows, ["name", "input", "features", "params", "imagenet weights", "description"]))
    for error in registry.load_errors:
        warn(error)


@cli.command("train")
@data_options
@click.option("--backbone", default=DEFAULT_BACKBONE, show_default=True, help="Backbone name or hub:HANDLE.")
@weights_options
@train_options
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("harness-model"),
    show_default=True,
    help="Where the exported SavedModel, labels.txt and harness.json go.",
)
@click.option("--print-misclassified", is_flag=True, help="List the misclassified test images.")
@click.pass_context
def train_cmd(ctx: click.Context, **kw: Any) -> None:
    """Retrain a final layer on one backbone, evaluate it and export it."""
    import_tensorflow(ctx)
    from harness.envinfo import versions
    from harness.pipeline import prepare_dataset, train_backbone

    spec = registry.get(kw["backbone"], input_size=kw["input_size"])
    options = pipeline_options(kw)
    ensure_writable(kw["output_dir"].parent, Path(options.cache_dir) if options.cache_dir else None)
    dataset = prepare_dataset(kw["image_dir"], kw["validation_percentage"], kw["testing_percentage"])
    report_dataset(dataset)
    bars = ProgressBars(spec.name)
    try:
        result = train_backbone(
            spec, dataset, options, kw["output_dir"], log=echo, progress=bars, versions=versions()
        )
    finally:
        bars.close()
    print_training_result(result, print_misclassified=kw["print_misclassified"])


def print_training_result(result: Any, *, print_misclassified: bool) -> None:
    ev = result.evaluation
    random_note = " (random weights: not a real result)" if result.metadata["weights"] == "random" else ""
    echo(
        f"final test accuracy = {ev.accuracy * 100:.1f}% (N={ev.n}, 95% CI "
        f"{ev.ci95[0] * 100:.1f}-{ev.ci95[1] * 100:.1f}%){random_note}"
    )
    echo(
        table(
            [
                {
                    "class": r["class"],
                    "precision": f"{r['precision']:.3f}",
                    "recall": f"{r['recall']:.3f}",
                    "f1": f"{r['f1']:.3f}",
                    "support": r["support"],
                }
                for r in ev.per_class
            ],
            ["class", "precision", "recall", "f1", "support"],
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


@cli.command("label")
@click.option("--model", required=True, type=click.Path(path_type=Path), help="An exported model directory.")
@click.option("--top-k", default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of text.")
@click.argument("images", nargs=-1, required=True)
@click.pass_context
def label_cmd(ctx: click.Context, model: Path, top_k: int, as_json: bool, images: tuple[str, ...]) -> None:
    """Classify IMAGES (files or folders) with an exported model, like label_image.py."""
    import_tensorflow(ctx)
    import json

    from harness.label import classify_files, collect_images, load_classifier

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
        warn(f"skipped {path}: {reason}")
    if not results:
        raise HarnessError("no image could be classified")


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
@weights_options
@train_options
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--timing-images", default=256, show_default=True, help="Images per timed extraction pass.")
@click.option("--timing-repeats", default=3, show_default=True, help="Timed passes per backbone.")
@click.option("--latency-runs", default=20, show_default=True, help="Timed single-image calls of the export.")
@results_dir_option
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where this run's report goes [default: RESULTS_DIR/../<run id>].",
)
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("harness-models"),
    show_default=True,
    help="Where each backbone's exported model goes.",
)
@click.option("--min-accuracy", default=0.9, show_default=True, help="Target of the report's recommendation.")
@click.pass_context
def run_cmd(ctx: click.Context, **kw: Any) -> None:
    """Benchmark several backbones and write a comparison report."""
    import_tensorflow(ctx)
    from harness.envinfo import environment
    from harness.pipeline import prepare_dataset
    from harness.report import render_report
    from harness.results import save_run
    from harness.runner import TimingOptions, run_backbones

    specs = registry.match(kw["backbone_names"], input_size=kw["input_size"])
    options = pipeline_options(kw)
    for name in ("timing_images", "timing_repeats", "latency_runs"):
        if kw[name] < 1:
            raise HarnessError(f"--{name.replace('_', '-')} must be at least 1")
    timing = TimingOptions(
        device=kw["device"],
        timing_images=kw["timing_images"],
        timing_repeats=kw["timing_repeats"],
        latency_runs=kw["latency_runs"],
    )
    report_dir = kw["report_dir"]
    ensure_writable(
        kw["results_dir"],
        kw["models_dir"],
        report_dir or kw["results_dir"].parent,
        Path(options.cache_dir) if options.cache_dir else None,
    )
    dataset = prepare_dataset(kw["image_dir"], kw["validation_percentage"], kw["testing_percentage"])
    report_dataset(dataset)
    echo(f"backbones: {', '.join(s.name for s in specs)} on {kw['device']}, weights {kw['weights']}")
    record = run_backbones(
        specs,
        dataset,
        options,
        timing,
        kw["models_dir"],
        environment=environment(),
        log=echo,
        progress_for=ProgressBars,
        debug=ctx.meta.get("harness.debug", False),
    )
    path = save_run(record, kw["results_dir"])
    report_dir = report_dir or kw["results_dir"].parent / record["run_id"]
    written = render_report(
        [record], report_dir, title=f"harness run {record['run_id']}", min_accuracy=kw["min_accuracy"]
    )
    print_rows(record["rows"])
    echo(f"run saved to {path}")
    echo(f"report: {written['html']} (also {written['md'].name}, {written['csv'].name})")
    failed = [r["backbone"] for r in record["rows"] if r.get("error")]
    if failed and len(failed) == len(record["rows"]):
        raise HarnessError(f"every backbone failed ({', '.join(failed)}); see {path}")


def print_rows(rows: list[dict[str, Any]]) -> None:
    from harness.report import display_frame
    from harness.results import runs_frame

    frame = display_frame(runs_frame([{"rows": rows}]))
    keep = [
        "backbone",
        "weights",
        "bottleneck img/s",
        "latency ms p50",
        "test acc (95% CI)",
        "cache",
        "error",
    ]
    shown = frame[keep].astype(object).where(frame[keep].notna(), "")
    echo(table(shown.to_dict("records"), keep))
