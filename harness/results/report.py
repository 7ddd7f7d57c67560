"""Render runs as CSV, Markdown and a single-file HTML report (plots embedded)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader

from harness.errors import HarnessError, printable
from harness.outputs import REPORT_FILES, write_output_files
from harness.results import plots
from harness.results.analysis import (
    accuracy_column,
    compare_runs,
    fastest_not_worse,
    latest_rows,
    pareto_front,
    per_backbone,
    recommend,
    usable,
)
from harness.results.significance import outcomes_of, paired_tests
from harness.results.store import runs_frame
from harness.results.tables import (
    curve_frame,
    deployment_frame,
    display_frame,
    fine_tune_frame,
    paired_frame,
    splits_frame,
    targets_display,
)
from harness.results.targets import Budget, TargetPick, recommend_for_target, targets_frame
from harness.results.thumbnails import galleries

TEMPLATE = "report.html.j2"
#: A spreadsheet runs a cell that begins with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula, quoted with a leading ``'``."""
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
            )
    return out


def _b64(png: bytes | None) -> str | None:
    return base64.b64encode(png).decode() if png else None


def _merged_dataset(runs: list[dict[str, Any]]) -> dict[str, Any]:
    first = runs[-1].get("dataset", {})
    if len({r.get("dataset", {}).get("fingerprint") for r in runs}) > 1:
        return dict(first, fingerprint="several (runs on different data)")
    return first


def _skipped_files(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Files not used by any of ``runs``, with the reason, each listed once."""
    out: dict[str, str] = {}
    for run in runs:
        items = run.get("skipped_files")
        if items is None:  # older runs kept only the scan's list
            items = [{"path": p, "reason": r} for p, r in run.get("dataset", {}).get("skipped", [])]
        out.update({printable(item["path"]): item["reason"] for item in items})
    return sorted(out.items())


def _latest_details(runs: list[dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Per backbone, its latest run's id and details (one figure and one pair per backbone)."""
    latest: dict[str, tuple[str, dict[str, Any]]] = {}
    for run in runs:
        for name, detail in run.get("details", {}).items():
            if detail:
                latest[name] = (run["run_id"], detail)
    return latest


def _pairs(runs: list[dict[str, Any]], latest: dict[str, tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """McNemar for every pair of backbones scored on the latest run's data."""
    fingerprint = runs[-1].get("dataset", {}).get("fingerprint")
    same_data = {r["run_id"] for r in runs if r.get("dataset", {}).get("fingerprint") == fingerprint}
    details = {name: detail for name, (run_id, detail) in latest.items() if run_id in same_data}
    return paired_tests(outcomes_of(details))


def _blank(frame: pd.DataFrame) -> pd.DataFrame:
    """None and NaN alike shown as an empty cell."""
    return frame.astype(object).where(frame.notna(), "")


def _html(frame: pd.DataFrame, css: str = "") -> str | None:
    if frame.empty:
        return None
    return _blank(frame).to_html(index=False, escape=True, classes=css or None)


def _md(title: str, frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return []
    return [f"## {title}", "", _blank(frame).to_markdown(index=False), ""]


def target_pick(runs: list[dict[str, Any]], target: str, min_accuracy: float) -> TargetPick:
    """The report's decision on ``target``: the pick that reaches ``min_accuracy``, else the
    pick without that floor, said to fall short (a report always answers)."""
    pick = recommend_for_target(runs, target, Budget(min_accuracy=min_accuracy))
    if pick.row is not None:
        return pick
    floorless = recommend_for_target(runs, target, Budget())
    if floorless.row is not None:
        floorless.message += f"; no backbone reaches the {min_accuracy:.0%} accuracy target here"
    return floorless if floorless.row is not None else pick


def render_report(
    runs: list[dict[str, Any]],
    output_dir: str | os.PathLike[str],
    *,
    title: str = "harness report",
    min_accuracy: float = 0.9,
    speed: str = "bottleneck_img_per_s",
    all_runs: bool = False,
) -> dict[str, Path]:
    """Write ``report.csv``, ``report.md`` and ``report.html`` for ``runs``.

    Tables and recommendations show each backbone's latest run (every run with ``all_runs``);
    the CSV and the cold-against-warm and run-against-run tables keep every run. With
    deployment targets measured, the recommendation is made per target, by its latency;
    bottleneck throughput is then the training speed.

    Returns:
        The paths written, by format.
    """
    if not runs:
        raise HarnessError("no runs to report")
    everything = runs_frame(runs)
    frame = everything if all_runs else latest_rows(everything)
    out = Path(output_dir)
    table = display_frame(frame)
    latest = _latest_details(runs)
    pairs = _pairs(runs, latest)
    rec = recommend(frame, min_accuracy, speed=speed)
    recommendation = f"Fastest backbone with at least {min_accuracy:.0%} test accuracy: {rec.message}."
    summary = per_backbone(usable(frame, accuracy_column(speed)), speed)
    front = pareto_front(summary, speed) if not summary.empty else pd.Series(dtype=bool)
    if front.any():
        names = ", ".join(summary.loc[front[front].index, "backbone"])
        recommendation += f" Pareto front (no backbone both faster and more accurate): {names}."
    significance = fastest_not_worse(summary, pairs, speed) if not summary.empty else None
    deployed = targets_frame(runs, all_runs=all_runs)
    picks = [target_pick(runs, target, min_accuracy) for target in dict.fromkeys(deployed["target"].dropna())]
    if picks:
        recommendation = "Training speed (bottleneck throughput): " + recommendation

    cache_table = None
    phases = everything.dropna(subset=["bottleneck_phase"])
    if phases["bottleneck_phase"].nunique() > 1 or len(runs) > 1:
        pivot = phases.pivot_table(
            index="backbone", columns="bottleneck_phase", values="bottleneck_phase_s", aggfunc="min"
        ).round(2)
        if "cold" in pivot and "warm" in pivot:
            pivot["cold / warm"] = (pivot["cold"] / pivot["warm"]).round(1)
        pivot.columns = [f"{c} phase s" if c in ("cold", "warm", "mixed") else c for c in pivot.columns]
        cache_table = pivot.reset_index().to_html(index=False, escape=True, na_rep="")

    speedup_table = None
    groups = [g for _, g in everything[everything["error"].isna()].groupby(["run_id"], sort=True)]
    if len(groups) >= 2:
        keys = {(g["device"].iloc[0], g["hostname"].iloc[0]) for g in groups}
        if len(keys) > 1:
            speedup_table = (
                compare_runs(groups[0], groups[-1]).round(3).to_html(index=False, escape=True, na_rep="")
            )

    curves, confusions = [], []
    details = {name: detail for name, (_, detail) in latest.items()}
    split_scores = {n: [s["test_accuracy"] for s in d.get("splits") or []] for n, d in details.items()}
    n_classes = len(_merged_dataset(runs).get("classes") or [])
    learning = {name: detail.get("learning_curve") or [] for name, detail in details.items()}
    tables = {
        "paired": paired_frame(pairs),
        "splits": splits_frame(details),
        "curve": curve_frame(details),
        "fine_tune": fine_tune_frame(frame),
        "deploy": deployment_frame(frame),
        "targets": targets_display(deployed, with_run=all_runs) if not deployed.empty else pd.DataFrame(),
        "details": display_frame(frame, table="details"),
    }
    for name, (run_id, detail) in latest.items():
        suffix = f" ({run_id})" if len(runs) > 1 else ""
        curve = _b64(plots.training_curves(detail.get("history") or [], name + suffix))
        if curve:
            curves.append((name + suffix, curve))
        matrix = _b64(
            plots.confusion_matrix(detail.get("confusion") or [], detail.get("classes", []), name + suffix)
        )
        if matrix:
            confusions.append((name + suffix, matrix))

    html = (
        Environment(loader=PackageLoader("harness.results"), autoescape=True)
        .get_template(TEMPLATE)
        .render(
            title=title,
            runs=runs,
            dataset=_merged_dataset(runs),
            recommendation=recommendation,
            target_picks=[p.line for p in picks],
            min_accuracy=min_accuracy,
            galleries=galleries(runs, latest),
            reliability=_b64(
                plots.reliability_diagrams({n: d.get("calibration") for n, d in details.items()})
            ),
            latency_plot=_b64(plots.latency_vs_accuracy(deployed)) if not deployed.empty else None,
            significance=significance,
            table=_html(table, "comparison"),
            tables={key: _html(value) for key, value in tables.items()},
            cache_table=cache_table,
            speedup_table=speedup_table,
            scatter=_b64(plots.accuracy_vs_speed(frame, speed, split_scores)),
            learning=_b64(plots.learning_curves(learning, n_classes)),
            fine_tune=_b64(
                plots.fine_tune_curves({n: d.get("fine_tune_history") for n, d in details.items()})
            ),
            curves=curves,
            confusions=confusions,
            skipped=_skipped_files(runs),
        )
    )
    markdown = "\n".join(
        [
            f"# {title}",
            "",
            *[f"- {p.line}" for p in picks],
            *([""] if picks else []),
            recommendation,
            "",
            *([significance, ""] if significance else []),
            *_md("Deployment: each backbone on each target (batch 1, fresh processes)", tables["targets"]),
            *_md("Accuracy and speed", table),
            "Accuracy from random weights is not a result: those rows are for speed only.",
            "",
            *_md("Paired comparison on the same test images (McNemar, exact)", tables["paired"]),
            *_md("Test accuracy over repeated splits", tables["splits"]),
            *_md("Fine-tuning against head-only", tables["fine_tune"]),
            *_md("Data efficiency: mean test accuracy by training images per class", tables["curve"]),
            *_md("Deployment variants (TFLite)", tables["deploy"]),
            *_md("Cache and timing details", tables["details"]),
        ]
    )
    # Each replaced atomically (a full disk leaves the previous report intact), and only
    # where the file there is one harness wrote.
    written = write_output_files(
        out,
        {
            REPORT_FILES["csv"]: csv_safe(everything).to_csv(index=False).encode(),
            REPORT_FILES["md"]: markdown.encode(),
            REPORT_FILES["html"]: html.encode(),
        },
        what="report",
    )
    return {kind: written[name] for kind, name in REPORT_FILES.items()}
