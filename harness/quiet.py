"""Silence the native libraries' notices, which a user cannot act on.

TensorFlow's start-up lines (oneDNN, CUDA probes) and LiteRT's "Created TensorFlow Lite
XNNPACK delegate" are written by C++ straight to file descriptor 2, so Python's logging
cannot stop them; absl's deprecation notices go through Python logging. ``--debug`` (which
sets ``TF_CPP_MIN_LOG_LEVEL=0``) keeps them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator


def debugging() -> bool:
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"


@contextlib.contextmanager
def quiet_native() -> Iterator[None]:
    """File descriptor 2 to /dev/null, absl below errors and Python warnings off, for a
    short native call (an import, an interpreter's creation, a conversion)."""
    if debugging():
        yield
        return
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        absl.setLevel(level)
