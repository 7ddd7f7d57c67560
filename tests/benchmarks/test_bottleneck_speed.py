"""pytest-benchmark suite: bottleneck extraction per backbone (not in the default run).

    .venv/bin/python -m pytest tests/benchmarks --benchmark-autosave
    .venv/bin/python -m pytest tests/benchmarks --benchmark-compare   # against the last saved

Each round pushes the same real photos through harness' extraction pipeline (read,
decode, resize, backbone) with no cache; the warm-up round is excluded.
"""

import pytest

from harness.pipeline.backbone import load_backbone
from harness.pipeline.extract import image_dataset
from harness.registry import get_backbone, weights_available

BACKBONES = [
    "mobilenet_v1_025",
    "mobilenet_v1_075",
    "mobilenet_v1_100",
    "mobilenet_v2_035",
    "mobilenet_v3_small",
    "inception_v3",
]
IMAGES = 64
BATCH = 32


@pytest.fixture(scope="module")
def photo_paths(flowers):
    files = sorted(p for p in flowers.glob("*/*") if p.is_file())
    return [str(p) for p in files[:: max(1, len(files) // IMAGES)][:IMAGES]]


@pytest.mark.parametrize("name", BACKBONES)
def test_extraction_throughput(benchmark, name, photo_paths, keras_home):
    spec = get_backbone(name)
    weights = "imagenet" if weights_available(spec) else "random"
    backbone = load_backbone(spec, weights)

    def extract():
        n = 0
        for pixels, _ in image_dataset(photo_paths, spec.input_size, BATCH):
            n += int(backbone.features(pixels).shape[0])
        return n

    benchmark.extra_info.update(weights=weights, images=len(photo_paths), batch_size=BATCH)
    assert benchmark.pedantic(extract, rounds=3, warmup_rounds=1) == len(photo_paths)
    benchmark.extra_info["img_per_s"] = len(photo_paths) / benchmark.stats.stats.median
