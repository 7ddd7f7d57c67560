"""The run plan: every choice of a run settled once, in one typed place.

Like black's ``Mode``: the command line parses flags into these frozen values, each
checked here and nowhere else (:meth:`Device.parse`, :meth:`Runtime.decide`,
:meth:`Weights.parse`), and every stage below takes them as they are. A backbone of
the run is a :class:`Target`: its spec, its weights file resolved once, and the extra
exports its alias declares (retrain.py's ``_quantized`` names, in ``backbones/``).

Nothing here imports TensorFlow.
"""

from harness.plan.choices import (
    DEFAULT_LATENCY_RUNS,
    DEPLOY_INSTALL_HINT,
    Device,
    PlanChoice,
    Precision,
    Runtime,
    Weights,
    check_audit_installed,
    default_cache_dir,
    openvino_installed,
)
from harness.plan.options import (
    CLASS_WEIGHTS,
    Augmentation,
    DataOptions,
    FineTuneConfig,
    GraphdefExport,
    PipelineOptions,
    Target,
    TimingOptions,
    TrainConfig,
)
from harness.plan.targets import (
    DEFAULT_PROCESSES,
    DEFAULT_TARGET_RUNS,
    Artifact,
    DeployTarget,
    SshHost,
    TargetSpec,
    parse_targets,
    registered_targets,
)

__all__ = [
    "CLASS_WEIGHTS",
    "DEFAULT_LATENCY_RUNS",
    "DEFAULT_PROCESSES",
    "DEFAULT_TARGET_RUNS",
    "Artifact",
    "DeployTarget",
    "SshHost",
    "TargetSpec",
    "parse_targets",
    "registered_targets",
    "DEPLOY_INSTALL_HINT",
    "Augmentation",
    "DataOptions",
    "Device",
    "FineTuneConfig",
    "GraphdefExport",
    "PipelineOptions",
    "PlanChoice",
    "Precision",
    "Runtime",
    "Target",
    "TimingOptions",
    "TrainConfig",
    "Weights",
    "check_audit_installed",
    "default_cache_dir",
    "openvino_installed",
]
