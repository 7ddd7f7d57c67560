"""Deciding for deployment: which backbone to ship on a target, within budgets, and speed-ups
between runs with the interval that says whether they are noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.deployschema import TARGET_COLUMN_NAMES, TARGET_COLUMNS
from harness.pipeline.evaluate import mcnemar_counts

_TEXT = {c.name for c in TARGET_COLUMNS if c.kind == "text"}
ALPHA = 0.05


def targets_frame(runs: list[dict[str, Any]], *, all_runs: bool = False) -> pd.DataFrame:
    """Deployment rows of ``runs`` (oldest first): by default only each backbone's latest run."""
    rows = []
    for run in runs:
        for row in run.get("deployments") or []:
            if isinstance(row, dict):
                rows.append({**{c: row.get(c) for c in TARGET_COLUMN_NAMES}, "created": run.get("created")})
    frame = pd.DataFrame(rows, columns=[*TARGET_COLUMN_NAMES, "created"])
    for name in TARGET_COLUMN_NAMES:
        if name not in _TEXT:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    if not all_runs and not frame.empty:
        latest = frame.groupby("backbone", sort=False)["run_id"].transform("last")
        frame = frame[frame["run_id"] == latest]
    return frame.reset_index(drop=True)


def _answers(runs: list[dict[str, Any]]) -> dict[tuple[str, str, str, int], dict[str, bool]]:
    """(run, backbone, target, threads) -> test image -> right, from the runs' details."""
    out = {}
    for run in runs:
        for backbone, detail in (run.get("details") or {}).items():
            images = ((detail or {}).get("test_outcomes") or {}).get("images")
            for key, measured in ((detail or {}).get("targets") or {}).items():
                target, _, threads = key.rpartition("@")
                if images and measured.get("correct") and threads.isdigit():
                    out[(run["run_id"], backbone, target, int(threads))] = dict(
                        zip(images, map(bool, measured["correct"]))
                    )
    return out


def paired_p(answers: dict[Any, dict[str, bool]], a: Any, b: Any) -> float | None:
    """Exact McNemar between two deployed files on the test images both answered."""
    if a not in answers or b not in answers:
        return None
    common = sorted(set(answers[a]) & set(answers[b]))
    if not common:
        return None
    return mcnemar_counts([answers[a][i] for i in common], [answers[b][i] for i in common])[2]


@dataclass(frozen=True)
class Budget:
    """What ``harness recommend --target`` may not exceed, and the accuracy it needs."""

    max_latency_ms: float | None = None
    max_memory_mb: float | None = None
    max_size_mb: float | None = None
    min_accuracy: float | None = None

    def fits(self, frame: pd.DataFrame) -> pd.Series:
        ok = pd.Series(True, index=frame.index)
        for column, limit in (
            ("latency_ms_p50", self.max_latency_ms),
            ("peak_memory_mb", self.max_memory_mb),
            ("size_mb", self.max_size_mb),
        ):
            if limit is not None:
                ok &= frame[column] <= limit
        if self.min_accuracy is not None:
            ok &= frame["test_accuracy"] >= self.min_accuracy
        return ok

    def __str__(self) -> str:
        parts = [
            f"{name} {value:g}{unit}"
            for name, value, unit in (
                ("latency p50 ≤", self.max_latency_ms, " ms"),
                ("peak memory ≤", self.max_memory_mb, " MB"),
                ("size ≤", self.max_size_mb, " MB"),
            )
            if value is not None
        ]
        if self.min_accuracy is not None:
            parts.append(f"test accuracy ≥ {self.min_accuracy:.1%}")
        return ", ".join(parts) or "no budget"


@dataclass
class TargetPick:
    """The backbone to ship on one target, or why there is none."""

    target: str
    row: dict[str, Any] | None
    message: str
    candidates: pd.DataFrame

    @property
    def line(self) -> str:
        return f"Ship {self.message}" if self.row is not None else f"{self.target}: {self.message}"


def recommend_for_target(
    runs: list[dict[str, Any]], target: str, budget: Budget, *, threads: int | None = None
) -> TargetPick:
    """The fastest backbone on ``target`` within ``budget`` and not significantly less accurate
    (exact McNemar, p < 0.05) than the most accurate backbone that fits.

    Only files whose own test accuracy was measured (ImageNet weights) are candidates.
    """
    frame = targets_frame(runs)
    rows = frame[(frame["target"] == target) & frame["error"].isna()]
    if threads is not None:
        rows = rows[rows["threads"] == threads]
    if rows.empty:
        known = ", ".join(sorted(frame["target"].dropna().unique())) or "none"
        return TargetPick(target, None, f"no measurements on target {target} (measured: {known})", rows)
    if threads is None:  # several thread counts measured: the most threads, as deployed by default
        rows = rows[rows["threads"] == rows["threads"].max()]
    rows = rows.dropna(subset=["test_accuracy", "latency_ms_p50"])
    if rows.empty:
        return TargetPick(
            target, None, f"no file on {target} has a measured accuracy (random weights?)", rows
        )
    fitting = rows[budget.fits(rows)]
    if fitting.empty:
        fastest = rows.sort_values("latency_ms_p50").iloc[0]
        return TargetPick(
            target,
            None,
            f"no backbone on {target} meets {budget}; the fastest is {fastest['backbone']} at "
            f"{fastest['latency_ms_p50']:.2f} ms p50, {fastest['peak_memory_mb']:.0f} MB peak, "
            f"{fastest['test_accuracy']:.1%}",
            fitting,
        )
    answers = _answers(runs)

    def key(row: pd.Series) -> tuple[str, str, str, int]:
        return (row["run_id"], row["backbone"], row["target"], int(row["threads"]))

    best = fitting.sort_values(["test_accuracy", "latency_ms_p50"], ascending=[False, True]).iloc[0]
    p_values = {
        i: 1.0 if row["backbone"] == best["backbone"] else paired_p(answers, key(best), key(row))
        for i, row in fitting.iterrows()
    }
    kept = fitting[[p is not None and p >= ALPHA for p in p_values.values()]]
    pick = kept.sort_values("latency_ms_p50").iloc[0]
    message = (
        f"on {target} ({int(pick['threads'])} threads, {pick['host']}): {pick['backbone']}, "
        f"{pick['latency_ms_p50']:.2f} ms p50 ({pick['latency_ms_p50_ci_low']:.2f}-"
        f"{pick['latency_ms_p50_ci_high']:.2f}), p90 {pick['latency_ms_p90']:.2f} ms, "
        f"{pick['peak_memory_mb']:.0f} MB peak, {pick['size_mb']:.2f} MB, "
        f"test accuracy {pick['test_accuracy']:.1%}"
    )
    if pick["backbone"] == best["backbone"]:
        message += "; the most accurate within the budget"
    else:
        message += (
            f"; not significantly less accurate than {best['backbone']} ({best['test_accuracy']:.1%}, "
            f"McNemar p = {p_values[pick.name]:.2f})"
        )
    within = f" [{budget}]" if str(budget) != "no budget" else ""
    return TargetPick(target, pick.to_dict(), message + within, fitting)


def speedups(a: dict[str, Any], b: dict[str, Any]) -> pd.DataFrame:
    """Every speed both runs measured, B against A, with the interval of the ratio
    (:func:`harness.bench.timing.speedup_interval`); together the intervals hold at 95%.

    Ratios above 1 mean B is faster. ``verdict`` is ``within noise`` when the interval covers 1.
    """
    from harness.bench.timing import speedup_interval

    out = []
    pairs = _paired_samples(a, b)
    # Simultaneous intervals (Bonferroni): two identical runs compare a dozen figures or more,
    # and a dozen separate 95% intervals would let one miss 1 in most such comparisons.
    level = 1 - 0.05 / max(1, len(pairs))
    for measure, groups_a, groups_b, higher in pairs:
        pa = float(np.median(np.concatenate([np.asarray(g, float) for g in groups_a])))
        pb = float(np.median(np.concatenate([np.asarray(g, float) for g in groups_b])))
        low, high = speedup_interval(groups_a, groups_b, higher_is_faster=higher, level=level)
        point = pb / pa if higher else pa / pb
        verdict = "within noise" if low <= 1 <= high else ("B faster" if low > 1 else "B slower")
        out.append(
            {
                **measure,
                "a": pa,
                "b": pb,
                "speedup": point,
                "ci_low": low,
                "ci_high": high,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(out)


def _paired_samples(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[dict[str, Any], Any, Any, bool]]:
    """(what, samples of A by group, samples of B by group, higher is faster) for each shared figure."""
    pairs = []
    details_a, details_b = a.get("details") or {}, b.get("details") or {}
    for backbone in [n for n in details_a if n in details_b]:
        da, db = details_a[backbone] or {}, details_b[backbone] or {}
        ta, tb = (da.get("timing") or {}), (db.get("timing") or {})
        sa = (ta.get("bottleneck") or {}).get("samples_img_per_s")
        sb = (tb.get("bottleneck") or {}).get("samples_img_per_s")
        if sa and sb:  # each timed pass is a group of one
            pairs.append(
                (
                    {"backbone": backbone, "measure": "bottleneck img/s"},
                    [[x] for x in sa],
                    [[x] for x in sb],
                    True,
                )
            )
        on_a, on_b = da.get("targets") or {}, db.get("targets") or {}
        for key in [k for k in on_a if k in on_b]:
            ga, gb = on_a[key].get("samples_ms"), on_b[key].get("samples_ms")
            if ga and gb:
                pairs.append(({"backbone": backbone, "measure": f"{key} ms p50"}, ga, gb, False))
        if not on_a or not on_b:  # runs without targets: the in-process SavedModel latency
            la = (ta.get("latency") or {}).get("samples_ms")
            lb = (tb.get("latency") or {}).get("samples_ms")
            if la and lb:
                pairs.append(({"backbone": backbone, "measure": "latency ms p50"}, [la], [lb], False))
    return pairs
