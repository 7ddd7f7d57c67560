"""Pareto front, recommendation and comparison on crafted rows."""

import math

import pandas as pd

from harness.results.analysis import compare_runs, pareto_front, recommend
from harness.schema import row_columns


def _frame(rows):
    full = [{c: r.get(c) for c in row_columns()} | {"hostname": r.get("hostname", "h")} for r in rows]
    return pd.DataFrame(full).astype({"test_accuracy": float, "bottleneck_img_per_s": float})


def _row(name, acc, speed, weights="imagenet", device="cpu", error=None, latency=None):
    return {
        "backbone": name,
        "test_accuracy": acc,
        "bottleneck_img_per_s": speed,
        "weights": weights,
        "device": device,
        "error": error,
        "latency_ms_p50": latency,
        "run_id": "r",
        "test_accuracy_ci_low": None if acc is None else acc - 0.05,
        "test_accuracy_ci_high": None if acc is None else min(1, acc + 0.05),
    }


ROWS = [
    _row("big", 0.95, 10, latency=90),
    _row("medium", 0.92, 50, latency=20),
    _row("dominated", 0.90, 40, latency=30),  # medium is faster and more accurate
    _row("small", 0.85, 200, latency=5),
    _row("random_fast", None, 500, weights="random"),
    _row("broken", None, None, error="boom"),
]


def test_pareto_front_excludes_dominated_rows():
    frame = _frame(ROWS[:4])
    assert list(frame[pareto_front(frame)]["backbone"]) == ["big", "medium", "small"]
    # On latency (lower is better) the same three are on the front.
    assert list(frame[pareto_front(frame, "latency_ms_p50")]["backbone"]) == ["big", "medium", "small"]


def test_recommend_picks_fastest_meeting_target_and_ignores_random_weights():
    frame = _frame(ROWS)
    rec = recommend(frame, 0.9)
    assert rec.row["backbone"] == "medium"
    assert "medium: 92.0% test accuracy" in rec.message and "3 of 4 results" in rec.message
    assert recommend(frame, 0.8).row["backbone"] == "small"  # random_fast is faster but has no accuracy
    assert recommend(frame, 0.9, speed="latency_ms_p50").row["backbone"] == "medium"


def test_recommend_says_when_none_meets_the_target():
    rec = recommend(_frame(ROWS), 0.99)
    assert rec.row is None
    assert "no backbone reaches 99.0%" in rec.message and "big at 95.0%" in rec.message
    assert recommend(_frame(ROWS), 0.5, device="gpu").row is None


def test_compare_gives_speedups_per_backbone():
    cpu = _frame([_row("a", 0.9, 10, latency=40), _row("b", 0.8, 100, latency=8)])
    gpu = _frame([_row("a", 0.9, 80, device="gpu", latency=10), _row("c", 0.8, 1, device="gpu")])
    merged = compare_runs(cpu, gpu)
    assert list(merged["backbone"]) == ["a"]
    assert math.isclose(merged["throughput_speedup"].iloc[0], 8.0)
    assert math.isclose(merged["latency_speedup"].iloc[0], 4.0)
