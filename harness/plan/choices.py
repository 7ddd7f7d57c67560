"""The choices of a run, each parsed and checked by one function (see :mod:`harness.plan`)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


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

    @property
    def label(self) -> str:
        """Its name in a sentence: TensorFlow, LiteRT, OpenVINO."""
        return {"tf": "TensorFlow", "litert": "LiteRT", "openvino": "OpenVINO"}.get(self.value, self.value)

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


AUDIT_MODULES = ("cleanlab", "imagehash")


def check_audit_installed() -> None:
    """One line naming the extra, before any work, when the audit's libraries are missing."""
    import importlib.util

    missing = [m for m in AUDIT_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise HarnessError(f"the audit needs {', '.join(missing)}: pip install -e '.[audit]'")


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
