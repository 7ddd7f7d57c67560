"""The deployment row, declared once: one row per backbone, target and thread count.

A run's ``deployments`` are these rows; the report's deployment table, ``harness
recommend --target`` and ``harness compare`` read them by these names. The raw samples
behind each figure are kept in the run's details (``details[backbone]["targets"]``), so
every interval can be recomputed.
"""

from __future__ import annotations

from typing import Any

from harness.columns import Column

C = Column
_MS: dict[str, Any] = {"unit": "ms", "higher_is_better": False, "group": "deploy", "digits": 2}
_FRACTION: dict[str, Any] = {"unit": "fraction", "group": "deploy", "fmt": "percent", "real_only": True}

TARGET_COLUMNS: list[Column] = [
    C("run_id", "text"),
    C("backbone", "text", label="backbone"),
    C("target", "text", label="target", help="a registered target, or ssh://host/target"),
    C("runtime", "text", help="what ran the file: tf, litert, openvino or onnxruntime"),
    C("artifact", "text", help="savedmodel, tflite or onnx"),
    C("quantize", "text", help="the TFLite variant run or converted (none: float)"),
    C("host", "text", label="host", help="the machine it ran on"),
    C("threads", "int", label="threads"),
    C("latency_ms_p50", **_MS, label="ms p50", help="batch 1, preprocessed input, after warm-up"),
    C("latency_ms_p50_ci_low", **_MS, help="95% bootstrap interval of the median (processes, then calls)"),
    C("latency_ms_p50_ci_high", **_MS),
    C("latency_ms_p90", **_MS, label="ms p90"),
    C("latency_ms_p99", **_MS, label="ms p99"),
    C("e2e_ms_p50", **_MS, label="from JPEG ms p50", help="from encoded bytes (artifacts that decode)"),
    C("first_ms", **_MS, label="first call ms"),
    C("load_s", unit="s", higher_is_better=False, group="deploy", digits=2, label="load s"),
    C(
        "peak_memory_mb",
        unit="MB",
        higher_is_better=False,
        group="deploy",
        digits=0,
        label="peak MB",
        help="peak resident memory of a fresh process that loads the model and runs it",
    ),
    C("runtime_memory_mb", unit="MB", group="deploy", digits=0, help="that process before the model"),
    C("size_mb", unit="MB", higher_is_better=False, group="deploy", digits=2, label="size MB"),
    C("test_accuracy", **_FRACTION, higher_is_better=True, label="test acc"),
    C("agreement", **_FRACTION, label="same top-1", help="test images with the float model's top-1"),
    C(
        "mcnemar_p",
        unit="p",
        group="deploy",
        digits=3,
        real_only=True,
        label="McNemar p",
        help="this file's test answers against the float model's (exact McNemar)",
    ),
    C("n_calls", "int", group="deploy", help="timed calls, over all processes"),
    C("processes", "int", group="deploy", help="fresh processes the calls ran in"),
    C("error", "text", label="error"),
]

TARGET_COLUMN_NAMES = [c.name for c in TARGET_COLUMNS]


def target_row(values: dict[str, Any]) -> dict[str, Any]:
    """A deployment row with every declared column, in order (missing ones None)."""
    unknown = set(values) - set(TARGET_COLUMN_NAMES)
    if unknown:
        raise KeyError(f"undeclared deployment columns: {sorted(unknown)}")
    return {name: values.get(name) for name in TARGET_COLUMN_NAMES}
