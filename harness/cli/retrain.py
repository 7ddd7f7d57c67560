"""``harness retrain``: TensorFlow's retrain.py command line, flag for flag, on harness' core.

Scripts written for retrain.py run unchanged: the same flag names and defaults, the same
outputs (``output_graph.pb`` for ``label_image``, ``output_labels.txt``, TensorBoard
summaries) and the same log lines. A flag harness cannot honour is an error, never
silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from harness.cli.app import cli, import_tensorflow
from harness.cli.console import echo, report_dataset
from harness.cli.options import checked_ray, ray_option
from harness.errors import HarnessError
from harness.plan import (
    DEFAULT_LATENCY_RUNS,
    Augmentation,
    DataOptions,
    GraphdefExport,
    PipelineOptions,
    TrainConfig,
)

_PATH = click.Path(path_type=Path)


def _flag(name: str, default: Any, help_text: str, **kwargs: Any) -> Any:
    return click.option(name, default=default, show_default=True, help=help_text, **kwargs)


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT


def _refuse_unsupported(ctx: click.Context, params: dict[str, Any]) -> None:
    """retrain.py flags harness does not implement: an error when set to anything else."""
    refusals = {
        "intermediate_store_frequency": (
            params["intermediate_store_frequency"] != 0,
            "harness does not write intermediate graphs; leave --intermediate_store_frequency at 0",
        ),
        "test_batch_size": (
            params["test_batch_size"] != -1,
            "harness always tests on the whole test set; --test_batch_size must be -1",
        ),
        "validation_batch_size": (
            _given(ctx, "validation_batch_size") and params["validation_batch_size"] != -1,
            "harness validates on the whole validation set every interval; --validation_batch_size "
            "must be -1",
        ),
        "tfhub_module": (
            params["tfhub_module"] is not None,
            "use --architecture hub:HANDLE for a TF Hub feature vector (with its input size as "
            "harness train --input-size)",
        ),
    }
    for _, (refused, message) in refusals.items():
        if refused:
            raise HarnessError(message)


class ArgparseStyleCommand(click.Command):
    """Accepts unique prefixes of long options (``--summaries`` for ``--summaries_dir``), as
    retrain.py's argparse did, so scripts that relied on that run unchanged."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = [o for p in self.get_params(ctx) for o in p.opts if o.startswith("--")]
        expanded = []
        for arg in args:
            flag, eq, value = arg.partition("=")
            if flag.startswith("--") and flag not in names:
                hits = [n for n in names if n.startswith(flag)]
                if len(hits) == 1:
                    arg = hits[0] + eq + value
            expanded.append(arg)
        return super().parse_args(ctx, expanded)


@cli.command("retrain", cls=ArgparseStyleCommand)
@click.option("--image_dir", type=_PATH, required=True, help="Path to folders of labeled images.")
@_flag("--output_graph", "/tmp/output_graph.pb", "Where to save the trained graph.", type=_PATH)
@_flag(
    "--intermediate_output_graphs_dir",
    "/tmp/intermediate_graph/",
    "Unused: no intermediate graphs.",
    type=_PATH,
)
@_flag("--intermediate_store_frequency", 0, "Not supported: must be 0.", type=int)
@_flag("--output_labels", "/tmp/output_labels.txt", "Where to save the trained graph's labels.", type=_PATH)
@_flag("--summaries_dir", "/tmp/retrain_logs", "Where to save summary logs for TensorBoard.", type=_PATH)
@_flag("--how_many_training_steps", 4000, "How many training steps to run.", type=click.IntRange(min=1))
@_flag("--learning_rate", 0.01, "Learning rate.", type=click.FloatRange(min=0, min_open=True))
@_flag("--testing_percentage", 10, "Percentage of images for the test set.", type=click.IntRange(0, 100))
@_flag("--validation_percentage", 10, "Percentage of images for validation.", type=click.IntRange(0, 100))
@_flag("--eval_step_interval", 10, "How often to evaluate the training results.", type=click.IntRange(min=1))
@_flag("--train_batch_size", 100, "How many images to train on at a time.", type=click.IntRange(min=1))
@_flag("--test_batch_size", -1, "Only -1 (the whole test set).", type=int)
@_flag("--validation_batch_size", 100, "Only -1: harness validates on the whole set.", type=int)
@click.option("--print_misclassified_test_images", is_flag=True, help="Print the misclassified test images.")
@_flag("--model_dir", "/tmp/imagenet", "Folder of pretrained weight files, tried first.", type=_PATH)
@_flag("--bottleneck_dir", "/tmp/bottleneck", "Where bottlenecks are cached.", type=_PATH)
@_flag("--final_tensor_name", "final_result", "Name of the output node in the graph.")
@click.option("--flip_left_right", is_flag=True, help="Randomly flip half of the training images.")
@_flag("--random_crop", 0, "Percent margin to crop training images randomly.", type=click.IntRange(0, 100))
@_flag("--random_scale", 0, "Percent to scale training images up randomly.", type=click.IntRange(0, 100))
@_flag("--random_brightness", 0, "Percent to vary brightness randomly.", type=click.IntRange(0, 100))
@_flag(
    "--architecture",
    "inception_v3",
    "inception_v3, mobilenet_<width>_<size> (and its quantized name), or any harness name.",
)
@_flag("--saved_model_dir", "", "Where to also save a SavedModel (empty: none).")
@click.option("--tfhub_module", default=None, help="Not supported: use --architecture hub:HANDLE.")
@ray_option
@click.pass_context
def retrain_cmd(ctx: click.Context, **params: Any) -> None:
    """Retrain a final layer exactly as TensorFlow's retrain.py did (its flags, outputs and log)."""
    _refuse_unsupported(ctx, params)
    import_tensorflow(ctx)
    from harness.bench.envinfo import versions
    from harness.workflow import retrain_final_layer
    from harness.workflow.prepare import plan_backbones, prepare_run

    (target,) = plan_backbones([params["architecture"]])
    saved_model_dir = Path(params["saved_model_dir"]) if params["saved_model_dir"] else None
    options = PipelineOptions(
        weights_dir=str(params["model_dir"]),
        cache_dir=str(params["bottleneck_dir"]),
        train=TrainConfig(
            steps=params["how_many_training_steps"],
            learning_rate=params["learning_rate"],
            batch_size=params["train_batch_size"],
            eval_interval=params["eval_step_interval"],
        ),
        augmentation=Augmentation(
            params["flip_left_right"],
            params["random_crop"],
            params["random_scale"],
            params["random_brightness"],
        ),
        graphdef=GraphdefExport(
            str(params["output_graph"]), str(params["output_labels"]), params["final_tensor_name"]
        ),
        summaries_dir=str(params["summaries_dir"]),
        ray=checked_ray(params["ray_address"]),
    )
    if target.tflite:  # a TFLite file lives in a model folder: beside the graph by default
        saved_model_dir = saved_model_dir or params["output_graph"].with_name(
            params["output_graph"].stem + "_model"
        )
    data = DataOptions(params["image_dir"], params["validation_percentage"], params["testing_percentage"])
    outputs = [params["output_graph"].parent, params["output_labels"].parent, params["summaries_dir"]]
    dataset, (target,) = prepare_run(
        [target],
        options,
        data,
        outputs=[*outputs, saved_model_dir.parent if saved_model_dir else None],
        models=[saved_model_dir] if saved_model_dir else [],
        files=[params["output_graph"], params["output_labels"]],
    )
    report_dataset(dataset)
    n_validation = len(dataset.splits["validation"])

    def log_step(row: dict[str, float]) -> None:  # retrain.py's three lines per evaluation
        now, step = datetime.now(), int(row["step"])
        echo(f"{now}: Step {step}: Train accuracy = {row['train_accuracy'] * 100:.1f}%")
        echo(f"{now}: Step {step}: Cross entropy = {row['cross_entropy']:f}")
        if row.get("validation_accuracy") is not None:
            accuracy = row["validation_accuracy"] * 100
            echo(f"{now}: Step {step}: Validation accuracy = {accuracy:.1f}% (N={n_validation})")

    result = retrain_final_layer(
        target, dataset, options, saved_model_dir, log=echo, versions=versions(), log_step=log_step
    )
    if result.tflite:
        from harness.bench.measure import tflite_latency

        tflite_latency(result, runs=DEFAULT_LATENCY_RUNS, log=echo)
    ev = result.evaluation
    echo(f"Final test accuracy = {ev.accuracy * 100:.1f}% (N={ev.n})")
    if params["print_misclassified_test_images"]:
        echo("=== MISCLASSIFIED TEST IMAGES ===")
        for m in ev.misclassified:
            echo(f"{m['image']:>70}  {m['predicted']}")
    graph, labels = result.graphdef or (None, None)
    echo(f"Save final result to : {graph} (labels: {labels})")
    if result.export_dir is not None:
        echo(f"SavedModel: {result.export_dir}")
