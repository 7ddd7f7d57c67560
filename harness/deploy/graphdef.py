"""retrain.py's outputs: a frozen TF1 GraphDef (``output_graph.pb``) and its labels.

TensorFlow's ``label_image`` (Python or C++) runs such a graph unchanged::

    python label_image.py --graph=output_graph.pb --labels=output_labels.txt \\
        --input_layer=Mul --output_layer=final_result --input_mean=128 --input_std=128 \\
        --input_height=224 --input_width=224 --image=photo.jpg

It decodes and resizes the image itself, normalises it as ``(pixel - 128) / 128`` and
feeds node ``Mul`` (``[1, H, W, 3]`` float); node ``final_result`` gives the softmax. The
graph undoes that normalisation, then runs the same preprocessing, backbone and layer as
the SavedModel (:class:`harness.pipeline.savedmodel.ExportedClassifier`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tensorflow as tf

from harness.pipeline.savedmodel import labels_bytes

INPUT_NODE = "Mul"
INPUT_MEAN = 128.0
INPUT_STD = 128.0
GRAPH_FILE = "output_graph.pb"
LABELS_FILE = "output_labels.txt"


def frozen_graph(backbone: Any, head: Any, final_tensor_name: str = "final_result") -> tf.compat.v1.GraphDef:
    """The classifier as a GraphDef with every variable folded into a constant."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from harness.pipeline.savedmodel import ExportedClassifier

    classifier = ExportedClassifier(backbone, head)
    size = backbone.spec.input_size

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name=INPUT_NODE)])
    def graph(normalised: tf.Tensor) -> tf.Tensor:
        pixels = normalised * INPUT_STD + INPUT_MEAN
        return tf.identity(classifier.probabilities(pixels), name=final_tensor_name)

    frozen = convert_variables_to_constants_v2(graph.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    names = {node.name for node in graph_def.node}
    missing = {INPUT_NODE, final_tensor_name} - names
    if missing:  # a TensorFlow that renames nodes would break label_image silently
        raise RuntimeError(f"frozen graph lacks node(s) {', '.join(sorted(missing))}")
    return graph_def


def export_graphdef(
    backbone: Any,
    head: Any,
    classes: list[str],
    graph_path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str],
    *,
    final_tensor_name: str = "final_result",
) -> tuple[Path, Path]:
    """Write ``output_graph.pb`` and ``output_labels.txt`` (one label per line, output order).

    Returns:
        The two paths written (each atomically).
    """
    from harness.outputs import write_output_files

    graph_def = frozen_graph(backbone, head, final_tensor_name)
    graph_file, labels_file = Path(graph_path), Path(labels_path)
    # Each replaces only a file harness wrote there (retrain.py's /tmp defaults are shared).
    write_output_files(graph_file.parent, {graph_file.name: graph_def.SerializeToString()}, what="graph")
    write_output_files(labels_file.parent, {labels_file.name: labels_bytes(classes)}, what="labels file")
    return graph_file, labels_file
