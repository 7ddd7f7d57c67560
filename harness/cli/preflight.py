"""What every command that retrains checks before long work, in this order."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.cli.console import report_dataset
from harness.errors import HarnessError


def with_fine_tuned(folders: Iterable[Path], fine_tune: Any) -> list[Path]:
    """Model folders, and beside each its fine-tuned model's (``NAME+ftN``) when asked."""
    out = []
    for folder in folders:
        out.append(folder)
        if fine_tune is not None:
            out.append(folder.with_name(f"{folder.name}+{fine_tune.tag}"))
    return out


def preflight(
    specs: list[Any],
    options: Any,
    data: Any,
    *outputs: Path | None,
    models: Iterable[Path] = (),
    files: Iterable[Path] = (),
    reports: Iterable[Path] = (),
) -> tuple[Any, dict[str, str]]:
    """Device, where the outputs go, weights (before any image is read), then scan and split.

    Args:
        specs: The backbones to run.
        options: :class:`harness.workflow.PipelineOptions`.
        data: :class:`harness.pipeline.dataset.DataOptions`.
        outputs: Folders the command will write into (the cache and summaries folders are
            added): writable, and apart from the image folder.
        models: Model folders it will write or replace (see :mod:`harness.outputs`).
        files: Single files it will write or replace (retrain.py's graph and labels).
        reports: Folders its report files go to.

    Returns:
        The dataset (reported on the console) and the weights errors of backbones that
        cannot run, by name.

    Raises:
        HarnessError: on the first failed check, or when no backbone's weights can be had.
    """
    from harness.atomic import ensure_writable
    from harness.outputs import check_apart_from_images, check_model_folder, check_output_file
    from harness.pipeline.backbone import check_device, check_weights
    from harness.pipeline.dataset import prepare_dataset
    from harness.results.report import check_report_dir

    check_device(options.device)
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
    missing = check_weights(specs, options.weights, options.weights_dir)
    if len(missing) == len(specs):
        raise HarnessError("; ".join(missing.values()))
    dataset = prepare_dataset(
        data.image_dir, data.validation_percentage, data.testing_percentage, options.cache_dir
    )
    report_dataset(dataset)
    return dataset, missing
