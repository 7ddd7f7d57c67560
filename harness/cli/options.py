"""Option types and option groups shared by the commands.

Each group decorator adds its click options and hands the command one typed value
built from them (``data``, ``options``, ``timing``), never a dict read by string keys.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from harness.cli.types import QuantizeList, choice
from harness.errors import RAY_INSTALL_HINT, HarnessError
from harness.plan import (
    CLASS_WEIGHTS,
    DataOptions,
    Device,
    PipelineOptions,
    Precision,
    Runtime,
    Weights,
)

DEFAULT_BACKBONE = "inception_v3"
AT_LEAST_1 = click.IntRange(min=1)
PERCENT = click.FloatRange(0, 100)


def option_group(
    dest: str, build: Callable[..., Any], *options: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """A decorator adding ``options`` and passing ``dest=build(**their values)`` instead."""

    def probe() -> None: ...

    for option in options:
        option(probe)
    names = [p.name for p in getattr(probe, "__click_params__", [])]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs[dest] = build(**{name: kwargs.pop(name) for name in names})
            return func(*args, **kwargs)

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper

    return decorate


def weights_dir_option(func: Any) -> Any:
    return click.option(
        "--weights-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="HARNESS_WEIGHTS_DIR",
        help="Folder of weight files (e.g. mobilenet_1_0_224_tf_no_top.h5) used before "
        "the Keras cache $KERAS_HOME/models. [env: HARNESS_WEIGHTS_DIR]",
    )(func)


def build_data_options(
    image_dir: Path, testing_percentage: float, validation_percentage: float
) -> DataOptions:
    return DataOptions(image_dir, validation_percentage, testing_percentage)


data_options = option_group(
    "data",
    build_data_options,
    click.option(
        "--image-dir",
        required=True,
        type=click.Path(path_type=Path),
        help="Folder with one sub-folder of images per class.",
    ),
    click.option(
        "--testing-percentage",
        type=PERCENT,
        default=10.0,
        show_default=True,
        help="Percent of images for the test set.",
    ),
    click.option(
        "--validation-percentage",
        type=PERCENT,
        default=10.0,
        show_default=True,
        help="Percent of images for validation.",
    ),
)

input_size_option = click.option(
    "--input-size", type=AT_LEAST_1, default=None, help="Input size of a hub: backbone."
)


ray_option = click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    metavar="[ADDRESS]",
    help="Compute missing bottlenecks with Ray Data: alone, on a local Ray (or RAY_ADDRESS's); "
    "auto or ray://HOST:PORT joins that cluster. Needs the ray extra.",
)


def checked_ray(address: str | None) -> str | None:
    """``--ray``'s address; one line saying how to install Ray when it is missing."""
    if address is not None and importlib.util.find_spec("ray") is None:
        raise click.UsageError(RAY_INSTALL_HINT)
    return address


def build_pipeline_options(
    *,
    weights: Weights,
    weights_dir: Path | None,
    cache_dir: Path | None,
    no_cache: bool,
    steps: int,
    learning_rate: float,
    batch_size: int,
    eval_interval: int,
    seed: int,
    class_weights: str,
    device: Device,
    extract_batch_size: int | None,
    runtime: Runtime,
    precision: Precision,
    exports: tuple[str, ...],
    quantize: tuple[str, ...],
    summaries_dir: Path | None,
    flip_left_right: bool,
    random_crop: float,
    random_scale: float,
    random_brightness: float,
    ray_address: str | None,
) -> PipelineOptions:
    """The run's :class:`harness.plan.PipelineOptions` from the shared options; defaults
    that depend on others (the extraction batch on the device) come from the plan."""
    from harness.plan import Augmentation, GraphdefExport, TrainConfig, default_cache_dir

    device, runtime, precision = Device.parse(device), Runtime.parse(runtime), Precision.parse(precision)
    try:
        runtime.decide(device)
    except HarnessError as exc:
        raise click.BadParameter(str(exc), param_hint="--runtime") from None
    try:
        precision.check(runtime, device)
    except HarnessError as exc:
        raise click.BadParameter(str(exc), param_hint="--precision") from None
    return PipelineOptions(
        weights=weights,
        weights_dir=str(weights_dir) if weights_dir else None,
        cache_dir=None if no_cache else str(cache_dir or default_cache_dir()),
        train=TrainConfig(
            steps=steps,
            learning_rate=learning_rate,
            batch_size=batch_size,
            eval_interval=eval_interval,
            seed=seed,
            class_weight=class_weights,
        ),
        device=device,
        extract_batch_size=extract_batch_size or device.extract_batch_size,
        runtime=runtime,
        precision=precision,
        augmentation=Augmentation(flip_left_right, random_crop, random_scale, random_brightness),
        tflite=quantize if "tflite" in exports else (),
        graphdef=GraphdefExport() if "graphdef" in exports else None,
        summaries_dir=str(summaries_dir) if summaries_dir else None,
        ray=checked_ray(ray_address),
    )


pipeline_options = option_group(
    "options",
    build_pipeline_options,
    click.option(
        "--weights",
        type=choice(Weights),
        default=Weights.IMAGENET.value,
        show_default=True,
        help="ImageNet weights, or random weights for speed-only runs (accuracy meaningless).",
    ),
    weights_dir_option,
    click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="HARNESS_CACHE_DIR",
        help="Bottleneck cache folder [default: the per-user cache directory].",
    ),
    click.option("--no-cache", is_flag=True, help="Compute every bottleneck; read and write no cache."),
    click.option(
        "--steps", type=AT_LEAST_1, default=4000, show_default=True, help="Training steps of the new layer."
    ),
    click.option(
        "--learning-rate", type=click.FloatRange(min=0, min_open=True), default=0.01, show_default=True
    ),
    click.option(
        "--batch-size", type=AT_LEAST_1, default=100, show_default=True, help="Training batch size."
    ),
    click.option(
        "--eval-interval", type=AT_LEAST_1, default=100, show_default=True, help="Log every this many steps."
    ),
    click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed of the training batches and init."
    ),
    click.option(
        "--class-weights",
        type=click.Choice(CLASS_WEIGHTS),
        default="none",
        show_default=True,
        help="balanced: weigh each class's photos n / (k * n_class) in the new layer's loss, so a "
        "small class counts as much as a large one (see balanced acc).",
    ),
    click.option(
        "--device",
        type=choice(Device),
        default=Device.CPU.value,
        show_default=True,
        help="Where the backbone runs.",
    ),
    click.option(
        "--extract-batch-size",
        type=AT_LEAST_1,
        help="Images per backbone call for bottlenecks [default: 16 on CPU, 32 on GPU].",
    ),
    click.option(
        "--runtime",
        type=choice(Runtime),
        default=Runtime.AUTO.value,
        show_default=True,
        help="What runs the backbone for bottlenecks: TensorFlow, the LiteRT interpreter (XNNPACK), "
        "or OpenVINO (the deploy extra); on a CPU, auto times each installed runtime on every "
        "backbone and uses the fastest (said, and stored in the row); TensorFlow on a GPU.",
    ),
    click.option(
        "--precision",
        type=choice(Precision),
        default=Precision.FP32.value,
        show_default=True,
        help="Arithmetic of bottleneck extraction: bf16 (OpenVINO, on CPUs with AVX512_BF16 or AMX) "
        "is faster; the run then also trains on fp32 features and reports McNemar against them.",
    ),
    click.option(
        "--export",
        "exports",
        type=click.Choice(["tflite", "graphdef"]),
        multiple=True,
        help="Also write TFLite models (tflite), or retrain.py's frozen output_graph.pb and "
        "output_labels.txt for label_image (graphdef); the SavedModel is always written.",
    ),
    click.option(
        "--quantize",
        type=QuantizeList(),
        default="none",
        show_default=True,
        help="TFLite variants, comma-separated: none, float16, dynamic, int8.",
    ),
    click.option(
        "--summaries-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Write TensorBoard curves (accuracy, cross_entropy) to DIR/<backbone>/{train,validation}.",
    ),
    click.option("--flip-left-right", is_flag=True, help="Randomly mirror training images."),
    click.option(
        "--random-crop", type=PERCENT, default=0.0, help="Percent margin to crop training images randomly."
    ),
    click.option(
        "--random-scale", type=PERCENT, default=0.0, help="Percent to scale training images randomly."
    ),
    click.option(
        "--random-brightness", type=PERCENT, default=0.0, help="Percent to vary brightness randomly."
    ),
    ray_option,
)
