"""``harness audit``: label issues, duplicates, leaks and imbalance, before trusting an accuracy."""

from __future__ import annotations

import json

import click

from harness.cli.app import cli, import_tensorflow
from harness.cli.console import ProgressBars, echo, report_dataset, table
from harness.cli.options import DEFAULT_BACKBONE, data_options, input_size_option, pipeline_options
from harness.plan import DataOptions, PipelineOptions

KINDS = ("label_issue", "exact_duplicate", "near_duplicate", "leak", "conflict")


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
    counts = ", ".join(f"{len(result.of_kind(k))} {k.replace('_', ' ')}s" for k in KINDS)
    echo(f"audit of {sum(result.class_counts.values())} photos in {result.seconds:.1f}s: {counts}")
    echo(
        f"photos per class: {', '.join(f'{c} {n}' for c, n in result.class_counts.items())} "
        f"(largest / smallest {result.imbalance_ratio:.2f})"
    )
    if result.test_accuracy is not None:
        without = result.test_accuracy_without_leaks
        echo(
            f"test accuracy {result.test_accuracy:.1%}; without the {result.leaked_test_photos} leaked test "
            f"photos {without:.1%}" + ""
            if without is not None
            else ""
        )
    for kind in KINDS:
        found = result.of_kind(kind)[:top]
        if found:
            echo(f"{kind.replace('_', ' ')}s (first {len(found)}):")
            rows = [{k: v for k, v in f.as_json().items() if v is not None and k != "kind"} for f in found]
            columns = [
                c for c in ("path", "other", "given", "suggested", "score") if any(c in r for r in rows)
            ]
            echo(table([{**r, "score": f"{r['score']:.3f}"} for r in rows], columns))
