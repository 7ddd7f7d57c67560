"""Time one exported model in a fresh process, as it runs where it is shipped.

A standalone script: it imports only the standard library, NumPy and the runtime it is
asked for, so harness copies it to a remote machine (``ssh://`` targets) and runs it
there with that machine's Python, exactly as it runs it here. It prints one JSON object.

Measured, in this order, in one process:

- ``import_s`` and ``rss_runtime_mb``: importing the runtime, and the process's peak
  resident memory after it (Python, NumPy and the runtime, before any model);
- ``load_s``: loading the model (and compiling it, where the runtime compiles);
- ``first_ms``: the first call, then ``warmup`` calls not kept;
- ``samples_ms``: ``runs`` calls at batch 1 on the preprocessed input (resized pixels);
- ``e2e_samples_ms``: the same from JPEG bytes, where the artifact takes them (SavedModel);
- ``rss_peak_mb``: the process's peak resident memory after all that;
- ``predictions``: the top-1 class of every image in ``--pixels`` (after the peak was read:
  the test images do not count towards the model's memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def _rss_mb() -> float:
    """This process's peak resident memory. Linux: VmHWM, which starts anew at exec (ru_maxrss
    carries the parent's peak over, so a probe started by a big process would read that)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    # Elsewhere ru_maxrss: KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


def _litert(path: str, threads: int) -> tuple:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:  # the older standalone runtime, still what many boards have
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite import Interpreter  # type: ignore[no-redef]
    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]

    def call(pixels):
        interpreter.set_tensor(inp, pixels)
        interpreter.invoke()
        return interpreter.get_tensor(out)

    return call, None


def _openvino(path: str, threads: int) -> tuple:
    import openvino as ov

    core = ov.Core()
    # f32: without it OpenVINO runs bf16 on CPUs that have it, a different model from the one measured.
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "f32",
    }
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    request = compiled.create_infer_request()

    def call(pixels):
        return request.infer([pixels])[compiled.output(0)]

    return call, None


def _onnxruntime(path: str, threads: int) -> tuple:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def call(pixels):
        return session.run(None, {name: pixels})[0]

    return call, None


def _tensorflow(path: str, threads: int) -> tuple:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    loaded = tf.saved_model.load(path)
    pixels_fn = loaded.signatures["classify_pixels"]
    images_fn = loaded.signatures["serving_default"]

    def call(pixels):
        return pixels_fn(pixels=tf.constant(pixels))["probabilities"].numpy()

    def from_jpeg(data):
        return images_fn(images=tf.constant([data]))["probabilities"].numpy()

    return call, from_jpeg


RUNTIMES = {"litert": _litert, "openvino": _openvino, "onnxruntime": _onnxruntime, "tf": _tensorflow}
# Modules each runtime loads, first found wins: imported (and timed) before the model loads.
IMPORTS = {
    "litert": ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow"),
    "openvino": ("openvino",),
    "onnxruntime": ("onnxruntime",),
    "tf": ("tensorflow",),
}


def _import_runtime(runtime: str) -> None:
    import importlib

    for i, name in enumerate(IMPORTS[runtime]):
        try:
            importlib.import_module(name)
            return
        except ImportError:
            if i == len(IMPORTS[runtime]) - 1:
                raise


def _timed(call, sample, runs: int) -> list:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call(sample)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def measure(args: argparse.Namespace) -> dict:
    import numpy as np

    start = time.perf_counter()
    _import_runtime(args.runtime)
    import_s = time.perf_counter() - start
    rss_runtime = _rss_mb()
    pixels = np.load(args.pixels, mmap_mode="r")
    sample = np.ascontiguousarray(pixels[:1], dtype=np.float32)
    start = time.perf_counter()
    call, from_jpeg = RUNTIMES[args.runtime](args.model, args.threads)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    call(sample)
    first_ms = (time.perf_counter() - start) * 1000
    for _ in range(args.warmup):
        call(sample)
    out = {
        "runtime": args.runtime,
        "threads": args.threads,
        "import_s": import_s,
        "load_s": load_s,
        "first_ms": first_ms,
        "samples_ms": _timed(call, sample, args.runs),
        "e2e_samples_ms": None,
    }
    if from_jpeg is not None and args.jpeg:
        with open(args.jpeg, "rb") as f:
            data = f.read()
        from_jpeg(data)
        out["e2e_samples_ms"] = _timed(from_jpeg, data, args.runs)
    out["rss_runtime_mb"] = rss_runtime
    out["rss_peak_mb"] = _rss_mb()
    if args.predict:
        out["predictions"] = [
            int(np.argmax(call(np.ascontiguousarray(pixels[i : i + 1], dtype=np.float32))))
            for i in range(len(pixels))
        ]
    out["machine"] = {"hostname": os.uname().nodename, "machine": os.uname().machine, "cpus": os.cpu_count()}
    return out


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", choices=sorted(RUNTIMES), required=True)
    parser.add_argument("--model", required=True, help="the .tflite or .onnx file, or the SavedModel folder")
    parser.add_argument(
        "--pixels", required=True, help=".npy of resized pixels [N, S, S, 3]; the first is timed"
    )
    parser.add_argument("--jpeg", help="an encoded image, for the end-to-end time (SavedModel)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--predict", action="store_true", help="also classify every image in --pixels")
    args = parser.parse_args(argv)
    try:
        result = measure(args)
    except Exception as exc:  # one line for the caller, whatever the runtime raised
        text = (str(exc).strip().splitlines() or [""])[0]
        print(json.dumps({"error": f"{type(exc).__name__}: {text}"[:500]}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
