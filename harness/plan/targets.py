"""Deployment targets: which exported file runs on which runtime, with how many threads, where.

A target is a small declarative :class:`TargetSpec`, registered through the
``harness.targets`` entry point group like backbones (a plugin package adds its own:
``[project.entry-points."harness.targets"]``). ``--targets`` names them; ``ssh://`` runs one
on a remote Linux machine. The measuring lives in :mod:`harness.bench.deployment`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import entry_points
from urllib.parse import parse_qs, unquote, urlsplit

from harness.errors import HarnessError

ENTRY_POINT_GROUP = "harness.targets"
DEFAULT_TARGET_RUNS = 60  # timed calls per backbone and target (over DEFAULT_PROCESSES processes)
DEFAULT_PROCESSES = 3  # fresh processes per target: the interval sees process-to-process noise
REMOTE_DEFAULT = "litert"  # what ssh://host runs when it names no target


class Artifact(str, Enum):
    """The exported file a target runs."""

    SAVEDMODEL = "savedmodel"
    TFLITE = "tflite"  # model.tflite or model_<quantize>.tflite
    ONNX = "onnx"  # model.onnx, converted from model.tflite by tf2onnx

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TargetSpec:
    """One deployment target.

    Attributes:
        name: What ``--targets`` and ``--target`` call it.
        runtime: What runs the file (:data:`harness.deploy.probe.RUNTIMES`).
        artifact: Which exported file.
        quantize: The TFLite variant it runs, or converts from (``none``: float).
        modules: Python modules it needs on this machine (to convert or to run).
        extra: The pip extra that installs them.
        description: One line for ``harness targets``.
    """

    name: str
    runtime: str
    artifact: Artifact
    quantize: str = "none"
    modules: tuple[str, ...] = ()
    extra: str | None = None
    description: str = ""

    def missing(self) -> list[str]:
        return [m for m in self.modules if importlib.util.find_spec(m) is None]

    def check(self) -> None:
        """One line naming the extra, before any work, when a module is missing."""
        if missing := self.missing():
            install = (
                f"pip install -e '.[{self.extra}]'" if self.extra else f"pip install {' '.join(missing)}"
            )
            raise HarnessError(f"target {self.name} needs {', '.join(missing)}: {install}")

    @property
    def tflite(self) -> tuple[str, ...]:
        """The TFLite variant the export must write for it."""
        return () if self.artifact is Artifact.SAVEDMODEL else (self.quantize,)


def builtin_targets() -> list[TargetSpec]:
    """The targets harness ships (its own ``harness.targets`` entry point)."""
    return [
        TargetSpec("savedmodel", "tf", Artifact.SAVEDMODEL, description="TensorFlow on the SavedModel"),
        TargetSpec(
            "litert",
            "litert",
            Artifact.TFLITE,
            modules=("ai_edge_litert",),
            description="LiteRT (XNNPACK) on model.tflite, float",
        ),
        TargetSpec(
            "litert-int8",
            "litert",
            Artifact.TFLITE,
            "int8",
            ("ai_edge_litert",),
            description="LiteRT (XNNPACK) on model_int8.tflite, int8 weights and activations",
        ),
        TargetSpec(
            "openvino",
            "openvino",
            Artifact.TFLITE,
            modules=("openvino",),
            extra="deploy",
            description="OpenVINO CPU, reading model.tflite, fp32",
        ),
        TargetSpec(
            "onnxruntime",
            "onnxruntime",
            Artifact.ONNX,
            modules=("onnxruntime", "tf2onnx"),
            extra="deploy",
            description="ONNX Runtime CPU on model.onnx (tf2onnx from model.tflite)",
        ),
    ]


def registered_targets() -> dict[str, TargetSpec]:
    """Every target of every installed plugin, by name (built-ins also when run from source)."""
    specs = {s.name: s for s in builtin_targets()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        for spec in ep.load()():
            specs[spec.name] = spec
    return specs


@dataclass(frozen=True)
class SshHost:
    """``ssh://[user@]host[:port][/TARGET][?python=…&identity=…&known_hosts=…]``."""

    host: str
    user: str | None = None
    port: int | None = None
    python: str = "python3"
    identity: str | None = None
    known_hosts: str | None = None

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def options(self) -> list[str]:
        """ssh's options: never a password prompt."""
        out = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
        if self.port:
            out += ["-p", str(self.port)]
        if self.identity:
            out += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            out += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=accept-new"]
        return out


@dataclass(frozen=True)
class DeployTarget:
    """A target of this run: the spec, its thread count, and the machine (None: this one)."""

    spec: TargetSpec
    threads: int | None  # None: every core of the machine it runs on
    host: SshHost | None = None
    url: str | None = None  # the ssh:// name as given, without its query

    @property
    def name(self) -> str:
        return self.url or self.spec.name


def _ssh_target(text: str, specs: dict[str, TargetSpec], threads: int | None) -> DeployTarget:
    parts = urlsplit(text)
    if not parts.hostname:
        raise HarnessError(f"{text!r}: an ssh target is ssh://[user@]host[:port][/TARGET]")
    name = unquote(parts.path.strip("/")) or REMOTE_DEFAULT
    if name not in specs:
        raise HarnessError(f"{text!r}: unknown target {name!r}; one of {', '.join(specs)}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"python", "identity", "known_hosts"}
    if unknown:
        raise HarnessError(f"{text!r}: unknown option {sorted(unknown)[0]!r}; python, identity, known_hosts")
    try:
        port = parts.port
    except ValueError as exc:
        raise HarnessError(f"{text!r}: {exc}") from None
    host = SshHost(parts.hostname, parts.username, port, **query)
    url = f"ssh://{parts.netloc}/{name}"
    return DeployTarget(specs[name], threads, host, url)


def parse_targets(text: str | None, threads: tuple[int, ...] = ()) -> tuple[DeployTarget, ...]:
    """``--targets`` and ``--threads``: every named target at every thread count.

    Args:
        text: Comma-separated target names and ``ssh://`` URLs; None: every registered
            target whose modules are installed here; ``none`` or empty: none.
        threads: Thread counts (empty: every core of the machine each runs on).
    """
    specs = registered_targets()
    counts: tuple[int | None, ...] = threads or (None,)
    if text is None:
        chosen = [s.name for s in specs.values() if not s.missing()]
    elif text.strip().lower() == "none":
        chosen = []
    else:
        chosen = [t.strip() for t in text.split(",") if t.strip()]
    out: list[DeployTarget] = []
    for name in dict.fromkeys(chosen):
        for n in counts:
            if name.startswith("ssh://"):
                out.append(_ssh_target(name, specs, n))
            elif name in specs:
                specs[name].check()
                out.append(DeployTarget(specs[name], n))
            else:
                raise HarnessError(f"unknown target {name!r}: one of {', '.join(specs)}, or ssh://host")
    return tuple(out)
