"""The deployable files beside the SavedModel: TFLite variants and retrain.py's frozen graph."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harness.plan import GraphdefExport

CALIBRATION_IMAGES = 100  # training images for int8 calibration and bias correction


def export_tflite_variants(
    backbone: Any,
    head: Any,
    classes: list[str],
    export_dir: Path,
    quantizations: tuple[str, ...],
    *,
    train_paths: list[Path],
    test_paths: list[Path],
    test_labels: np.ndarray,
    reference: np.ndarray,
    seed: int,
    optional: tuple[str, ...] = (),
    warn: Callable[[str], None] = print,
) -> list[Any]:
    """Each TFLite variant, calibrated on training images and evaluated on the test images;
    ``optional`` ones that do not convert are left out with a ``warn`` line.

    Returns:
        :class:`harness.deploy.tflite.TFLiteVariant` per quantization.
    """
    from harness.deploy.tflite import export_tflite, load_pixels

    size = backbone.spec.input_size
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(train_paths), size=min(CALIBRATION_IMAGES, len(train_paths)), replace=False)
    return export_tflite(
        backbone,
        head,
        export_dir,
        quantizations,
        representative=load_pixels([train_paths[i] for i in sorted(picks)], size),
        test_pixels=load_pixels(test_paths, size),
        test_labels=test_labels,
        classes=classes,
        reference=reference,
        optional=optional,
        warn=warn,
    )


ONNX_FILE = "model.onnx"


def export_onnx(tflite_file: Path, onnx_file: Path) -> Path:
    """model.onnx for ONNX Runtime, converted by tf2onnx from the float TFLite file (the same
    graph the LiteRT and OpenVINO targets run)."""
    import tf2onnx

    from harness.errors import HarnessError, first_line
    from harness.quiet import quiet_native

    try:
        with quiet_native():
            tf2onnx.convert.from_tflite(str(tflite_file), output_path=str(onnx_file))
    except Exception as exc:
        raise HarnessError(f"ONNX conversion of {tflite_file.name} failed: {first_line(exc)}") from exc
    return onnx_file


def export_frozen_graph(
    backbone: Any, head: Any, classes: list[str], target: GraphdefExport, export_dir: Path | None
) -> tuple[Path, Path]:
    """retrain.py's ``output_graph.pb`` and ``output_labels.txt`` (see :mod:`harness.deploy.graphdef`)."""
    from harness.deploy.graphdef import GRAPH_FILE, LABELS_FILE, export_graphdef
    from harness.errors import HarnessError

    if target.explicit:
        graph, labels = target.graph, target.labels
    elif export_dir is None:
        raise HarnessError("the frozen graph needs an output folder or explicit paths")
    else:
        graph = target.graph or export_dir / GRAPH_FILE
        labels = target.labels or export_dir / LABELS_FILE
    return export_graphdef(backbone, head, classes, graph, labels, final_tensor_name=target.final_tensor_name)
