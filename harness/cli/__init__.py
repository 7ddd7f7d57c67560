"""The ``harness`` command line: commands parse options and call the core.

``app`` holds the group, ``options`` the option types and groups; the command modules
(``train``, ``label``, ``run``, ``retrain``, ``stored``) import only those and the core, never each other.
"""

from __future__ import annotations

from harness.cli import audit, label, retrain, run, stored, train  # noqa: F401  (each registers its commands)
from harness.cli.app import cli

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="harness")
