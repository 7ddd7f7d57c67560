"""`harness run`: the shared pipeline over several backbones, timed, one tidy row each."""

from __future__ import annotations

import gc
import secrets
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.bench.accuracy import AccuracyOptions, beyond_one_split
from harness.bench.measure import accuracy_values, measure_exports
from harness.errors import HarnessError, one_line
from harness.pipeline.dataset import Dataset
from harness.plan import PipelineOptions, Target, TimingOptions
from harness.registry import BackboneSpec
from harness.results.significance import outcomes_of, paired_tests
from harness.schema import SCHEMA, complete_row
from harness.workflow import Log, Progress, retrain_final_layer
from harness.workflow.precision import precision_values


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC time plus a random suffix."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def benchmark_backbone(
    target: Target,
    dataset: Dataset,
    options: PipelineOptions,
    timing: TimingOptions,
    model_dir: Path | None,
    *,
    run_id: str,
    log: Log,
    progress: Progress | None,
    versions: dict[str, str],
    accuracy: AccuracyOptions | None = None,
    debug: bool = False,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Retrain, evaluate and export one backbone, then time it: its row and its details,
    then those of its fine-tuned model with ``options.fine_tune``."""
    import tensorflow as tf

    from harness.bench.timing import time_bottlenecks

    spec = target.spec
    options = options.for_backbone(spec)
    result = retrain_final_layer(
        target, dataset, options, model_dir, log=log, progress=progress, versions=versions
    )
    ex = result.extraction
    images = [img for img in dataset.images.images if img.content_hash in ex.features]
    paths = [img.file for img in images[: timing.timing_images]]
    batch = min(options.extract_batch_size, max(1, len(paths) // 4))
    log(f"{spec.name}: timing bottlenecks on {len(paths)} images x {timing.timing_repeats}")
    with tf.device(options.device.tf_name):
        throughput = time_bottlenecks(result.backbone, paths, batch_size=batch, repeats=timing.timing_repeats)
    if hasattr(result.backbone.extract, "close"):
        result.backbone.extract.close()  # the LiteRT interpreter is done: no idle threads while timing
    ev = result.evaluation
    real = options.weights.real
    phase = "cold" if ex.cached == 0 else "warm" if ex.computed == 0 else "mixed"
    values: dict[str, Any] = {
        "run_id": run_id,
        "backbone": spec.name,
        "family": spec.family,
        "device": options.device,
        "weights": options.weights,
        "weights_source": result.backbone.weights_source,
        "input_size": spec.input_size,
        "feature_size": result.backbone.feature_size,
        "params": result.backbone.params,
        "n_classes": len(dataset.classes),
        "n_train": result.splits_used["training"],
        "n_validation": result.splits_used["validation"],
        "n_test": result.splits_used["testing"],
        "n_failed_images": len(result.failed_images),
        "build_s": result.backbone.build_seconds,
        "bottleneck_phase": phase,
        "bottleneck_cached": ex.cached,
        "bottleneck_computed": ex.computed,
        "bottleneck_phase_s": ex.seconds,
        "bottleneck_cold_img_per_s": ex.computed / ex.compute_seconds if ex.computed else None,
        "bottleneck_batch_size": throughput["batch_size"],
        "bottleneck_runtime": result.backbone.runtime,
        "bottleneck_precision": result.backbone.precision,
        "bottleneck_img_per_s": throughput["img_per_s"],
        "bottleneck_img_per_s_p90": throughput["img_per_s_p90"],
        "bottleneck_ms_per_img_p50": throughput["ms_per_img_p50"],
        "bottleneck_ms_per_img_p90": throughput["ms_per_img_p90"],
        "bottleneck_spread": throughput["spread"],
        "train_s": result.train_seconds,
    }
    exports, tflite_details, latency = measure_exports(result, paths[0], options, timing.latency_runs, log)
    values |= exports | accuracy_values(result, real) | precision_values(result.precision_check)
    from harness.bench.deployment import deployment_details

    deployed = deployment_details(result, dataset.classes, options, timing, real=real, log=log, run_id=run_id)
    extra_details: dict[str, Any] = {}
    if real:
        extra, extra_details = beyond_one_split(result, dataset, options, accuracy or AccuracyOptions(), log)
        values.update(extra)
    if options.fine_tune is not None:
        values["trained"] = "head"
    details = {
        **extra_details,
        "classes": dataset.classes,
        "history": result.history if real else [],
        "confusion": ev.confusion if real else None,
        "per_class": ev.per_class if real else None,
        "calibration": result.metadata.get("calibration") if real else None,
        "misclassified": ev.misclassified if real else None,
        "failed_images": result.failed_images,
        "timing": {"bottleneck": throughput, "latency": {k: v for k, v in latency.items() if k != "load_s"}},
        "export_dir": str(result.export_dir) if result.export_dir else None,
        "tflite": tflite_details,
        "runtime_rates": result.runtime_rates,
        **deployed,  # per target: raw samples and test answers, and the rows
    }
    rows = [(complete_row(values), details)]
    if options.fine_tune is not None:
        from harness.bench.fine_tuned_row import benchmark_fine_tuned, fine_tuned_name

        try:
            rows.append(
                benchmark_fine_tuned(
                    result,
                    rows[0][0],
                    dataset,
                    options,
                    model_dir,
                    sample_file=paths[0],
                    timing=timing,
                    log=log,
                    progress=progress,
                )
            )
        except Exception as exc:  # the head-only row stands; the fine-tuned one says why not
            if debug:
                raise
            name = fine_tuned_name(spec.name, options)
            log(f"{name}: FAILED: {one_line(exc)}")
            rows.append((error_row(name, run_id, options.device, options.weights, one_line(exc)), {}))
    return rows


def error_row(spec_name: str, run_id: str, device: str, weights: str, error: str) -> dict[str, Any]:
    return complete_row(dict(run_id=run_id, backbone=spec_name, device=device, weights=weights, error=error))


def run_backbones(
    targets: list[Target | BackboneSpec],
    dataset: Dataset,
    options: PipelineOptions,
    timing: TimingOptions,
    models_dir: Path | None,
    *,
    environment: dict[str, Any],
    log: Log = lambda _: None,
    progress_for: Callable[[str], Progress] | None = None,
    debug: bool = False,
    accuracy: AccuracyOptions | None = None,
) -> dict[str, Any]:
    """Benchmark every target; a failing backbone becomes a row with its error.

    Args:
        targets: The backbones, as the run plan resolved them (a target whose weights
            could not be had is recorded with its error, not run); bare specs resolve
            their own weights.

    Returns:
        The run record (schema :data:`harness.schema.SCHEMA`), ready for
        :func:`harness.results.store.save_run`.
    """
    run_id = new_run_id()
    rows: list[dict[str, Any]] = []
    deployments: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    for target in targets:
        target = target if isinstance(target, Target) else Target(target)
        spec = target.spec
        log(f"== {spec.name}")
        try:
            if target.error is not None:
                raise HarnessError(target.error)
            measured = benchmark_backbone(
                target,
                dataset,
                options,
                timing,
                (models_dir / spec.safe_name()) if models_dir else None,
                run_id=run_id,
                log=log,
                progress=progress_for(spec.name) if progress_for else None,
                versions=environment.get("versions", {}),
                accuracy=accuracy,
                debug=debug,
            )
        except Exception as exc:
            if debug:
                raise
            message = one_line(exc)
            log(f"{spec.name}: FAILED: {message}")
            measured = [(error_row(spec.name, run_id, options.device, options.weights, message), {})]
        for row, detail in measured:
            rows.append(row)
            deployments.extend(detail.pop("deployments", []))
            details[row["backbone"]] = detail
        _release_memory()
    skipped = {path: reason for path, reason in dataset.images.skipped}
    for detail in details.values():
        skipped.update(dict(detail.get("failed_images", [])))
    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment,
        "config": {
            "weights": options.weights,
            "train": options.train.as_dict(),
            "extract_batch_size": options.extract_batch_size,
            "runtime": options.runtime,
            "cache": options.cache_dir is not None,
            "device": options.device,
            "timing": {"device": options.device, **asdict(timing)},
            "targets": [t.name for t in options.targets],
            "accuracy": asdict(accuracy or AccuracyOptions()),
            "fine_tune": asdict(options.fine_tune) if options.fine_tune else None,
            "seed": options.train.seed,
        },
        "dataset": {
            "root": str(dataset.images.root),
            "fingerprint": dataset.fingerprint,
            "classes": dataset.classes,
            "split_sizes": dataset.split_sizes(),
            "validation_percentage": dataset.validation_percentage,
            "testing_percentage": dataset.testing_percentage,
            "skipped": dataset.images.skipped,
        },
        "rows": rows,
        # One row per backbone, deployment target and thread count (harness.deployschema).
        "deployments": deployments,
        "details": details,
        # McNemar on the test images, for every pair of backbones with real weights.
        "paired": paired_tests(outcomes_of(details)),
        # Every file not used, with why: scan skips and files that failed to decode.
        "skipped_files": [{"path": p, "reason": r} for p, r in sorted(skipped.items())],
    }


def _release_memory() -> None:
    import keras

    keras.backend.clear_session()
    gc.collect()
