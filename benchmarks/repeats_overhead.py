"""What `--repeats 10` (and `--learning-curve`) add to a warm `harness run`, same process.

    .venv/bin/python benchmarks/repeats_overhead.py --image-dir ../shared/data/flower_photos_subset \\
        --weights-dir ../shared/keras_home/models [--backbones mobilenet_v1_025,...]

Fills the bottleneck cache once (not timed), then times, for each backbone, a warm run
with default timing options as `harness run` makes it (retrain, evaluate, export, time),
alternating plain, `--repeats 10` and `--learning-curve` runs (--rounds times), and prints
what each adds as a share of the plain warm run: the difference of the median whole runs,
and the median of the option's own phase as timed inside the run (less noisy: the
difference of two totals carries both totals' noise).

``--cli`` times the command a user runs instead: ``harness run`` with a warm cache, in a
fresh process each time (importing TensorFlow, scanning the folder and writing the report
included), alternating plain and ``--repeats 10`` runs; the phase's own time comes from
each run's JSON. This is the warm run a user waits for; the default measures the stricter
share of the in-process benchmark alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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
    parser.add_argument("--cli", action="store_true", help="time whole `harness run` commands")
    args = parser.parse_args()
    if args.cli:
        return cli_overhead(args)

    from harness.bench.accuracy import AccuracyOptions
    from harness.bench.envinfo import environment
    from harness.bench.runner import run_backbones
    from harness.pipeline.dataset import prepare_dataset
    from harness.plan import PipelineOptions, TimingOptions
    from harness.registry import registry

    env = environment()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = prepare_dataset(args.image_dir, cache_dir=tmp)
        options = PipelineOptions(weights_dir=args.weights_dir, cache_dir=tmp)
        variants = {
            "plain": AccuracyOptions(),
            "--repeats 10": AccuracyOptions(repeats=10),
            "--learning-curve": AccuracyOptions(learning_curve=True),
        }
        print("added: difference of the medians of whole runs (the phase's own time in the run)")
        print(f"{'backbone':<18} {'warm run s':>10} {'+repeats 10':>26} {'+learning curve':>26}")
        for name in args.backbones.split(","):
            spec = registry.get(name)
            run_backbones([spec], dataset, options, TimingOptions(timing_images=8, timing_repeats=1),
                          Path(tmp) / "m", environment=env)  # fmt: skip
            seconds: dict[str, list[float]] = {v: [] for v in variants}
            phase: dict[str, list[float]] = {v: [] for v in variants}  # its own phase, timed in the run
            for _ in range(args.rounds):
                for label, accuracy in variants.items():
                    start = time.perf_counter()
                    run = run_backbones([spec], dataset, options, TimingOptions(), Path(tmp) / "m",
                                        environment=env, accuracy=accuracy)  # fmt: skip
                    seconds[label].append(time.perf_counter() - start)
                    detail = run["details"][name]
                    own = detail.get("splits_seconds", detail.get("learning_curve_seconds", 0.0))
                    phase[label].append(own)
            plain = statistics.median(seconds["plain"])
            cells = []
            for v in ("--repeats 10", "--learning-curve"):
                extra, own = statistics.median(seconds[v]) - plain, statistics.median(phase[v])
                cells.append(f"{extra:+.1f} s {extra / plain:.0%} ({own:.1f} s {own / plain:.0%})")
            print(f"{name:<18} {plain:>10.1f} {cells[0]:>26} {cells[1]:>26}", flush=True)
    return 0


def cli_run(args: argparse.Namespace, name: str, tmp: str, *extra: str) -> tuple[float, float]:
    """One ``harness run`` of backbone ``name`` in a fresh process: its seconds, and the
    repeated splits' own seconds from its run JSON (0 without them)."""
    results = Path(tmp) / name
    command = [sys.executable, "-m", "harness", "run", "--image-dir", args.image_dir, "--backbones", name,
               "--cache-dir", f"{tmp}/cache", "--results-dir", str(results), "--models-dir", f"{tmp}/models",
               *extra]  # fmt: skip
    if args.weights_dir:
        command += ["--weights-dir", args.weights_dir]
    before = set(results.glob("runs/*.json"))
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    (record,) = set(results.glob("runs/*.json")) - before
    details = json.loads(record.read_text())["details"][name]
    return seconds, details.get("splits_seconds", 0.0)


def cli_overhead(args: argparse.Namespace) -> int:
    """What ``--repeats 10`` adds to a warm ``harness run`` command, each run its own process."""
    print("added by --repeats 10 to a warm `harness run`: difference of the medians (the phase's own time)")
    print(f"{'backbone':<18} {'warm run s':>10} {'+repeats 10':>26}  each round's phase / plain run")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backbones.split(","):
            cli_run(args, name, tmp)  # fills the cache (and converts the backbone for LiteRT): not timed
            plain, repeats, phase, share = [], [], [], []
            for _ in range(args.rounds):
                plain.append(cli_run(args, name, tmp)[0])
                seconds, own = cli_run(args, name, tmp, "--repeats", "10")
                repeats.append(seconds)
                phase.append(own)
                share.append(own / plain[-1])
            base = statistics.median(plain)
            extra = statistics.median(repeats) - base
            own = statistics.median(phase)
            cell = f"{extra:+.1f} s {extra / base:.0%} ({own:.1f} s {statistics.median(share):.0%})"
            shares = ", ".join(f"{v:.0%}" for v in share)
            print(f"{name:<18} {base:>10.1f} {cell:>26}  {shares}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
