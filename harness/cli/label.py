"""``harness label``: classify images with an exported model, like label_image.py."""

from __future__ import annotations

import json
from pathlib import Path

import click

from harness.cli.app import cli, import_tensorflow
from harness.cli.console import echo, warn
from harness.cli.options import AT_LEAST_1
from harness.cli.types import choice
from harness.errors import HarnessError, printable
from harness.plan import Runtime


@cli.command("label")
@click.option("--model", required=True, type=click.Path(path_type=Path), help="An exported model directory.")
@click.option("--top-k", type=AT_LEAST_1, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of text.")
@click.option(
    "--runtime",
    type=choice(Runtime),
    default=Runtime.AUTO.value,
    show_default=True,
    help="For a model directory: the SavedModel on TensorFlow, or its float model.tflite on "
    "LiteRT (written by --export tflite); auto uses model.tflite when it is there.",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Answer unknown when the best (temperature-scaled) score is under this.",
)
@click.argument("images", nargs=-1, required=True)
@click.pass_context
def label_cmd(
    ctx: click.Context,
    model: Path,
    top_k: int,
    as_json: bool,
    runtime: Runtime,
    min_confidence: float,
    images: tuple[str, ...],
) -> None:
    """Classify IMAGES (files or folders) with an exported model, like label_image.py."""
    import_tensorflow(ctx)
    from harness.deploy.label import classify_files, collect_images, load_classifier
    from harness.deploy.tflite import tflite_file_name

    lite = model / tflite_file_name("none")
    if model.is_dir() and runtime is not Runtime.TF and lite.is_file():
        model = lite
    elif model.is_dir() and runtime is Runtime.LITERT:
        raise HarnessError(f"no {lite}: export the model with --export tflite to label on LiteRT")
    classifier = load_classifier(model)
    files, skipped = collect_images(list(images))
    results, failed = classify_files(classifier, files, top_k, min_confidence)
    for row in results:
        if as_json:
            echo(json.dumps(row))
        else:
            echo(row["image"])
            if row["unknown"]:
                echo(f"  unknown (best score {row['top'][0]['score']:.5f} under {min_confidence})")
            for item in row["top"]:
                echo(f"  {item['label']} {item['score']:.5f}")
    for path, reason in skipped + failed:
        warn(f"skipped {printable(str(path))}: {reason}")
    if not results:
        raise HarnessError("no image could be classified")
