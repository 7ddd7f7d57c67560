"""Console helpers for the CLI: progress bars and one-line messages."""

from __future__ import annotations

import sys
from typing import Any

import click

from harness.errors import escaped, printable


def echo(message: str) -> None:
    click.echo(escaped(message))  # a file name that was not UTF-8 cannot be written as it is


def warn(message: str) -> None:
    click.echo(f"warning: {escaped(message)}", err=True)


class ProgressBars:
    """One tqdm bar per phase, fed by the core's ``progress(phase, done, total)`` callback."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self._bars: dict[str, Any] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if total == 0:
            return
        bar = self._bars.get(phase)
        if bar is None:
            bar = tqdm(
                total=total,
                desc=f"{self.label} {phase}".strip(),
                unit="img",
                file=sys.stderr,
                disable=None,  # no bar when stderr is not a terminal (CI logs, pipes)
                leave=False,
            )
            self._bars[phase] = bar
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            del self._bars[phase]

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain fixed-width text table."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def report_dataset(dataset: Any) -> None:
    """The scan's summary, its warnings and every skipped file with its reason."""
    sizes = dataset.split_sizes()
    echo(
        f"{len(dataset.images.images)} images in {len(dataset.classes)} classes "
        f"({', '.join(dataset.classes)}): {sizes['training']} training, "
        f"{sizes['validation']} validation, {sizes['testing']} testing"
        + (f" ({dataset.images.indexed} unchanged files not re-read)" if dataset.images.indexed else "")
    )
    for message in dataset.images.warnings:
        warn(message)
    if dataset.images.skipped:
        warn(f"skipped {len(dataset.images.skipped)} files:")
        for path, reason in dataset.images.skipped:
            click.echo(f"  {printable(path)}: {reason}", err=True)


def print_audit(result: Any, top: int) -> None:
    """An :class:`harness.workflow.audit.AuditResult` for a reader: the summary, then the
    first ``top`` findings of each kind as tables."""
    from harness.workflow.audit import KINDS

    for line in result.summary():
        echo(line)
    for kind in KINDS:
        found = result.of_kind(kind)[:top]
        if found:
            echo(f"{kind.replace('_', ' ')}s (first {len(found)}):")
            rows = [{k: v for k, v in f.as_json().items() if v is not None and k != "kind"} for f in found]
            columns = [
                c for c in ("path", "other", "given", "suggested", "score") if any(c in r for r in rows)
            ]
            echo(table([{**r, "score": f"{r['score']:.3f}"} for r in rows], columns))
