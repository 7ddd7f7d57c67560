"""Each exported model measured where it ships: per target, in fresh processes, here or over ssh.

For every target the file it runs is timed by :mod:`harness.deploy.probe` in
``processes`` fresh processes (``runs`` calls in all). The targets take turns round by
round, so a slow minute of the machine falls on all of them, not on one. The first
round also classifies the test images, giving the file's own accuracy and McNemar
against the float model.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench.timing import median_interval
from harness.deploy.machines import Machine, Remote
from harness.deployschema import target_row
from harness.errors import HarnessError
from harness.plan import Artifact, DeployTarget, PipelineOptions, SshHost, TimingOptions
from harness.workflow import Log, Retrained


def artifact_of(result: Retrained, target: DeployTarget) -> Path:
    """The exported file (or SavedModel folder) ``target`` runs."""
    from harness.deploy.tflite import tflite_file_name

    if result.export_dir is None:
        raise HarnessError("no exported model to measure (the run wrote none)")
    artifact = target.spec.artifact
    if artifact is Artifact.SAVEDMODEL:
        return result.export_dir
    if artifact is Artifact.ONNX:
        if result.onnx is None:
            raise HarnessError("no model.onnx was exported")
        return result.onnx
    path = result.export_dir / tflite_file_name(target.spec.quantize)
    if not path.is_file():
        raise HarnessError(f"no {path.name} was exported")
    return path


def size_mb(path: Path) -> float:
    """A file's size; a SavedModel's own files (not the TFLite and ONNX files beside it)."""
    if path.is_file():
        return path.stat().st_size / 1e6
    files = [f for f in path.rglob("*") if f.is_file() and f.suffix not in (".tflite", ".onnx")]
    return sum(f.stat().st_size for f in files) / 1e6


@dataclass
class Inputs:
    """What every probe of one backbone reads: the test pixels, one JPEG, and the answers."""

    pixels: Path
    jpeg: Path | None
    labels: np.ndarray
    reference: np.ndarray  # the float model's top-1 per test image


def prepare_inputs(result: Retrained, classes: list[str], folder: Path) -> Inputs:
    from harness.deploy.tflite import load_pixels

    tests = result.images["testing"] or result.images["training"][:1]
    index = {c: i for i, c in enumerate(classes)}
    pixels = folder / "pixels.npy"
    np.save(pixels, load_pixels([img.path for img in tests], result.spec.input_size))
    jpeg = None
    if tests:  # a plain name: the original may have any characters, and travels over ssh
        jpeg = folder / ("sample" + (tests[0].path.suffix.lower() or ".jpg"))
        shutil.copyfile(tests[0].path, jpeg)
    labels = np.array([index[img.label] for img in result.images["testing"]], dtype=np.int64)
    return Inputs(pixels, jpeg, labels, np.asarray(result.evaluation.predictions, dtype=np.int64))


def measure_targets(
    result: Retrained,
    classes: list[str],
    targets: tuple[DeployTarget, ...],
    *,
    runs: int,
    processes: int,
    real: bool,
    log: Log,
    name: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Measure ``result``'s exported files on every target.

    Args:
        name: The model's name in the rows (a fine-tuned model's ``<backbone>+ftN``).

    Returns:
        One row per target (:data:`harness.deployschema.TARGET_COLUMNS`) and, per target
        name and thread count, its raw samples and test answers.
    """
    if not targets:
        return [], {}
    calls = max(1, math.ceil(runs / processes))
    name = name or result.spec.name
    log(
        f"{name}: measuring on {len(targets)} target(s), {processes} fresh processes "
        f"of {calls} calls each" + (", then the test photos" if real else "")
    )
    with tempfile.TemporaryDirectory(prefix="harness-targets-") as tmp:
        inputs = prepare_inputs(result, classes, Path(tmp))
        machines: dict[SshHost | None, Machine] = {}
        placed: dict[tuple[SshHost | None, Path], str] = {}
        measured: dict[DeployTarget, list[dict[str, Any]]] = {t: [] for t in targets}
        errors: dict[DeployTarget, str] = {}
        try:
            for round_ in range(processes):
                for target in targets:
                    if target in errors:
                        continue
                    try:
                        machine = _machine(machines, target.host)
                        files = [
                            artifact_of(result, target),
                            inputs.pixels,
                            *([inputs.jpeg] if inputs.jpeg else []),
                        ]
                        where = [_placed(placed, machine, target.host, f) for f in files]
                        args = ["--runtime", target.spec.runtime, "--model", where[0], "--pixels", where[1]]
                        args += ["--runs", str(calls)]
                        args += ["--jpeg", where[2]] if inputs.jpeg else []
                        args += ["--threads", str(target.threads)] if target.threads else []
                        args += ["--predict"] if round_ == 0 and real and len(inputs.labels) else []
                        measured[target].append(_parse(machine.run(args)))
                    except (HarnessError, OSError, subprocess.TimeoutExpired) as exc:
                        errors[target] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        finally:
            for machine in machines.values():
                try:
                    machine.close()
                except (HarnessError, OSError, subprocess.TimeoutExpired):
                    pass  # a temporary folder left on the remote machine harms nothing
    rows, details = [], {}
    for target in targets:
        where = f"{name} on {target.name}"
        if target in errors:
            log(f"{where}: FAILED: {errors[target]}")
            rows.append(_row(name, target, {"error": errors[target]}))
            continue
        values, detail = _figures(result, target, measured[target], inputs)
        rows.append(_row(name, target, values))
        details[f"{target.name}@{values['threads']}"] = detail
        log(describe(where, values))
    return rows, details


def deployment_details(
    result: Retrained,
    classes: list[str],
    options: PipelineOptions,
    timing: TimingOptions,
    *,
    real: bool,
    log: Log,
    run_id: str | None,
    name: str | None = None,
) -> dict[str, Any]:
    """A model's details entries for ``options.targets``: ``targets`` (raw samples and test
    answers) and ``deployments`` (its rows, which the runner moves into the run record)."""
    rows, samples = measure_targets(
        result,
        classes,
        options.targets,
        runs=timing.target_runs,
        processes=timing.target_processes,
        real=real,
        log=log,
        name=name,
    )
    return {"targets": samples, "deployments": [{**row, "run_id": run_id} for row in rows]}


def _machine(machines: dict[SshHost | None, Machine], host: SshHost | None) -> Machine:
    if host not in machines:
        machines[host] = Machine() if host is None else Remote(host)
    return machines[host]


def _placed(
    placed: dict[tuple[SshHost | None, Path], str], machine: Machine, host: SshHost | None, f: Path
) -> str:
    if (host, f) not in placed:
        placed[(host, f)] = machine.place(f)
    return placed[(host, f)]


def _parse(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    try:
        out = json.loads(lines[-1])
    except ValueError:
        raise HarnessError(f"the timing script printed a damaged result: {lines[-1][:80]}") from None
    if "error" in out:
        raise HarnessError(out["error"])
    return out


def _figures(
    result: Retrained, target: DeployTarget, runs: list[dict[str, Any]], inputs: Inputs
) -> tuple[dict[str, Any], dict[str, Any]]:
    from harness.pipeline.evaluate import mcnemar_counts

    groups = [r["samples_ms"] for r in runs]
    samples = np.concatenate([np.asarray(g, float) for g in groups])
    e2e = [r["e2e_samples_ms"] for r in runs if r.get("e2e_samples_ms")]
    low, high = median_interval(groups)
    values: dict[str, Any] = {
        "host": runs[0]["machine"]["hostname"],
        "threads": runs[0]["threads"],
        "latency_ms_p50": float(np.median(samples)),
        "latency_ms_p50_ci_low": low,
        "latency_ms_p50_ci_high": high,
        "latency_ms_p90": float(np.percentile(samples, 90)),
        "latency_ms_p99": float(np.percentile(samples, 99)),
        "e2e_ms_p50": float(np.median(np.concatenate(e2e))) if e2e else None,
        "first_ms": float(np.median([r["first_ms"] for r in runs])),
        "load_s": float(np.median([r["load_s"] for r in runs])),
        "peak_memory_mb": max(r["rss_peak_mb"] for r in runs),
        "runtime_memory_mb": max(r["rss_runtime_mb"] for r in runs),
        "size_mb": size_mb(artifact_of(result, target)),
        "n_calls": int(samples.size),
        "processes": len(runs),
    }
    detail: dict[str, Any] = {"samples_ms": groups, "e2e_samples_ms": e2e or None, "correct": None}
    predictions = runs[0].get("predictions")
    if predictions is not None and len(predictions) == len(inputs.labels):
        answers = np.asarray(predictions)
        correct = answers == inputs.labels
        _a, _b, p = mcnemar_counts((inputs.reference == inputs.labels).tolist(), correct.tolist())
        values |= {
            "test_accuracy": float(correct.mean()),
            "agreement": float(np.mean(answers == inputs.reference)),
            "mcnemar_p": p,
        }
        detail["correct"] = correct.astype(int).tolist()
    return values, detail


def _row(name: str, target: DeployTarget, values: dict[str, Any]) -> dict[str, Any]:
    spec = target.spec
    base = {
        "backbone": name,
        "target": target.name,
        "runtime": spec.runtime,
        "artifact": str(spec.artifact),
        "quantize": spec.quantize if spec.artifact is not Artifact.SAVEDMODEL else None,
        "threads": target.threads,
        "host": target.host.host if target.host else Machine.name,
    }
    return target_row(base | values)


def describe(name: str, v: dict[str, Any]) -> str:
    """One log line per backbone and target."""
    text = (
        f"{name} ({v['threads']} threads): {v['latency_ms_p50']:.2f} ms p50 "
        f"({v['latency_ms_p50_ci_low']:.2f}-{v['latency_ms_p50_ci_high']:.2f}), "
        f"p90 {v['latency_ms_p90']:.2f}, "
        f"first call {v['first_ms']:.1f} ms, load {v['load_s']:.2f} s, peak {v['peak_memory_mb']:.0f} MB, "
        f"{v['size_mb']:.2f} MB"
    )
    if v.get("test_accuracy") is not None:
        text += f", test accuracy {v['test_accuracy']:.1%} (McNemar p = {v['mcnemar_p']:.2f} against float)"
    return text
