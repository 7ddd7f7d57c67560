"""Measuring: timings, the machine a run happened on, and ``harness run`` over backbones."""
