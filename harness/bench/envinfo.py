"""Capture the machine and software a run happened on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import harness


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the harness checkout, with ``+dirty`` if it has local changes."""
    root = path or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Python, TensorFlow, Keras, NumPy and harness versions."""
    import keras
    import numpy
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "harness": harness.__version__,
    }


def gpus() -> list[dict[str, Any]]:
    """Visible GPUs with name and memory, when TensorFlow sees any."""
    import tensorflow as tf

    out = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        info: dict[str, Any] = {"name": details.get("device_name", device.name)}
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if smi.returncode == 0 and smi.stdout.strip():
                name, memory, driver = [s.strip() for s in smi.stdout.splitlines()[0].split(",")]
                info.update(name=name, memory=memory, driver=driver)
        except (OSError, subprocess.SubprocessError):
            pass
        out.append(info)
    return out


def environment() -> dict[str, Any]:
    """Everything a reader needs to judge a timing: hardware, software, threads."""
    import tensorflow as tf

    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpus": gpus(),
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "versions": versions(),
        "git_commit": git_commit(),
    }
