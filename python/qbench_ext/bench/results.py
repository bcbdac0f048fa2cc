"""Writing and reading benchmark results, as JSON or CSV by the file's extension.

A report is a dict with `environment`, `ceilings`, `notes` and `results`; each result is
{"config": {...}, "providers": {name: {...measurement...}}}. JSON holds the whole report;
CSV flattens it to one row per configuration x provider (config fields, then `provider`,
then the measurement's fields), which is what spreadsheets and plotting want.

The default suite (`python -m qbench_ext.bench` without a suite) writes one JSON document
holding every suite's report: {"suite": "default", "environment", "ceilings", "reports":
{suite name: report}, "summary"}; `suite_reports` reads either kind.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

FORMATS = (".json", ".csv")


def results_format(path: str | Path) -> str:
    """The format a results file is written in, from its extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"results file must end in .json or .csv, got {str(path)!r}")
    return suffix


def csv_rows(report: dict) -> list[dict]:
    """One flat row per configuration x provider."""
    return [
        {**result["config"], "provider": provider, **measurement}
        for result in report["results"]
        for provider, measurement in result["providers"].items()
    ]


def write_results(path: str | Path, report: dict) -> None:
    path = Path(path)
    fmt = results_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == ".json":
        path.write_text(json.dumps(report, indent=2) + "\n")
        return
    rows = csv_rows(report)
    columns: list[str] = []
    for row in rows:  # union of the rows' fields, in first-seen order
        columns.extend(name for name in row if name not in columns)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _parse_cell(text: str):
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def read_results(path: str | Path) -> dict | list[dict]:
    """The report from a JSON file, or the rows from a CSV file with numbers, booleans and
    empty cells (None) parsed back."""
    path = Path(path)
    if results_format(path) == ".json":
        return json.loads(path.read_text())
    with path.open(newline="") as f:
        return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def suite_reports(document: dict) -> dict[str, dict]:
    """{suite name: report} of a JSON results document: the one report of a suite's file,
    or every report of a default-suite file."""
    if not isinstance(document, dict):
        raise ValueError("not a results document (expected a JSON object)")
    if "reports" in document:
        return dict(document["reports"])
    if "results" in document:
        return {document.get("suite", "unknown"): document}
    raise ValueError("not a results document: it has neither `results` nor `reports`")
