"""The ``harness`` command line. Commands parse options and call the core.

TensorFlow is imported only by commands that need it, so ``harness --help`` and
``harness backbones`` answer at once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from harness import __version__
from harness.console import ProgressBars, echo, table, warn
from harness.errors import HarnessError
from harness.registry import WEIGHTS_CHOICES, list_backbones, registry, weights_available

DEFAULT_BACKBONE = "inception_v3"


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class HarnessGroup(click.Group):
    """Turns errors into one line (exit 1); ``--debug`` shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            if ctx.meta.get("harness.debug"):
                raise
            raise click.ClickException(str(exc)) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if ctx.meta.get("harness.debug"):
                raise
            message = str(exc).strip().splitlines()
            first = message[0] if message else ""
            raise click.ClickException(
                f"{type(exc).__name__}: {first} (run with --debug for the traceback)"
            ) from None


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Benchmark ImageNet backbones for retraining a final layer on your images."""
    ctx.meta["harness.debug"] = debug
    _quiet_tensorflow()


def weights_options(func: Any) -> Any:
    func = click.option(
        "--weights-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="HARNESS_WEIGHTS_DIR",
        help="Folder of Keras weight files (e.g. mobilenet_1_0_224_tf_no_top.h5) used before "
        "the Keras cache $KERAS_HOME/models. [env: HARNESS_WEIGHTS_DIR]",
    )(func)
    func = click.option(
        "--weights",
        type=click.Choice(WEIGHTS_CHOICES),
        default="imagenet",
        show_default=True,
        help="ImageNet weights, or random weights for speed-only runs (accuracy meaningless).",
    )(func)
    return func


def data_options(func: Any) -> Any:
    for decorator in reversed(
        [
            click.option(
                "--image-dir",
                required=True,
                type=click.Path(path_type=Path),
                help="Folder with one sub-folder of images per class.",
            ),
            click.option(
                "--testing-percentage",
                default=10.0,
                show_default=True,
                help="Percent of images for the test set.",
            ),
            click.option(
                "--validation-percentage",
                default=10.0,
                show_default=True,
                help="Percent of images for validation.",
            ),
            click.option(
                "--cache-dir",
                type=click.Path(file_okay=False, path_type=Path),
                envvar="HARNESS_CACHE_DIR",
                help="Bottleneck cache folder [default: the per-user cache directory].",
            ),
            click.option(
                "--no-cache", is_flag=True, help="Compute every bottleneck; read and write no cache."
            ),
            click.option("--input-size", type=int, help="Input size of a hub: backbone.", default=None),
        ]
    ):
        func = decorator(func)
    return func


class QuantizeList(click.ParamType):
    """Comma-separated TFLite quantizations."""

    name = "quantizations"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        from harness.results import QUANTIZATIONS

        if isinstance(value, tuple):
            return value
        items = tuple(dict.fromkeys(v.strip() for v in str(value).split(",") if v.strip()))
        bad = [v for v in items if v not in QUANTIZATIONS]
        if bad or not items:
            self.fail(f"{', '.join(bad) or 'nothing'}: choose from {', '.join(QUANTIZATIONS)}", param, ctx)
        return items


def train_options(func: Any) -> Any:
    for decorator in reversed(
        [
            click.option("--steps", default=4000, show_default=True, help="Training steps of the new layer."),
            click.option("--learning-rate", default=0.01, show_default=True),
            click.option("--batch-size", default=100, show_default=True, help="Training batch size."),
            click.option(
                "--eval-interval", default=100, show_default=True, help="Log every this many steps."
            ),
            click.option(
                "--seed", default=0, show_default=True, help="Seed of the training batches and init."
            ),
            click.option(
                "--extract-batch-size",
                default=32,
                show_default=True,
                help="Images per backbone call for bottlenecks.",
            ),
            click.option(
                "--export",
                "exports",
                type=click.Choice(["savedmodel", "tflite"]),
                multiple=True,
                help="Also write TFLite models (the SavedModel is always written).",
            ),
            click.option(
                "--quantize",
                type=QuantizeList(),
                default="none",
                show_default=True,
                help="TFLite variants, comma-separated: none, float16, dynamic, int8.",
            ),
            click.option("--flip-left-right", is_flag=True, help="Randomly mirror training images."),
            click.option(
                "--random-crop", default=0.0, help="Percent margin to crop training images randomly."
            ),
            click.option("--random-scale", default=0.0, help="Percent to scale training images randomly."),
            click.option("--random-brightness", default=0.0, help="Percent to vary brightness randomly."),
        ]
    ):
        func = decorator(func)
    return func


def pipeline_options(kw: dict[str, Any]) -> Any:
    """Build :class:`PipelineOptions` from the shared click options."""
    from harness.augment import Augmentation
    from harness.cache import default_cache_dir
    from harness.pipeline import PipelineOptions
    from harness.train import TrainConfig

    for name in ("steps", "batch_size", "eval_interval", "extract_batch_size"):
        if kw[name] < 1:
            raise HarnessError(f"--{name.replace('_', '-')} must be at least 1")
    cache_dir = None if kw["no_cache"] else str(kw["cache_dir"] or default_cache_dir())
    return PipelineOptions(
        weights=kw["weights"],
        weights_dir=str(kw["weights_dir"]) if kw["weights_dir"] else None,
        cache_dir=cache_dir,
        train=TrainConfig(
            steps=kw["steps"],
            learning_rate=kw["learning_rate"],
            batch_size=kw["batch_size"],
            eval_interval=kw["eval_interval"],
            seed=kw["seed"],
        ),
        extract_batch_size=kw["extract_batch_size"],
        tflite=kw["quantize"] if "tflite" in kw["exports"] else (),
        latency_runs=kw.get("latency_runs", 20),
        augmentation=Augmentation(
            flip_left_right=kw["flip_left_right"],
            random_crop=kw["random_crop"],
            random_scale=kw["random_scale"],
            random_brightness=kw["random_brightness"],
        ),
    )


def ensure_writable(*folders: Path | None) -> None:
    """Fail before any long work if an output folder cannot be written."""
    import tempfile

    for folder in folders:
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise HarnessError(f"output directory {folder} is not writable: {exc.strerror or exc}") from None


def report_dataset(dataset: Any) -> None:
    sizes = dataset.split_sizes()
    echo(
        f"{len(dataset.images.images)} images in {len(dataset.classes)} classes "
        f"({', '.join(dataset.classes)}): {sizes['training']} training, "
        f"{sizes['validation']} validation, {sizes['testing']} testing"
    )
    for message in dataset.images.warnings:
        warn(message)
    if dataset.images.skipped:
        warn(f"skipped {len(dataset.images.skipped)} files:")
        for path, reason in dataset.images.skipped:
            click.echo(f"  {path}: {reason}", err=True)


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
def train_cmd(**kw: Any) -> None:
    """Retrain a final layer on one backbone, evaluate it and export it."""
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
def label_cmd(model: Path, top_k: int, as_json: bool, images: tuple[str, ...]) -> None:
    """Classify IMAGES (files or folders) with an exported model, like label_image.py."""
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


class BackboneList(click.ParamType):
    """A comma-separated list of backbone names and wildcards (``mobilenet_v1_*``)."""

    name = "backbones"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
        names = [v.strip() for v in str(value).split(",") if v.strip()]
        if not names:
            self.fail("give at least one backbone", param, ctx)
        return names


SPEED_CHOICES = [
    "bottleneck_img_per_s",
    "latency_ms_p50",
    "bottleneck_ms_per_img_p50",
    *[f"tflite_{q}_latency_ms_p50" for q in ("none", "float16", "dynamic", "int8")],
]


def speed_option(name: str, help_text: str) -> Any:
    return click.option(
        name,
        "speed" if name == "--speed" else "by",
        type=click.Choice(SPEED_CHOICES),
        default="bottleneck_img_per_s",
        show_default=True,
        help=help_text,
    )


def results_dir_option(func: Any) -> Any:
    return click.option(
        "--results-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("reports/runs"),
        show_default=True,
        help="Where run JSON files are stored.",
    )(func)


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


@cli.command("report")
@click.argument("runs", nargs=-1)
@results_dir_option
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Where report.csv, report.md and report.html go.",
)
@click.option("--min-accuracy", default=0.9, show_default=True)
@click.option("--title", default="harness report", show_default=True)
@speed_option("--speed", "The speed column of the Pareto chart and the recommendation.")
def report_cmd(
    runs: tuple[str, ...], results_dir: Path, output_dir: Path, min_accuracy: float, title: str, speed: str
) -> None:
    """Re-render reports from stored RUNS (ids, id prefixes or files; default: all stored runs)."""
    from harness.report import render_report
    from harness.results import find_runs, load_run

    records = [load_run(p) for p in find_runs(list(runs), results_dir)]
    written = render_report(records, output_dir, title=title, min_accuracy=min_accuracy, speed=speed)
    echo(f"{len(records)} run(s): {written['html']} (also {written['md'].name}, {written['csv'].name})")


@cli.command("recommend")
@click.argument("runs", nargs=-1)
@results_dir_option
@click.option("--min-accuracy", type=float, required=True, help="Test accuracy target, e.g. 0.9.")
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
    from harness.analysis import accuracy_column, recommend, size_column
    from harness.results import find_runs, load_run, runs_frame

    frame = runs_frame([load_run(p) for p in find_runs(list(runs), results_dir)])
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
    from harness.analysis import compare_runs
    from harness.report import render_report
    from harness.results import find_runs, load_run, runs_frame

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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="harness")


if __name__ == "__main__":
    sys.exit(main())
