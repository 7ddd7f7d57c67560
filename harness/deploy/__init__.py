"""Deployment: TFLite conversion (with bias-corrected quantization) and inference on
exported models (``harness label``)."""
