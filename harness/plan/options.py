"""The run's frozen configuration and its targets (see :mod:`harness.plan`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.plan.choices import DEFAULT_LATENCY_RUNS, Device, Precision, Runtime, Weights
from harness.plan.targets import DEFAULT_PROCESSES, DEFAULT_TARGET_RUNS, Artifact, DeployTarget
from harness.spec import BackboneSpec, ResolvedWeights

#: --class-weights: none (retrain.py's loss), or balanced (scikit-learn's n / (k * n_class)).
CLASS_WEIGHTS = ("none", "balanced")


@dataclass(frozen=True)
class TrainConfig:
    """Final-layer training options (retrain.py's flags and defaults)."""

    steps: int = 4000
    learning_rate: float = 0.01
    batch_size: int = 100
    eval_interval: int = 100
    seed: int = 0
    class_weight: str = "none"  # or "balanced": each class's examples weighted n / (k * n_class)

    def __post_init__(self) -> None:
        if self.class_weight not in CLASS_WEIGHTS:
            raise HarnessError(f"class weights {self.class_weight!r}: one of {', '.join(CLASS_WEIGHTS)}")

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


@dataclass(frozen=True)
class Augmentation:
    """retrain.py's distortions; percentages as its flags took them."""

    flip_left_right: bool = False
    random_crop: float = 0.0
    random_scale: float = 0.0
    random_brightness: float = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.flip_left_right or self.random_crop or self.random_scale or self.random_brightness)


@dataclass(frozen=True)
class FineTuneConfig:
    """``--fine-tune`` and its options."""

    layers: int | None  # top layers with weights to train (batch norms not counted); None: all
    epochs: int = 10  # at most; early stopping usually ends sooner
    learning_rate: float = 1e-5
    beta_1: float = 0.9  # Adam's moment decays, as Keras defaults them
    beta_2: float = 0.999
    batch_size: int = 32
    patience: int = 2  # epochs without a better validation accuracy before stopping
    seed: int = 0

    @property
    def tag(self) -> str:
        """The fine-tuned model's suffix: ``ft4`` for the top 4 layers, ``ftall``."""
        return "ftall" if self.layers is None else f"ft{self.layers}"


@dataclass(frozen=True)
class GraphdefExport:
    """Where retrain.py's frozen graph and labels go (None: into the export folder)."""

    graph: str | None = None
    labels: str | None = None
    final_tensor_name: str = "final_result"

    @property
    def explicit(self) -> bool:
        """Both paths given (retrain.py's flags): written there, not into the model folder."""
        return self.graph is not None and self.labels is not None


@dataclass(frozen=True)
class DataOptions:
    """Where the images are and how they are split."""

    image_dir: Path
    validation_percentage: float = 10
    testing_percentage: float = 10


@dataclass(frozen=True)
class TimingOptions:
    """How a run times each backbone (``harness run``'s timing flags)."""

    timing_images: int = 256
    timing_repeats: int = 3
    latency_runs: int = DEFAULT_LATENCY_RUNS
    target_runs: int = DEFAULT_TARGET_RUNS  # batch-1 calls per deployment target, in all
    target_processes: int = DEFAULT_PROCESSES  # fresh processes they are spread over


@dataclass(frozen=True)
class PipelineOptions:
    """Options shared by every backbone of a run, each settled once."""

    weights: Weights = Weights.IMAGENET
    weights_dir: str | None = None
    cache_dir: str | None = None  # None: no cache at all
    train: TrainConfig = field(default_factory=TrainConfig)
    device: Device = Device.CPU
    extract_batch_size: int = 16  # see Device.extract_batch_size
    runtime: Runtime = Runtime.AUTO  # as asked; the backbone's runtime is what ran
    precision: Precision = Precision.FP32  # of bottleneck extraction
    augmentation: Augmentation = field(default_factory=Augmentation)
    tflite: tuple[str, ...] = ()  # TFLite variants to write beside the SavedModel
    graphdef: GraphdefExport | None = None  # retrain.py's output_graph.pb and labels
    summaries_dir: str | None = None  # TensorBoard events: <dir>/train, <dir>/validation
    fine_tune: FineTuneConfig | None = None  # then also train the backbone's top layers
    ray: str | None = None  # bottlenecks on Ray: local, auto or ray://host:port
    targets: tuple[DeployTarget, ...] = ()  # where each exported model is measured

    def __post_init__(self) -> None:
        # Plain strings from callers and stored configurations become the choices, once.
        object.__setattr__(self, "weights", Weights.parse(self.weights))
        object.__setattr__(self, "device", Device.parse(self.device))
        object.__setattr__(self, "runtime", Runtime.parse(self.runtime))
        object.__setattr__(self, "precision", Precision.parse(self.precision))
        if self.ray is not None and self.precision is Precision.INT8:
            # The calibration photos would have to travel to every worker: not built yet.
            raise HarnessError("--precision int8 does not run on --ray yet: use fp32 or bf16 with --ray")

    @property
    def bottleneck_runtimes(self) -> tuple[Runtime, ...]:
        """What may extract bottlenecks on this device at this precision (checked)."""
        self.precision.check(self.runtime, self.device)
        return self.runtime.candidates(self.device, self.precision)

    def for_backbone(self, spec: BackboneSpec) -> PipelineOptions:
        """These options for one backbone of several: its own TensorBoard run folder."""
        if self.summaries_dir is None:
            return self
        return replace(self, summaries_dir=str(Path(self.summaries_dir) / spec.safe_name()))

    @property
    def onnx(self) -> bool:
        """Whether the export also writes model.onnx (a target runs it)."""
        return any(t.spec.artifact is Artifact.ONNX for t in self.targets)

    @property
    def target_tflite(self) -> tuple[str, ...]:
        """TFLite variants only the deployment targets need: written when they convert (a
        variant that does not convert fails its targets, not the backbone)."""
        return tuple(dict.fromkeys(q for t in self.targets for q in t.spec.tflite if q not in self.tflite))

    def for_target(self, target: Target) -> PipelineOptions:
        """These options with the TFLite exports ``target``'s alias adds."""
        if not target.tflite:
            return self
        return replace(self, tflite=tuple(dict.fromkeys([*self.tflite, *target.tflite])))


@dataclass(frozen=True)
class Target:
    """One backbone of a run: the spec, its weights resolved once, and what its alias adds.

    Attributes:
        spec: The backbone.
        weights: The weights file found before any image was read (None for random
            weights and for backbones that load their own).
        tflite: TFLite variants its alias asks for (retrain.py's ``_quantized``: int8).
        alias: The name the user gave, when it was an alias declaring extra exports.
        error: Why its weights cannot be had (the run records it and goes on).
    """

    spec: BackboneSpec
    weights: ResolvedWeights | None = None
    tflite: tuple[str, ...] = ()
    alias: str | None = None
    error: str | None = None
