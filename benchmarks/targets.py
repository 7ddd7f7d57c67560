"""Each exported model on each deployment target, side by side in one run (issue 25).

    .venv/bin/python benchmarks/targets.py --run reports/runs/<run id>.json \\
        [--targets litert,litert-int8,openvino,onnxruntime,savedmodel] [--threads 1,2] [--rounds 5]

Takes the model folders a run exported (its ``details[backbone]["export_dir"]``), and times
every file on every target in fresh processes (``harness/deploy/probe.py``, the same script
``harness run --targets`` uses), the targets taking turns round by round. Prints the CPU,
then per backbone each target's batch-1 latency p50 with its 95% interval and its ratio to
the fastest target for that backbone, and per target which backbone is fastest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="a run JSON whose models were exported")
    parser.add_argument("--targets", default="litert,litert-int8,openvino,onnxruntime,savedmodel")
    parser.add_argument("--threads", default="", help="comma-separated thread counts [default: all cores]")
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per file and target")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per process")
    args = parser.parse_args()

    from harness.bench.timing import median_interval
    from harness.cpu import cpu_features
    from harness.deploy.machines import Machine
    from harness.deploy.tflite import tflite_file_name
    from harness.deploy.variants import ONNX_FILE
    from harness.plan import Artifact, parse_targets

    print(f"CPU: {cpu_features().line()}")
    record = json.loads(args.run.read_text())
    threads = tuple(int(t) for t in args.threads.split(",") if t.strip())
    targets = parse_targets(args.targets, threads)
    rng = np.random.default_rng(0)
    machine = Machine()
    samples: dict[tuple[str, str, int | None], list[list[float]]] = {}
    folders = {b: Path(d["export_dir"]) for b, d in record["details"].items() if d and d.get("export_dir")}
    inputs: dict[str, Path] = {}
    for backbone, folder in folders.items():
        size = json.loads((folder / "harness.json").read_text())["input_size"]
        pixels = folder.parent / f".bench-{backbone}-pixels.npy"
        np.save(pixels, rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32))
        inputs[backbone] = pixels
    try:
        for _ in range(args.rounds):
            for backbone, folder in folders.items():
                for t in targets:
                    artifact = {
                        Artifact.SAVEDMODEL: folder,
                        Artifact.ONNX: folder / ONNX_FILE,
                        Artifact.TFLITE: folder / tflite_file_name(t.spec.quantize),
                    }[t.spec.artifact]
                    if not artifact.exists():
                        continue
                    command = ["--runtime", t.spec.runtime, "--model", str(artifact)]
                    command += ["--pixels", str(inputs[backbone]), "--runs", str(args.calls)]
                    command += ["--threads", str(t.threads)] if t.threads else []
                    out = json.loads(machine.run(command).splitlines()[-1])
                    if "error" not in out:
                        samples.setdefault((backbone, t.name, out["threads"]), []).append(out["samples_ms"])
    finally:
        for pixels in inputs.values():
            pixels.unlink(missing_ok=True)
    medians = {k: float(np.median(np.concatenate(v))) for k, v in samples.items()}
    for backbone in folders:
        mine = {k: m for k, m in medians.items() if k[0] == backbone}
        if not mine:
            continue
        fastest = min(mine.values())
        print(f"\n{backbone}")
        for key, m in sorted(mine.items(), key=lambda kv: kv[1]):
            low, high = median_interval(samples[key])
            print(
                f"  {key[1]:<14} {key[2]} threads  {m:8.2f} ms p50 ({low:.2f}-{high:.2f})  x{m / fastest:.2f}"
            )
    print("\nfastest backbone per target:")
    for t in dict.fromkeys((k[1], k[2]) for k in medians):
        on = {k[0]: m for k, m in medians.items() if (k[1], k[2]) == t}
        best = min(on, key=on.get)
        ratios = ", ".join(f"{b} x{m / on[best]:.2f}" for b, m in sorted(on.items(), key=lambda kv: kv[1]))
        print(f"  {t[0]} ({t[1]} threads): {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
