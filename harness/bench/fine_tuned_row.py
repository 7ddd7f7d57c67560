"""The fine-tuned row: ``--fine-tune`` after the head-only model of the same backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.bench.accuracy import against_head_only, test_outcomes
from harness.bench.deployment import deployment_details
from harness.bench.measure import accuracy_values, measure_exports
from harness.pipeline.dataset import Dataset
from harness.plan import PipelineOptions, TimingOptions
from harness.schema import complete_row
from harness.workflow import Log, Progress, Retrained

#: Head-only values that are not the fine-tuned model's: recomputed, or meaningless for it.
_NOT_CARRIED = (
    "tflite_",
    "split_accuracy_",
    "n_splits",
    "model_",
    "latency_",
    "export_s",
    "test_",
    "validation_",
)


def fine_tuned_name(backbone: str, options: PipelineOptions) -> str:
    """``mobilenet_v1_025+ft10``: the fine-tuned model's name in rows, reports and folders."""
    assert options.fine_tune is not None
    return f"{backbone}+{options.fine_tune.tag}"


def benchmark_fine_tuned(
    result: Retrained,
    head_row: dict[str, Any],
    dataset: Dataset,
    options: PipelineOptions,
    model_dir: Path | None,
    *,
    sample_file: str,
    timing: TimingOptions,
    log: Log,
    progress: Progress | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fine-tune the head-only ``result`` (already measured) and measure the fine-tuned model.

    Its speed columns are the head-only row's: fine-tuning changes weights, not the
    network. Accuracy, latency and exports are its own, and McNemar's test compares it
    with the head-only model on the same test images.
    """
    from harness.workflow.fine_tune import fine_tune_retrained

    name = fine_tuned_name(result.spec.name, options)
    target = model_dir.with_name(f"{model_dir.name}+{options.fine_tune.tag}") if model_dir else None
    tuned = fine_tune_retrained(result, dataset, options, target, log=log, progress=progress)
    real = options.weights.real
    exports, tflite_details, latency = measure_exports(tuned, sample_file, options, timing.latency_runs, log)
    ft = tuned.fine_tuned
    values = {k: v for k, v in head_row.items() if not k.startswith(_NOT_CARRIED)}
    values |= exports | accuracy_values(tuned, real)
    values |= {
        "backbone": name,
        "trained": f"head + top {ft.counted}" if options.fine_tune.layers else "head + all layers",
        "train_s": tuned.train_seconds,
        "fine_tune_layers": ft.counted,
        "fine_tune_params": ft.params_trained,
        "fine_tune_s": ft.seconds,
        "fine_tune_epochs": len(ft.history) - 1,
        "fine_tune_best_epoch": ft.best_epoch,
        "fine_tune_stopped": ft.stopped,
        "head_only_latency_ms_p50": head_row.get("latency_ms_p50"),
    }
    details: dict[str, Any] = {
        "classes": dataset.classes,
        "fine_tune_history": ft.history,
        "fine_tuned_layers": ft.layers,
        "timing": {"latency": {k: v for k, v in latency.items() if k != "load_s"}},
        "export_dir": str(tuned.export_dir) if tuned.export_dir else None,
        "tflite": tflite_details,
    }
    # The fine-tuned file on the same targets: rows of its own.
    details |= deployment_details(
        tuned, dataset.classes, options, timing, real=real, log=log, run_id=head_row.get("run_id"), name=name
    )
    if real:
        ev = tuned.evaluation
        details |= {"confusion": ev.confusion, "per_class": ev.per_class, "misclassified": ev.misclassified}
        details["test_outcomes"] = test_outcomes(tuned, dataset)
        head_right, tuned_right, p = against_head_only(result, tuned, dataset)
        values |= {
            "head_only_test_accuracy": head_row.get("test_accuracy"),
            "head_only_only_right": head_right,
            "fine_tuned_only_right": tuned_right,
            "head_only_p_value": p,
        }
    return complete_row(values), details
