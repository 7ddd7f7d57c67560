"""``harness audit``: label issues, duplicates, leaks and imbalance, before trusting an accuracy."""

from __future__ import annotations

import json

import click

from harness.cli.app import cli, import_tensorflow
from harness.cli.console import ProgressBars, echo, print_audit, report_dataset
from harness.cli.options import DEFAULT_BACKBONE, data_options, input_size_option, pipeline_options
from harness.plan import DataOptions, PipelineOptions, check_audit_installed


def _err(message: str) -> None:
    click.echo(message, err=True)


@cli.command("audit")
@data_options
@click.option("--backbone", default=DEFAULT_BACKBONE, show_default=True, help="Backbone name or hub:HANDLE.")
@input_size_option
@pipeline_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON Lines, one finding a line (logs to stderr)."
)
@click.option(
    "--top", type=click.IntRange(min=0), default=10, show_default=True, help="Findings shown per kind."
)
@click.pass_context
def audit_cmd(
    ctx: click.Context,
    data: DataOptions,
    backbone: str,
    input_size: int | None,
    options: PipelineOptions,
    as_json: bool,
    top: int,
) -> None:
    """Audit the photos: label issues, duplicates and leaks, conflicts, imbalance."""
    check_audit_installed()
    import_tensorflow(ctx)
    from harness.workflow.audit import audit_folder
    from harness.workflow.prepare import plan_backbones, prepare_run

    log = _err if as_json else echo
    (target,) = plan_backbones([backbone], input_size)
    dataset, (target,) = prepare_run([target], options, data)
    if not as_json:
        report_dataset(dataset)
    bars = ProgressBars(target.spec.name)
    try:
        result = audit_folder(target, dataset, options, log, bars)
    finally:
        bars.close()
    if as_json:
        for finding in result.findings:
            echo(json.dumps(finding.as_json(), ensure_ascii=False))
        return
    print_audit(result, top)
