"""What `--repeats 10` (and `--learning-curve`) add to a warm `harness run`, same process.

    .venv/bin/python benchmarks/repeats_overhead.py --image-dir ../shared/data/flower_photos_subset \\
        --weights-dir ../shared/keras_home/models [--backbones mobilenet_v1_025,...]

Fills the bottleneck cache once (not timed), then times, for each backbone, a warm run
with default timing options as `harness run` makes it (retrain, evaluate, export, time),
alternating plain, `--repeats 10` and `--learning-curve` runs twice, and prints the
median extra time of each as a share of the plain warm run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-dir", required=True)
    parser.add_argument("--weights-dir")
    parser.add_argument(
        "--backbones", default="mobilenet_v1_025,mobilenet_v2_035,mobilenet_v1_100,inception_v3"
    )
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from harness.bench.accuracy import AccuracyOptions
    from harness.bench.envinfo import environment
    from harness.bench.runner import TimingOptions, run_backbones
    from harness.pipeline.dataset import prepare_dataset
    from harness.registry import registry
    from harness.workflow import PipelineOptions

    env = environment()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = prepare_dataset(args.image_dir, cache_dir=tmp)
        options = PipelineOptions(weights_dir=args.weights_dir, cache_dir=tmp)
        variants = {
            "plain": AccuracyOptions(),
            "--repeats 10": AccuracyOptions(repeats=10),
            "--learning-curve": AccuracyOptions(learning_curve=True),
        }
        print(f"{'backbone':<18} {'warm run s':>10} {'+repeats 10':>12} {'+learning curve':>16}")
        for name in args.backbones.split(","):
            spec = registry.get(name)
            run_backbones([spec], dataset, options, TimingOptions(timing_images=8, timing_repeats=1),
                          Path(tmp) / "m", environment=env)  # fmt: skip
            seconds: dict[str, list[float]] = {v: [] for v in variants}
            for _ in range(args.rounds):
                for label, accuracy in variants.items():
                    start = time.perf_counter()
                    run_backbones([spec], dataset, options, TimingOptions(), Path(tmp) / "m",
                                  environment=env, accuracy=accuracy)  # fmt: skip
                    seconds[label].append(time.perf_counter() - start)
            plain = statistics.median(seconds["plain"])
            extra = {v: statistics.median(seconds[v]) - plain for v in variants if v != "plain"}
            cells = [
                f"{extra[v]:>+7.1f} s {extra[v] / plain:>4.0%}" for v in ("--repeats 10", "--learning-curve")
            ]
            print(f"{name:<18} {plain:>10.1f} {cells[0]:>12} {cells[1]:>16}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
