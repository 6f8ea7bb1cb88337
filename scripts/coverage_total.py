"""Print the combined coverage totals (lines and branches) at the end of scripts/test."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import coverage


def main() -> None:
    cov = coverage.Coverage()
    cov.load()
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "coverage.json"
        total = cov.json_report(outfile=str(report))
        totals = json.loads(report.read_text())["totals"]
    lines, statements = totals["covered_lines"], totals["num_statements"]
    branches, all_branches = totals["covered_branches"], totals["num_branches"]
    print(
        f"coverage (subprocesses included): lines {lines}/{statements}"
        f" ({100 * lines / max(statements, 1):.1f}%), branches {branches}/{all_branches}"
        f" ({100 * branches / max(all_branches, 1):.1f}%), total {total:.1f}%"
        " (per file: uv run coverage report)"
    )


if __name__ == "__main__":
    main()
