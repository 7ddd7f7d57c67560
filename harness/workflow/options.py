"""What every stage of the workflow shares: the run's options and what retraining produced."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.deploy.exports import GraphdefExport
from harness.pipeline.images import ImageFile
from harness.pipeline.train import Augmentation, TrainConfig
from harness.registry import BackboneSpec

if TYPE_CHECKING:
    from harness.pipeline.finetune import FineTuneConfig

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class PipelineOptions:
    """Options shared by every backbone of a run."""

    weights: str = "imagenet"
    weights_dir: str | None = None
    cache_dir: str | None = None  # None: no cache at all
    train: TrainConfig = field(default_factory=TrainConfig)
    device: str = "cpu"
    extract_batch_size: int = 16  # see harness.pipeline.extract.default_extract_batch_size
    runtime: str = "auto"  # bottlenecks on tf, litert, or auto (litert on a CPU)
    augmentation: Augmentation = field(default_factory=Augmentation)
    tflite: tuple[str, ...] = ()  # TFLite variants to write beside the SavedModel
    graphdef: GraphdefExport | None = None  # retrain.py's output_graph.pb and labels
    summaries_dir: str | None = None  # TensorBoard events: <dir>/train, <dir>/validation
    fine_tune: FineTuneConfig | None = None  # then also train the backbone's top layers
    ray: str | None = None  # bottlenecks on Ray: local, auto or ray://host:port

    def for_backbone(self, spec: BackboneSpec) -> PipelineOptions:
        """These options for one backbone of several: its own TensorBoard run folder."""
        if self.summaries_dir is None:
            return self
        return replace(self, summaries_dir=str(Path(self.summaries_dir) / spec.safe_name()))


@dataclass
class Retrained:
    """What retraining the final layer on one backbone produced."""

    spec: BackboneSpec
    backbone: Any  # harness.pipeline.backbone.Backbone
    head: Any  # harness.pipeline.train.Head
    history: list[dict[str, float]]
    evaluation: Any  # harness.pipeline.evaluate.Evaluation
    extraction: Any  # harness.pipeline.extract.Extraction
    failed_images: list[tuple[str, str]]
    splits_used: dict[str, int]
    images: dict[str, list[ImageFile]]  # the split, less images that failed to decode
    train_seconds: float
    export_seconds: float | None
    export_dir: Path | None
    metadata: dict[str, Any]
    tflite: list[Any] = field(default_factory=list)  # harness.deploy.tflite.TFLiteVariant
    graphdef: tuple[Path, Path] | None = None  # output_graph.pb, output_labels.txt
    fine_tuned: Any = None  # harness.pipeline.finetune.FineTuned, for a fine-tuned model
