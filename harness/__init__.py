"""harness: benchmark ImageNet backbones for final-layer transfer learning."""

__version__ = "0.1.0"
