"""The audit against the extraction it rides on, measured in one run (issue 27).

    .venv/bin/python benchmarks/audit_speed.py --image-dir ../shared/data/flower_photos_subset \\
        --weights-dir ../shared/keras_home/models [--backbone mobilenet_v1_100]

Times, in one process: the cold extraction of every photo into an empty cache (harness'
own path, the runtime ``--runtime auto`` picks), then the audit with that cache warm,
whole (backbone build, cache read, audit) and the audit's own work alone, and prints each
as a ratio to the cold extraction, with the CPU it ran on.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-dir", required=True, type=Path)
    parser.add_argument("--weights-dir", type=Path)
    parser.add_argument("--backbone", default="mobilenet_v1_100")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from harness.cpu import cpu_features
    from harness.plan import DataOptions, PipelineOptions
    from harness.workflow.audit import audit_folder
    from harness.workflow.bottlenecks import bottlenecks
    from harness.workflow.prepare import plan_backbones, prepare_run

    print(f"CPU: {cpu_features().line()}")
    rows = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            options = PipelineOptions(weights_dir=str(args.weights_dir), cache_dir=cache)
            (target,) = plan_backbones([args.backbone])
            dataset, (target,) = prepare_run([target], options, DataOptions(args.image_dir))
            cold = bottlenecks(target, dataset, options, lambda _: None, None).extraction
            start = time.perf_counter()
            result = audit_folder(target, dataset, options, lambda _: None)
            whole = time.perf_counter() - start
            rows.append((cold.seconds, whole, result.seconds, len(result.findings)))
    for cold, whole, own, found in rows:
        print(
            f"cold extraction {cold:.2f} s; audit on the warm cache {whole:.2f} s "
            f"({whole / cold:.2f} of it), the audit's own work {own:.2f} s ({own / cold:.2f}); "
            f"{found} findings"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
