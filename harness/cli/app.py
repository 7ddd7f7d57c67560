"""The ``harness`` command group: one-line errors, ``--debug``, quiet TensorFlow start-up.

TensorFlow is imported only by commands that need it, so ``harness --help`` and
``harness backbones`` answer at once.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from harness import __version__
from harness.errors import HarnessError, one_line


def import_tensorflow(ctx: click.Context | None = None) -> None:
    """Import TensorFlow with its start-up chatter (CUDA probes, absl notices) silenced.

    Those lines are written by C++ straight to file descriptor 2, so Python's logging
    cannot stop them; ``--debug`` keeps them.
    """
    if "tensorflow" in sys.modules:
        return
    from harness.quiet import quiet_native

    with quiet_native():
        import tensorflow  # noqa: F401


class HarnessGroup(click.Group):
    """Turns errors into one line (exit 1); ``--debug`` shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            if ctx.meta.get("harness.debug"):
                raise
            raise click.ClickException(str(exc)) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # output piped into head, which has read enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except Exception as exc:
            if ctx.meta.get("harness.debug"):
                raise
            raise click.ClickException(f"{one_line(exc)} (run with --debug for the traceback)") from None


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Benchmark ImageNet backbones for retraining a final layer on your images."""
    ctx.meta["harness.debug"] = debug
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if debug else "3")
