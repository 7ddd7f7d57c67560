"""Does TensorFlow's label_image agree with `harness label` on every test image?

    .venv/bin/python scripts/label_image_check.py --graph /tmp/output_graph.pb \\
        --labels /tmp/output_labels.txt --saved-model /tmp/saved_models/1 \\
        --image-dir ../shared/data/flower_photos_subset --size 299

Runs label_image.py's steps on the frozen graph for each test image of the split (decode,
TF1 bilinear resize, (pixel - 128) / 128, feed ``import/Mul:0``, read
``import/final_result:0``) and `harness label`'s classifier on the SavedModel, and prints
how many top-1 labels agree.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def label_image(graph: Path, labels: Path, images: list[Path], size: int) -> list[str]:
    """label_image.py's top-1 for each image: its decode, TF1 bilinear resize and
    (pixel - 128) / 128, then the frozen graph imported under ``tf.compat.v1``, fed at
    ``import/Mul:0`` and read at ``import/final_result:0``. The graph is imported once."""
    import numpy as np
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default():
        path = v1.placeholder(tf.string)
        decoded = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        resized = v1.image.resize_bilinear(tf.expand_dims(tf.cast(decoded, tf.float32), 0), [size, size])
        normalized = tf.divide(tf.subtract(resized, [128.0]), [128.0])
        with v1.Session() as sess:
            tensors = [sess.run(normalized, {path: str(p)}) for p in images]
    graph_def = v1.GraphDef()
    graph_def.ParseFromString(graph.read_bytes())
    names = labels.read_text().splitlines()
    with tf.Graph().as_default() as g:
        v1.import_graph_def(graph_def)
        inputs = g.get_operation_by_name("import/Mul").outputs[0]
        outputs = g.get_operation_by_name("import/final_result").outputs[0]
        with v1.Session(graph=g) as sess:
            return [names[int(np.argmax(sess.run(outputs, {inputs: t})[0]))] for t in tensors]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graph", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--saved-model", type=Path, required=True)
    parser.add_argument("--image-dir", type=Path, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--testing-percentage", type=float, default=10)
    parser.add_argument("--validation-percentage", type=float, default=10)
    args = parser.parse_args()

    from harness.deploy.label import classify_files, load_classifier
    from harness.pipeline.dataset import prepare_dataset

    dataset = prepare_dataset(args.image_dir, args.validation_percentage, args.testing_percentage)
    tests = [img.path for img in dataset.splits["testing"]]
    graph_top1 = label_image(args.graph, args.labels, tests, args.size)
    rows, skipped = classify_files(load_classifier(args.saved_model), tests, 1)
    harness_top1 = [r["top"][0]["label"] for r in rows]
    agree = sum(a == b for a, b in zip(graph_top1, harness_top1))
    correct = sum(label == p.parent.name for label, p in zip(graph_top1, tests))
    same = f"{agree} of {len(tests)} test images"
    print(f"{same}: label_image's top-1 equals harness label's ({len(skipped)} skipped)")
    print(f"label_image on output_graph.pb: {correct} of {len(tests)} correct ({correct / len(tests):.1%})")
    return 0 if agree == len(tests) and not skipped else 1


if __name__ == "__main__":
    sys.exit(main())
