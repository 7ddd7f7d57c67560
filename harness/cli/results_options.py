"""Options of the commands that read stored results: where they are, what ranks them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.schema import speed_columns


def speed_option(name: str, help_text: str) -> Any:
    return click.option(
        name,
        "speed" if name == "--speed" else "by",
        type=click.Choice(list(speed_columns())),
        default="bottleneck_img_per_s",
        show_default=True,
        help=help_text,
    )


def results_dir_option(func: Any) -> Any:
    return click.option(
        "--results-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("reports"),
        show_default=True,
        help="Results folder: runs are stored as DIR/runs/<run id>.json and each run's report "
        "in DIR/<run id>/report.{html,md,csv}. A folder of run files is read as well.",
    )(func)
