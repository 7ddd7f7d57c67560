"""What Ray Data costs against local extraction on one machine, same process, alternating.

    .venv/bin/python benchmarks/ray_overhead.py --image-dir ../shared/data/flower_photos_subset \\
        --weights-dir ../shared/keras_home/models [--backbones mobilenet_v1_100,...] [--address local]

For each backbone, computes the bottlenecks of every image, ``--repeat`` times over (no
cache), locally and on Ray, ``--rounds`` times, and prints median rates and ratios: over
the whole call (Ray's includes starting the actor pool: a worker imports TensorFlow and
builds the backbone), and Ray's marginal rate, from Ray on half the images and on all of
them: ``half / (T(all) - T(half))``, the rate that decides what a million photos cost,
with the fixed start it leaves (``T(half) - half / marginal``). Needs the ray extra.

Each call's steady rate is timed too: the images after the first quarter came back, over
the time since. It leaves out Ray's start (the actor imports TensorFlow and builds the
backbone) within one call, so it does not carry the scatter of two calls' starts that the
marginal rate does. (Not from the first batch: Ray hands back a few calls' features at a
time, so the first batch can come back well after the actor has moved on.) Ratios are
taken within each round (local and Ray a minute apart at most; this VM's speed drifts by
20-40% over minutes) and reported as their median and range.

``--cpu`` accounts for the CPU time in those steady parts of the local and the whole Ray
call: CPU seconds per 1,000 images of every process on the machine (from /proc), grouped
by what it is (this driver, Ray's extractor actor, its read tasks, the raylet...), so that
the gap to the local rate can be put where it is spent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclass
class Timing:
    seconds: float  # the whole call
    steady: float  # img/s after a quarter came back: the start (a Ray actor's start-up) left out
    cpu: dict[str, float]  # CPU seconds per 1,000 images after a quarter came back, by process (--cpu)


def timed(stream, paths: list[str], cpu: bool = False) -> Timing:  # noqa: ANN001
    """Time one call of ``stream`` over ``paths``."""
    start = time.perf_counter()
    done, first = 0, None
    for index, _ in stream(paths):
        done += len(index)
        if first is None and done >= len(paths) // 4:
            first = (time.perf_counter(), done, cpu_by_process() if cpu else {})
    end = time.perf_counter()
    assert first is not None and done > first[1], "too few images to time"
    n = done - first[1]
    spent = cpu_spent(first[2], cpu_by_process()) if cpu else {}
    return Timing(end - start, n / (end - first[0]), {k: 1000 * v / n for k, v in spent.items()})


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-dir", required=True)
    parser.add_argument("--weights-dir")
    parser.add_argument("--backbones", default="mobilenet_v1_100,mobilenet_v2_035,mobilenet_v1_025")
    parser.add_argument("--address", default="local")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-call", type=int, help="images per actor call (default: the product's)")
    parser.add_argument("--repeat", type=int, default=4, help="each file this many times: startup amortised")
    parser.add_argument("--cpu", action="store_true", help="also account CPU time by process (Linux)")
    args = parser.parse_args()

    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.dataset import prepare_dataset
    from harness.pipeline.distributed import connect, ray_stream
    from harness.pipeline.extract import local_stream
    from harness.pipeline.litert import with_litert
    from harness.registry import registry

    dataset = prepare_dataset(args.image_dir)
    paths = [img.file for img in dataset.images.images] * args.repeat
    resources = connect(args.address)
    print(f"{len(paths)} images; Ray cluster: {resources.get('CPU', 0):.0f} CPUs; {args.rounds} rounds")
    print(
        "ratios: median of the rounds' own ratios (range); steady: after a quarter came back; "
        "marginal: half / (T(all) - T(half)) over two Ray calls"
    )
    columns = ("local img/s", "ray img/s", "whole ratio", "steady ratio", "marginal ratio", "start s")
    print(
        f"{'backbone':17s} {columns[0]:>11s} {columns[1]:>10s}  " + "".join(f"{c:18s}" for c in columns[2:])
    )
    with tempfile.TemporaryDirectory() as cache_dir:
        for name in args.backbones.split(","):
            spec = registry.get(name)
            backbone = with_litert(
                load_backbone(spec, "imagenet", args.weights_dir), "imagenet", cache_dir, print
            )
            local = local_stream(backbone, 16)
            remote = ray_stream(
                args.address,
                spec,
                weights="imagenet",
                weights_dir=args.weights_dir,
                runtime=backbone.runtime,
                cache_dir=cache_dir,
                batch_size=16,
                per_call=args.per_call,
            )
            half = paths[: len(paths) // 2]
            rates: dict[str, list[float]] = {
                k: [] for k in ("local", "ray", "whole", "steady", "marginal", "start")
            }
            cpu: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
            for _ in range(args.rounds):
                mine = timed(local, paths, args.cpu)
                short = timed(remote, half).seconds
                whole = timed(remote, paths, args.cpu)
                cpu["local"].append(mine.cpu)
                cpu["ray"].append(whole.cpu)
                local_rate = len(paths) / mine.seconds
                rates["local"].append(local_rate)
                rates["ray"].append(len(paths) / whole.seconds)
                rates["whole"].append(rates["ray"][-1] / local_rate)
                rates["steady"].append(whole.steady / mine.steady)
                # Twice the images cost (whole - short) more: the per-image rate without the
                # fixed start, which is what is left of short at that rate.
                marginal = (len(paths) - len(half)) / (whole.seconds - short)
                rates["marginal"].append(marginal / local_rate)
                rates["start"].append(short - len(half) / marginal)
            med = {k: statistics.median(v) for k, v in rates.items()}
            print(
                f"{name:17s} {med['local']:11.1f} {med['ray']:10.1f}  "
                + "".join(f"{spread(rates[k]):18s}" for k in ("whole", "steady", "marginal"))
                + f"{med['start']:.1f}",
                flush=True,
            )
            for label, rounds in cpu.items() if args.cpu else ():
                groups = {g: statistics.median(r.get(g, 0.0) for r in rounds) for g in set().union(*rounds)}
                shown = sorted(((v, g) for g, v in groups.items() if v >= 0.01), reverse=True)
                total = statistics.median(sum(r.values()) for r in rounds)
                print(
                    f"  {label}, steady part: CPU s per 1,000 images {total:.2f}: "
                    + ", ".join(f"{g} {v:.2f}" for v, g in shown),
                    flush=True,
                )
        print(
            f"driver ingest (features into the cache, 1,024 floats each): {driver_rate(cache_dir):,.0f} img/s"
        )
    return 0


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """Every process on this machine: pid -> (what it is, CPU seconds so far), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                command = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        found[int(pid)] = (_what(int(pid), command), (int(fields[11]) + int(fields[12])) / tick)
    return found


def _what(pid: int, command: str) -> str:
    if pid == os.getpid():
        return "driver"
    if command.startswith("ray::"):  # a Ray worker names itself after its task or actor
        return command.split()[0]
    for name in ("raylet", "gcs_server", "dashboard", "log_monitor", "runtime_env", "monitor.py"):
        if name in command:
            return name
    return "other"


def cpu_spent(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds spent between two :func:`cpu_by_process` snapshots, by what spent them."""
    spent: dict[str, float] = {}
    for pid, (what, cpu) in after.items():
        spent[what] = spent.get(what, 0.0) + cpu - before.get(pid, (what, 0.0))[1]
    return spent


def driver_rate(cache_dir: str, n: int = 20000, width: int = 1024, batch: int = 128) -> float:
    """How fast this process takes streamed features into the cache: the ceiling of a
    cluster of any size, since every feature comes back here."""
    import hashlib

    import numpy as np

    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.extract import extract_features
    from harness.pipeline.images import ImageFile

    images = [
        ImageFile(f"/x/{i}.jpg", "a", hashlib.sha1(str(i).encode()).hexdigest(), "jpeg") for i in range(n)
    ]
    block = np.random.default_rng(0).random((batch, width), dtype=np.float32)

    def stream(paths):  # noqa: ANN001, ANN202
        for start in range(0, len(paths), batch):
            index = np.arange(start, min(start + batch, len(paths)))
            yield index, block[: len(index)]

    cache = CacheRoot(cache_dir).bottleneck_cache("ingest", "benchmark", width)
    began = time.perf_counter()
    extract_features(None, images, cache, stream=stream)  # type: ignore[arg-type]
    return n / (time.perf_counter() - began)


if __name__ == "__main__":
    sys.exit(main())
