"""What every command that retrains checks before long work, in this order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.cli.console import report_dataset
from harness.errors import HarnessError


def preflight(specs: list[Any], options: Any, data: Any, *outputs: Path | None) -> tuple[Any, dict[str, str]]:
    """Device, writable outputs, weights (before any image is read), then scan and split.

    Args:
        specs: The backbones to run.
        options: :class:`harness.workflow.PipelineOptions`.
        data: :class:`harness.pipeline.dataset.DataOptions`.
        outputs: Folders the command will write (the cache folder is added).

    Returns:
        The dataset (reported on the console) and the weights errors of backbones that
        cannot run, by name.

    Raises:
        HarnessError: on the first failed check, or when no backbone's weights can be had.
    """
    from harness.atomic import ensure_writable
    from harness.pipeline.backbone import check_device, check_weights
    from harness.pipeline.dataset import prepare_dataset

    check_device(options.device)
    ensure_writable(*outputs, Path(options.cache_dir) if options.cache_dir else None)
    missing = check_weights(specs, options.weights, options.weights_dir)
    if len(missing) == len(specs):
        raise HarnessError("; ".join(missing.values()))
    dataset = prepare_dataset(
        data.image_dir, data.validation_percentage, data.testing_percentage, options.cache_dir
    )
    report_dataset(dataset)
    return dataset, missing
