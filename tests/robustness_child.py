"""Child process for the kill -9 and concurrency tests: extract bottlenecks into a cache.

Usage: python robustness_child.py IMAGE_DIR CACHE_DIR OUT.npz
Prints "extracting" when the backbone is built and extraction starts.
"""

import sys

import numpy as np

from harness.pipeline.backbone import load_backbone
from harness.pipeline.cacheroot import CacheRoot
from harness.pipeline.extract import extract_features
from harness.pipeline.images import scan_images
from harness.registry import get_backbone

image_dir, cache_dir, out = sys.argv[1:4]
spec = get_backbone("mobilenet_v1_025")
backbone = load_backbone(spec, "random")
cache = CacheRoot(cache_dir).bottleneck_cache(spec.name, spec.cache_identity("random"), backbone.feature_size)
images = scan_images(image_dir).images
print("extracting", flush=True)
result = extract_features(backbone, images, cache, batch_size=8)
keys = sorted(result.features)
np.savez(out, keys=np.array(keys), features=np.stack([result.features[k] for k in keys]))
print(f"done computed={result.computed} cached={result.cached}", flush=True)
