"""Before any long work: the run plan checked against this machine and these folders.

The command line hands over what it parsed; this settles the rest once, in this order:
the device, where the outputs go, every backbone's weights (found or downloaded, before
any image is read), then the scan and the split.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError
from harness.outputs import (
    check_apart_from_images,
    check_model_folder,
    check_output_file,
    check_report_dir,
)
from harness.pipeline.backbone import require_device, resolve_weights
from harness.pipeline.dataset import Dataset, prepare_dataset
from harness.plan import DataOptions, FineTuneConfig, PipelineOptions, Target
from harness.registry import registry


def plan_backbones(names: list[str], input_size: int | None = None) -> list[Target]:
    """Backbone names and wildcards as targets (weights not yet resolved)."""
    return [Target(spec, tflite=exports) for spec, exports in registry.targets(names, input_size=input_size)]


def with_fine_tuned(folders: Iterable[Path], fine_tune: FineTuneConfig | None) -> list[Path]:
    """Model folders, and beside each its fine-tuned model's (``NAME+ftN``) when asked."""
    out = []
    for folder in folders:
        out.append(folder)
        if fine_tune is not None:
            out.append(folder.with_name(f"{folder.name}+{fine_tune.tag}"))
    return out


def resolve_targets(targets: list[Target], options: PipelineOptions) -> list[Target]:
    """Each target with its weights file found once; one that cannot be had carries its error."""
    from dataclasses import replace

    out = []
    for target in targets:
        try:
            out.append(
                replace(target, weights=resolve_weights(target.spec, options.weights, options.weights_dir))
            )
        except HarnessError as exc:
            out.append(replace(target, error=str(exc)))
    return out


def prepare_run(
    targets: list[Target],
    options: PipelineOptions,
    data: DataOptions,
    *,
    outputs: Iterable[Path | None] = (),
    models: Iterable[Path] = (),
    files: Iterable[Path] = (),
    reports: Iterable[Path] = (),
) -> tuple[Dataset, list[Target]]:
    """Check everything that can fail before the long work, then scan and split.

    Args:
        targets: The backbones to run (:func:`plan_backbones`).
        options: The run's options.
        data: The images and their split.
        outputs: Folders the command will write into (the cache and summaries folders are
            added): writable, and apart from the image folder.
        models: Model folders it will write or replace (see :mod:`harness.outputs`).
        files: Single files it will write or replace (retrain.py's graph and labels).
        reports: Folders its report files go to.

    Returns:
        The dataset, and the targets with their weights resolved (or their errors).

    Raises:
        HarnessError: on the first failed check, or when no backbone's weights can be had.
    """
    from harness.atomic import ensure_writable

    require_device(options.device)
    options.bottleneck_runtimes  # noqa: B018 -- raises for a runtime or precision this machine lacks
    image_dir = Path(data.image_dir)
    extra = [Path(p) for p in (options.cache_dir, options.summaries_dir) if p]
    folders = [Path(p) for p in outputs if p is not None] + extra
    for folder in folders:
        check_apart_from_images(folder, image_dir, "output folder", container=True)
    for model in models:
        check_model_folder(Path(model), image_dir)
    for file in files:
        check_output_file(Path(file), image_dir)
    for report in reports:
        check_report_dir(Path(report), image_dir)
    ensure_writable(*folders)
    resolved = resolve_targets(targets, options)
    if all(t.error for t in resolved):
        raise HarnessError("; ".join(str(t.error) for t in resolved))
    dataset = prepare_dataset(
        data.image_dir, data.validation_percentage, data.testing_percentage, options.cache_dir
    )
    return dataset, resolved


def model_folders(targets: list[Target], models_dir: Path) -> list[Path]:
    """Where each target's model goes under ``models_dir``."""
    return [models_dir / t.spec.safe_name() for t in targets]
