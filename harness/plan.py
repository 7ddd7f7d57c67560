"""The run plan: every choice of a run settled once, in one typed place.

Like black's ``Mode``: the command line parses flags into these frozen values, each
checked here and nowhere else (:meth:`Device.parse`, :meth:`Runtime.decide`,
:meth:`Weights.parse`), and every stage below takes them as they are. A backbone of
the run is a :class:`Target`: its spec, its weights file resolved once, and the extra
exports its alias declares (retrain.py's ``_quantized`` names, in ``backbones/``).

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.spec import BackboneSpec, ResolvedWeights


class PlanChoice(str, enum.Enum):
    """A command-line choice: compares, prints and serialises as its value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(str(c.value) for c in cls)

    @classmethod
    def parse(cls, value: str | PlanChoice) -> Any:
        """The choice named ``value``.

        Raises:
            HarnessError: naming the accepted values.
        """
        try:
            return cls(value)
        except ValueError:
            noun = cls.__name__.lower()
            raise HarnessError(f"unknown {noun} {value!r}: one of {', '.join(cls.values())}") from None


class Device(PlanChoice):
    """Where the backbone runs in TensorFlow."""

    CPU = "cpu"
    GPU = "gpu"

    @property
    def tf_name(self) -> str:
        return "/GPU:0" if self is Device.GPU else "/CPU:0"

    @property
    def extract_batch_size(self) -> int:
        """Images per backbone call when extracting bottlenecks here.

        On a 2-core CPU, files to features, batches of 16 ran four MobileNets as fast as 32
        or up to 9% faster, and 64 was slower for all: a small batch's activations stay in
        the CPU caches (the models alone ran 6-12% faster at 16 than at 32). A GPU wants
        larger batches to fill it.
        """
        return 16 if self is Device.CPU else 32


class Runtime(PlanChoice):
    """What runs the backbone for bottlenecks."""

    AUTO = "auto"
    TF = "tf"
    LITERT = "litert"
    OPENVINO = "openvino"

    def decide(self, device: Device) -> Runtime:
        """The runtime on ``device``: ``auto`` is TensorFlow on a GPU and, on a CPU, stays
        ``auto`` for the workflow to measure (see :meth:`candidates`).

        Raises:
            HarnessError: a CPU runtime (LiteRT, OpenVINO) asked for on a GPU.
        """
        if self is Runtime.AUTO:
            return Runtime.AUTO if device is Device.CPU else Runtime.TF
        if self in (Runtime.LITERT, Runtime.OPENVINO) and device is not Device.CPU:
            raise HarnessError(
                f"--runtime {self} runs on the CPU; with --device gpu use --runtime tf or auto"
            )
        return self

    def candidates(self, device: Device, precision: Precision) -> tuple[Runtime, ...]:
        """What may run the backbone: one runtime, or the CPU runtimes ``auto`` times on each
        backbone (those that can run ``precision``; OpenVINO where it is installed)."""
        decided = self.decide(device)
        if decided is not Runtime.AUTO:
            return (decided,)
        if precision is Precision.BF16:
            return (Runtime.OPENVINO,)
        if precision is Precision.INT8:
            return (Runtime.LITERT,)
        return (Runtime.LITERT, Runtime.OPENVINO) if openvino_installed() else (Runtime.LITERT,)


class Precision(PlanChoice):
    """The arithmetic of bottleneck extraction: never reduced unless asked for."""

    FP32 = "fp32"
    BF16 = "bf16"
    INT8 = "int8"  # calibrated on the training photos, with bias correction; run by LiteRT

    def check(self, runtime: Runtime, device: Device) -> None:
        """A reduced precision needs a runtime and a CPU that have it.

        Raises:
            HarnessError: one line saying what is missing.
        """
        if self is Precision.FP32:
            return
        if self is Precision.INT8:
            if device is not Device.CPU or runtime not in (Runtime.AUTO, Runtime.LITERT):
                raise HarnessError("--precision int8 runs on LiteRT on the CPU: use --runtime litert or auto")
            return
        if device is not Device.CPU or runtime not in (Runtime.AUTO, Runtime.OPENVINO):
            raise HarnessError(
                f"--precision {self} runs on OpenVINO on the CPU: use --runtime openvino or auto"
            )
        if not openvino_installed():
            raise HarnessError(f"--precision {self} needs OpenVINO: {DEPLOY_INSTALL_HINT}")
        from harness.cpu import cpu_features

        if "bf16" not in cpu_features().precisions:
            raise HarnessError(
                f"--precision {self}: this CPU has no BF16 instructions (AVX512_BF16 or AMX); "
                "it would be emulated and slower: use --precision fp32"
            )


#: How to install the optional runtimes (OpenVINO, ONNX Runtime).
DEPLOY_INSTALL_HINT = "pip install 'harness[deploy]' (or pip install openvino)"


def openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


class Weights(PlanChoice):
    """ImageNet weights, or random ones for speed-only runs (their accuracy means nothing)."""

    IMAGENET = "imagenet"
    RANDOM = "random"

    @property
    def real(self) -> bool:
        return self is Weights.IMAGENET


#: Timed single-image calls of each export, unless ``--latency-runs`` says otherwise.
DEFAULT_LATENCY_RUNS = 20


def default_cache_dir() -> Path:
    """The per-user cache directory (e.g. ``~/.cache/harness`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("harness", appauthor=False))


@dataclass(frozen=True)
class TrainConfig:
    """Final-layer training options (retrain.py's flags and defaults)."""

    steps: int = 4000
    learning_rate: float = 0.01
    batch_size: int = 100
    eval_interval: int = 100
    seed: int = 0

    def as_dict(self) -> dict[str, float]:
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

    def __post_init__(self) -> None:
        # Plain strings from callers and stored configurations become the choices, once.
        object.__setattr__(self, "weights", Weights.parse(self.weights))
        object.__setattr__(self, "device", Device.parse(self.device))
        object.__setattr__(self, "runtime", Runtime.parse(self.runtime))
        object.__setattr__(self, "precision", Precision.parse(self.precision))

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
