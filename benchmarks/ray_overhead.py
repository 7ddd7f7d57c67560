"""What Ray Data costs against local extraction on one machine, same process, alternating.

    .venv/bin/python benchmarks/ray_overhead.py --image-dir ../shared/data/flower_photos_subset \\
        --weights-dir ../shared/keras_home/models [--backbones mobilenet_v1_100,...] [--address local]

For each backbone, computes the bottlenecks of every image, ``--repeat`` times over (no
cache), locally and on Ray, alternating, ``--rounds`` times, and prints the median rates
and their ratio: over the whole call (Ray's includes starting the actor pool, importing
TensorFlow and building the backbone once per actor: "ray first s" is the wait for the
first features) and in steady state (over the second half of the images, the rate that
decides what a million photos cost). Needs the ray extra.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def timed(stream, paths: list[str]) -> tuple[float, float, float]:  # noqa: ANN001
    """(whole seconds, seconds to the first features, steady img/s over the second half).

    The steady rate is taken over the second half of the images, when every actor is
    up: the first features can come back late (a worker starting) while later calls
    already ran, which would overstate a rate counted from the first batch.
    """
    start = time.perf_counter()
    first = None
    marks = []
    done = 0
    for index, _ in stream(paths):
        now = time.perf_counter()
        first = first or now
        done += len(index)
        marks.append((now, done))
    end = time.perf_counter()
    half = next((t, n) for t, n in marks if n >= done / 2)
    return end - start, (first or end) - start, (done - half[1]) / max(end - half[0], 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-dir", required=True)
    parser.add_argument("--weights-dir")
    parser.add_argument("--backbones", default="mobilenet_v1_100,mobilenet_v2_035,mobilenet_v1_025")
    parser.add_argument("--address", default="local")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-call", type=int, help="images per actor call (default: the product's)")
    parser.add_argument("--repeat", type=int, default=4, help="each file this many times: startup amortised")
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
    print(f"{len(paths)} images; Ray cluster: {resources.get('CPU', 0):.0f} CPUs")
    print("backbone          local img/s  ray img/s  ratio   steady: local  ray    ratio   ray first s")
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
            runs: dict[str, list[tuple[float, float, int]]] = {"local": [], "ray": []}
            for _ in range(args.rounds):
                runs["local"].append(timed(local, paths))
                runs["ray"].append(timed(remote, paths))
            whole = {k: statistics.median(len(paths) / r[0] for r in v) for k, v in runs.items()}
            steady = {k: statistics.median(r[2] for r in v) for k, v in runs.items()}
            start_s = statistics.median(r[1] for r in runs["ray"])
            print(
                f"{name:17s} {whole['local']:11.1f} {whole['ray']:10.1f} {whole['ray'] / whole['local']:6.2f}"
                f"   {steady['local']:13.1f} {steady['ray']:6.1f} {steady['ray'] / steady['local']:6.2f}"
                f"   {start_s:11.1f}",
                flush=True,
            )
        print(
            f"driver ingest (features into the cache, 1,024 floats each): {driver_rate(cache_dir):,.0f} img/s"
        )
    return 0


def driver_rate(cache_dir: str, n: int = 20000, width: int = 1024, batch: int = 128) -> float:
    """How fast this process takes streamed features into the cache: the ceiling of a
    cluster of any size, since every feature comes back here."""
    import hashlib

    import numpy as np

    from harness.pipeline.cache import BottleneckCache
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

    cache = BottleneckCache(cache_dir, "ingest", "benchmark", width)
    began = time.perf_counter()
    extract_features(None, images, cache, stream=stream)  # type: ignore[arg-type]
    return n / (time.perf_counter() - began)


if __name__ == "__main__":
    sys.exit(main())
