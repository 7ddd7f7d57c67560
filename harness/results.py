"""The result store: one JSON file per run (rows + environment), never overwritten."""

from __future__ import annotations

import json
import math
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

SCHEMA = "harness.run/1"
DEFAULT_RESULTS_DIR = Path("reports") / "runs"

#: The columns of a result row, in report order. Units are in the names.
ROW_COLUMNS = [
    "run_id",
    "backbone",
    "family",
    "device",
    "weights",
    "weights_source",
    "input_size",
    "feature_size",
    "params",
    "model_size_mb",
    "n_classes",
    "n_train",
    "n_validation",
    "n_test",
    "n_failed_images",
    "build_s",
    "bottleneck_phase",
    "bottleneck_cached",
    "bottleneck_computed",
    "bottleneck_phase_s",
    "bottleneck_cold_img_per_s",
    "bottleneck_batch_size",
    "bottleneck_img_per_s",
    "bottleneck_img_per_s_p90",
    "bottleneck_ms_per_img_p50",
    "bottleneck_ms_per_img_p90",
    "bottleneck_spread",
    "train_s",
    "export_s",
    "model_load_s",
    "latency_ms_first",
    "latency_ms_p50",
    "latency_ms_p90",
    "validation_accuracy",
    "test_accuracy",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
    "error",
]

#: TFLite variants harness can export; each adds five columns to a row. ``agreement``
#: is the fraction of test images whose top-1 equals the float SavedModel's.
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
TFLITE_FIELDS = ("size_mb", "test_accuracy", "agreement", "latency_ms_p50", "latency_ms_p90")
ROW_COLUMNS[-1:-1] = [f"tflite_{q}_{f}" for q in QUANTIZATIONS for f in TFLITE_FIELDS] + ["tflite_threads"]
TEXT_COLUMNS = {
    "run_id",
    "backbone",
    "family",
    "device",
    "weights",
    "weights_source",
    "bottleneck_phase",
    "error",
}


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC time plus a random suffix."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _clean(value: Any) -> Any:
    """JSON has no NaN: store missing numbers as null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def save_run(record: dict[str, Any], results_dir: str | os.PathLike[str] = DEFAULT_RESULTS_DIR) -> Path:
    """Write ``record`` as ``<results_dir>/<run_id>.json``; an existing file is never replaced.

    Raises:
        HarnessError: if the folder is not writable or the disk is full.
    """
    directory = Path(results_dir)
    final = directory / f"{record['run_id']}.json"
    data = json.dumps(_clean(record), indent=1, default=str).encode()
    tmp = directory / f".{final.name}.{os.getpid()}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, final)  # fails if the name exists: runs are never overwritten
    except FileExistsError as exc:
        raise HarnessError(f"run {final} exists already; not overwriting it") from exc
    except OSError as exc:
        raise HarnessError(f"cannot write results to {directory}: {exc.strerror or exc}") from exc
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass
    return final


def load_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read run {path}: {exc}") from exc
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise HarnessError(f"{path} is not a harness run (schema {SCHEMA})")
    return record


def find_runs(
    items: list[str] | None, results_dir: str | os.PathLike[str] = DEFAULT_RESULTS_DIR
) -> list[Path]:
    """Run files named by path, run id (or unique id prefix), or all in ``results_dir``."""
    directory = Path(results_dir)
    stored = sorted(directory.glob("*.json")) if directory.is_dir() else []
    if not items:
        if not stored:
            raise HarnessError(f"no stored runs in {directory}; run `harness run` first")
        return stored
    out = []
    for item in items:
        path = Path(item)
        if path.is_file():
            out.append(path)
            continue
        hits = [p for p in stored if p.stem.startswith(item)]
        if len(hits) != 1:
            raise HarnessError(
                f"no run {item!r} in {directory}" if not hits else f"{item!r} matches {len(hits)} runs"
            )
        out.append(hits[0])
    return out


def runs_frame(runs: list[dict[str, Any]]) -> Any:
    """All rows of ``runs`` as one tidy pandas DataFrame (one row per run and backbone)."""
    import pandas as pd

    rows = []
    for run in runs:
        env = run.get("environment", {})
        for row in run.get("rows", []):
            rows.append(
                {
                    **{c: row.get(c) for c in ROW_COLUMNS},
                    "created": run.get("created"),
                    "hostname": env.get("hostname"),
                    "cpu": env.get("cpu"),
                    "gpu": ", ".join(g.get("name", "") for g in env.get("gpus", [])) or None,
                }
            )
    frame = pd.DataFrame(rows, columns=[*ROW_COLUMNS, "created", "hostname", "cpu", "gpu"])
    for column in ROW_COLUMNS:
        if column not in TEXT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
