"""``harness run``'s timing options, as one typed value."""

from __future__ import annotations

import click

from harness.cli.options import AT_LEAST_1, option_group
from harness.plan import DEFAULT_LATENCY_RUNS, DEFAULT_PROCESSES, DEFAULT_TARGET_RUNS, TimingOptions


def build_timing_options(
    timing_images: int, timing_repeats: int, latency_runs: int, target_runs: int, target_processes: int
) -> TimingOptions:
    return TimingOptions(
        timing_images=timing_images,
        timing_repeats=timing_repeats,
        latency_runs=latency_runs,
        target_runs=target_runs,
        target_processes=target_processes,
    )


timing_options = option_group(
    "timing",
    build_timing_options,
    click.option(
        "--timing-images",
        type=AT_LEAST_1,
        default=256,
        show_default=True,
        help="Images per timed extraction pass.",
    ),
    click.option(
        "--timing-repeats", type=AT_LEAST_1, default=3, show_default=True, help="Timed passes per backbone."
    ),
    click.option(
        "--latency-runs",
        type=AT_LEAST_1,
        default=DEFAULT_LATENCY_RUNS,
        show_default=True,
        help="Timed single-image calls of each export.",
    ),
    click.option(
        "--target-runs",
        type=AT_LEAST_1,
        default=DEFAULT_TARGET_RUNS,
        show_default=True,
        help="Timed batch-1 calls of each exported file on each --targets target (p50/p90/p99).",
    ),
    click.option(
        "--target-processes",
        type=AT_LEAST_1,
        default=DEFAULT_PROCESSES,
        show_default=True,
        help="Fresh processes those calls are spread over (each loads the model anew).",
    ),
)
