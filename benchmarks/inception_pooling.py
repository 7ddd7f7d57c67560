"""Does Inception v3 need the 2015 graph's max pooling in its last block's pool branch?

Google's 2015 Inception v3 (the network retrain.py retrains) uses max pooling in the pool
branch of ``mixed_10``; ``keras.applications.InceptionV3`` uses average pooling there. All
weights are the same. This script builds both on the same weights file, computes the
bottlenecks of every image with each, trains the same final layer (same split and seed)
and prints the test accuracy of both, how many test images they classify differently,
and the cosine between their features:

    .venv/bin/python benchmarks/inception_pooling.py --image-dir ../shared/data/flower_photos_subset \\
        --weights-dir ../shared/keras_home/models
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def with_max_pool_in_last_block(model: Any) -> Any:
    """A copy of Keras' InceptionV3 whose ``mixed10`` pool branch max-pools, as in 2015."""
    import keras

    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.AveragePooling2D)]
    last = pools[-1].name  # the pool branch of mixed10, the last block

    def clone(layer: Any) -> Any:
        if layer.name == last:
            return keras.layers.MaxPooling2D((3, 3), strides=(1, 1), padding="same", name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-dir", required=True)
    parser.add_argument("--weights-dir")
    parser.add_argument("--cache-dir", help="bottleneck cache [default: a temporary folder]")
    args = parser.parse_args()

    import numpy as np

    from harness.pipeline.dataset import prepare_dataset
    from harness.plan import PipelineOptions
    from harness.registry import get_backbone
    from harness.workflow import retrain_final_layer

    keras_spec = get_backbone("inception_v3")

    def build_2015(spec: Any, weights: str) -> Any:
        return with_max_pool_in_last_block(keras_spec.builder(keras_spec, weights))

    options_2015 = (*keras_spec.options, ("pool", "max"))
    exact_spec = dataclasses.replace(
        keras_spec, name="inception_v3_2015", builder=build_2015, options=options_2015
    )
    dataset = prepare_dataset(args.image_dir)
    with tempfile.TemporaryDirectory() as tmp:
        options = PipelineOptions(weights_dir=args.weights_dir, cache_dir=args.cache_dir or tmp)
        results = {}
        for spec in (keras_spec, exact_spec):
            result = retrain_final_layer(spec, dataset, options, None, log=print)
            results[spec.name] = result
    a, b = results["inception_v3"], results["inception_v3_2015"]
    test = a.images["testing"]
    fa, fb = a.extraction.matrix(test), b.extraction.matrix(test)
    cosine = np.sum(fa * fb, axis=1) / (np.linalg.norm(fa, axis=1) * np.linalg.norm(fb, axis=1))
    pa, pb = np.asarray(a.evaluation.predictions), np.asarray(b.evaluation.predictions)
    print(f"test images: {len(test)}")
    for name, r in results.items():
        lo, hi = r.evaluation.ci95
        print(f"{name}: test accuracy {r.evaluation.accuracy:.1%} (95% CI {lo:.1%}-{hi:.1%})")
    print(f"test images classified differently: {int(np.sum(pa != pb))}")
    print(f"feature cosine, average vs max pooling: min {cosine.min():.4f}, median {np.median(cosine):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
