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
from harness.console import echo, warn
from harness.errors import HarnessError, first_line
from harness.registry import WEIGHTS_CHOICES
from harness.results import QUANTIZATIONS

DEFAULT_BACKBONE = "inception_v3"


def _quiet_tensorflow(debug: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if debug else "3")


def import_tensorflow(ctx: click.Context) -> None:
    """Import TensorFlow with its start-up chatter (CUDA probes, absl notices) silenced.

    Those lines are written by C++ straight to file descriptor 2, so Python's logging
    cannot stop them; ``--debug`` keeps them.
    """
    if "tensorflow" in sys.modules or ctx.meta.get("harness.debug"):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


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
            raise click.ClickException(
                f"{type(exc).__name__}: {first_line(exc)} (run with --debug for the traceback)"
            ) from None


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Benchmark ImageNet backbones for retraining a final layer on your images."""
    ctx.meta["harness.debug"] = debug
    _quiet_tensorflow(debug)


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
                type=int,
                help="Images per backbone call for bottlenecks [default: 16 on CPU, 32 on GPU].",
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
    from harness.pipeline import PipelineOptions, default_extract_batch_size
    from harness.train import TrainConfig

    if kw["extract_batch_size"] is None:
        kw = dict(kw, extract_batch_size=default_extract_batch_size(kw.get("device", "cpu")))
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
    *[f"tflite_{q}_latency_ms_p50" for q in QUANTIZATIONS],
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


# The commands live in two modules that register themselves on `cli` when imported.
from harness import cli_commands, cli_results  # noqa: E402, F401


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="harness")


if __name__ == "__main__":
    sys.exit(main())
