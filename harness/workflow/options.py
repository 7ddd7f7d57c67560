"""What every stage of the workflow shares: callbacks and what retraining produced (the
run's options are the plan's, :mod:`harness.plan`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.pipeline.images import ImageFile
from harness.registry import BackboneSpec

if TYPE_CHECKING:  # annotations only: these modules load TensorFlow
    from harness.deploy.tflite import TFLiteVariant
    from harness.pipeline.backbone import Backbone
    from harness.pipeline.evaluate import Evaluation
    from harness.pipeline.extract import Extraction
    from harness.pipeline.train import Head
    from harness.pipeline.tune_backbone import FineTuned

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class PrecisionCheck:
    """The reduced-precision layer against the fp32 features' layer on the test images."""

    fp32_test_accuracy: float
    only_fp32_right: int
    only_reduced_right: int
    p_value: float
    fp32_extract_seconds: float

    def line(self, name: str, precision: str, accuracy: float) -> str:
        return (
            f"{name}: {precision} against fp32 features: test accuracy {accuracy:.1%} against "
            f"{self.fp32_test_accuracy:.1%}; only fp32 right on {self.only_fp32_right}, only {precision} "
            f"right on {self.only_reduced_right} test images, McNemar p = {self.p_value:.3g}"
        )


@dataclass
class Retrained:
    """What retraining the final layer on one backbone produced."""

    spec: BackboneSpec
    backbone: Backbone
    head: Head
    history: list[dict[str, float]]
    evaluation: Evaluation
    extraction: Extraction
    failed_images: list[tuple[str, str]]
    splits_used: dict[str, int]
    images: dict[str, list[ImageFile]]  # the split, less images that failed to decode
    train_seconds: float
    export_seconds: float | None
    export_dir: Path | None
    metadata: dict[str, Any]
    tflite: list[TFLiteVariant] = field(default_factory=list)
    graphdef: tuple[Path, Path] | None = None  # output_graph.pb, output_labels.txt
    onnx: Path | None = None  # model.onnx, for the onnxruntime target
    fine_tuned: FineTuned | None = None  # for a fine-tuned model
    runtime_rates: dict[str, float] = field(default_factory=dict)  # what --runtime auto measured
    precision_check: PrecisionCheck | None = None  # reduced precision against fp32 features
