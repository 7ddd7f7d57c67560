"""The result store: one JSON file per run (rows + environment), never overwritten."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write, json_text
from harness.errors import HarnessError
from harness.schema import SCHEMA, complete_row, row_columns, text_columns

#: A results folder holds runs/<run id>.json and, beside it, <run id>/report.{html,md,csv}.
DEFAULT_RESULTS_DIR = Path("reports")
RUNS_FOLDER = "runs"


def runs_dir(results_dir: str | os.PathLike[str]) -> Path:
    """Where a results folder keeps its run files."""
    return Path(results_dir) / RUNS_FOLDER


def save_run(
    record: dict[str, Any], folder: str | os.PathLike[str] = DEFAULT_RESULTS_DIR / RUNS_FOLDER
) -> Path:
    """Write ``record`` as ``<folder>/<run_id>.json``; an existing file is never replaced.

    Raises:
        HarnessError: if the folder is not writable, the disk is full or the run exists.
    """
    final = Path(folder) / f"{record['run_id']}.json"
    data = json_text(record, indent=1).encode()
    atomic_write(final, data, what=f"run {final}", overwrite=False)
    return final


def load_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read run {path}: {exc}") from exc
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise HarnessError(f"{path} is not a harness run (schema {SCHEMA})")
    rows = record.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise HarnessError(f"{path} is damaged: its rows are not a list of rows")
    if not isinstance(record.get("run_id"), str):
        raise HarnessError(f"{path} is damaged: it has no run id")
    return record


def load_runs(paths: list[Path], skip: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every readable run of ``paths``; each unreadable one is passed to ``skip`` as one line.

    Raises:
        HarnessError: when none of them can be read.
    """
    records = []
    for path in paths:
        try:
            records.append(load_run(path))
        except HarnessError as exc:
            skip(f"skipped {exc}")
    if not records:
        raise HarnessError(f"none of the {len(paths)} run file(s) could be read")
    return records


def find_runs(
    items: list[str] | None, results_dir: str | os.PathLike[str] = DEFAULT_RESULTS_DIR
) -> list[Path]:
    """Run files named by path, run id (or unique id prefix), or all in ``results_dir``.

    ``results_dir`` is a results folder (its ``runs/``) or a folder of run files itself.
    """
    directory = runs_dir(results_dir) if runs_dir(results_dir).is_dir() else Path(results_dir)
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

    columns, text = row_columns(), text_columns()
    rows = []
    for run in runs:
        env = run.get("environment", {})
        for row in run.get("rows", []):
            rows.append(
                {
                    # Derived columns are filled for runs stored before they existed.
                    **complete_row({c: row.get(c) for c in columns}),
                    "created": run.get("created"),
                    "hostname": env.get("hostname"),
                    "cpu": env.get("cpu"),
                    "gpu": ", ".join(g.get("name", "") for g in env.get("gpus", [])) or None,
                }
            )
    frame = pd.DataFrame(rows, columns=[*columns, "created", "hostname", "cpu", "gpu"])
    for column in columns:
        if column not in text:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
