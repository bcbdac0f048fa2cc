"""`compare BASE.json NEW.json`: what changed between two runs, configuration by configuration.

Rows are matched on (suite, configuration dict, provider); quant, gemm and default-suite
files all work, and a suite's file matches the same suite's report inside a default-suite
file. Each row gives base and new median times, their ratio new / base and the speed change
(base / new - 1: positive is faster).

When a change counts. Each run recorded the 20th and 80th percentiles of its samples, an
interval [p20, p80] that holds the middle 60% of its timings. With threshold t:

    regressed  when  new.p20 > base.p80 * (1 + t)   (new's fast end is slower than base's
                                                     slow end by more than t)
    improved   when  base.p20 > new.p80 * (1 + t)   (the mirror image)
    unchanged  otherwise: the change is within t, or within the runs' own spread.

Both conditions imply the medians moved by more than t in the same direction, so a marked
row exceeds both the threshold and the noise. Where a run recorded no percentiles, its
median stands for both ends. A row of ours timed in BASE but not in NEW (mismatch, error,
n/a) is "broken" and counts as a regression; timed only in NEW it is "fixed".

Only our providers (qbench_* in the quant suite; the qbench and triton backends of the gemm
suite, as its settings list them) gate by default; `--providers all` adds the peers, or name
them: `--providers qbench_cuda,vllm_cuda`. Exit status: 1 when anything regressed or broke,
0 otherwise, 2 for unreadable files.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .results import suite_reports
from .suite import config_label, is_timed, our_providers
from .table import format_table

NAME = "compare"
HELP = "compare two results files: per-configuration speed change; exit 1 on a regression"

IMPROVED, REGRESSED, UNCHANGED, BROKEN, FIXED, UNTIMED = (
    "improved", "REGRESSED", "unchanged", "BROKEN", "fixed", "untimed",
)
_LISTED_MISSING = 10  # configurations only in one file, listed by name at most


def parse_threshold(text: str) -> float:
    """'3%' or '3' -> 0.03 (always a percentage)."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        value = -1.0
    if not 0 <= value < 1000:
        raise argparse.ArgumentTypeError(f"threshold must be a percentage like 3%, got {text!r}")
    return value / 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", metavar="BASE.json", help="the results to compare against")
    parser.add_argument("new", metavar="NEW.json", help="the results of the change")
    parser.add_argument(
        "--threshold", type=parse_threshold, default=0.03, metavar="PCT",
        help="smallest change that counts, beyond the runs' own p20-p80 spread (default: 3%%)",
    )
    parser.add_argument(
        "--providers", default="ours", metavar="WHICH",
        help="'ours' (qbench_* providers; the default), 'all', or a comma-separated list",
    )
    parser.add_argument(
        "--all-rows", action="store_true",
        help="print every compared row (default: only the changed ones, and a count of the rest)",
    )


@dataclass(frozen=True)
class Row:
    suite: str
    label: str
    provider: str
    base: dict | None
    new: dict | None
    status: str

    @property
    def ratio(self) -> float | None:
        if is_timed(self.base) and is_timed(self.new):
            return self.new["median_ms"] / self.base["median_ms"]
        return None


def _bounds(m: dict) -> tuple[float, float]:
    lo, hi = m.get("p20_ms"), m.get("p80_ms")
    median = m["median_ms"]
    return (median if lo is None else lo), (median if hi is None else hi)


def classify(base: dict | None, new: dict | None, threshold: float) -> str:
    """The status of one row (see the module's doc for the rule)."""
    if not is_timed(base):
        return FIXED if is_timed(new) else UNTIMED
    if not is_timed(new):
        return BROKEN
    base_lo, base_hi = _bounds(base)
    new_lo, new_hi = _bounds(new)
    if new_lo > base_hi * (1 + threshold):
        return REGRESSED
    if base_lo > new_hi * (1 + threshold):
        return IMPROVED
    return UNCHANGED


def _key(suite: str, config: dict) -> tuple[str, str]:
    return suite, json.dumps(config, sort_keys=True)


def _index(document: dict) -> tuple[dict[tuple[str, str], tuple[str, dict]], set[str]]:
    """({(suite, config): (label, providers)}, our providers in any suite)."""
    index, ours = {}, set()
    for suite, report in suite_reports(document).items():
        ours |= {f"{suite}/{p}" for p in our_providers(report)}
        for result in report.get("results", []):
            if "providers" not in result:  # not timings (an accuracy file)
                continue
            index[_key(suite, result["config"])] = (
                config_label(suite, result["config"]), result["providers"]
            )
    return index, ours


def _selected(suite: str, provider: str, which: str, ours: set[str]) -> bool:
    if which == "all":
        return True
    if which == "ours":
        return f"{suite}/{provider}" in ours
    return provider in {p.strip() for p in which.split(",")}


def compare_documents(
    base: dict, new: dict, *, threshold: float = 0.03, providers: str = "ours"
) -> tuple[list[Row], list[str], list[str]]:
    """(rows of the configurations in both, labels only in base, labels only in new)."""
    (base_index, base_ours), (new_index, new_ours) = _index(base), _index(new)
    ours = base_ours | new_ours
    rows = []
    for key, (label, base_providers) in base_index.items():
        if key not in new_index:
            continue
        new_providers = new_index[key][1]
        for provider in dict.fromkeys([*base_providers, *new_providers]):
            if not _selected(key[0], provider, providers, ours):
                continue
            b, n = base_providers.get(provider), new_providers.get(provider)
            rows.append(Row(key[0], label, provider, b, n, classify(b, n, threshold)))
    only_base = [f"{k[0]}: {v[0]}" for k, v in base_index.items() if k not in new_index]
    only_new = [f"{k[0]}: {v[0]}" for k, v in new_index.items() if k not in base_index]
    return rows, only_base, only_new


def _gpu(document: dict) -> str | None:
    return (document.get("environment") or {}).get("gpu_name")


def _describe(name: str, path: str, document: dict) -> str:
    env = document.get("environment") or {}
    commit = env.get("git_commit")
    parts = [
        env.get("gpu_name") or "unknown GPU",
        f"commit {commit[:12]}{'+dirty' if env.get('git_dirty') else ''}" if commit else None,
        env.get("date_utc"),
    ]
    return f"{name}: {path} ({', '.join(p for p in parts if p)})"


def _us(m: dict | None) -> str:
    if not is_timed(m):
        return (m or {}).get("check") or "-"
    return f"{m['median_ms'] * 1e3:.2f}"


def _spread(m: dict | None) -> str:
    if not is_timed(m):
        return "-"
    lo, hi = _bounds(m)
    return f"{lo * 1e3:.2f}-{hi * 1e3:.2f}"


def format_rows(rows: list[Row]) -> str:
    table = []
    for row in rows:
        ratio = row.ratio
        table.append(
            [
                row.suite,
                row.label,
                row.provider,
                _us(row.base),
                _spread(row.base),
                _us(row.new),
                _spread(row.new),
                f"{ratio:.3f}" if ratio else "-",
                f"{100 * (1 / ratio - 1):+.1f}%" if ratio else "-",
                "" if row.status in (UNCHANGED, UNTIMED) else row.status,
            ]
        )
    headers = [
        "suite", "configuration", "provider", "base us", "base p20-p80", "new us",
        "new p20-p80", "new/base", "speed", "change",
    ]
    return format_table(headers, table, left_columns=3)


def run(args: argparse.Namespace) -> int:
    documents = []
    for path in (args.base, args.new):
        try:
            documents.append(json.loads(Path(path).read_text()))
            suite_reports(documents[-1])
        except (OSError, ValueError) as exc:
            print(
                f"error: cannot read {path} as a JSON results file ({exc}); compare reads the "
                "files that --out FILE.json writes",
                file=sys.stderr,
            )
            return 2
    base, new = documents
    if _gpu(base) != _gpu(new):
        print(
            f"warning: different GPUs: base {_gpu(base)}, new {_gpu(new)}; the times are not "
            "comparable"
        )
    print(_describe("base", args.base, base))
    print(_describe("new ", args.new, new))
    rows, only_base, only_new = compare_documents(
        base, new, threshold=args.threshold, providers=args.providers
    )
    counts = {status: sum(r.status == status for r in rows) for status in
              (IMPROVED, REGRESSED, UNCHANGED, BROKEN, FIXED, UNTIMED)}
    shown = rows if args.all_rows else [r for r in rows if r.status not in (UNCHANGED, UNTIMED)]
    print(
        f"threshold {100 * args.threshold:g}%, beyond the p20-p80 spread of both runs; "
        f"providers: {args.providers}"
    )
    if shown:
        print(format_rows(shown))
    print(
        f"{counts[IMPROVED]} improved, {counts[REGRESSED]} regressed, "
        f"{counts[UNCHANGED]} unchanged (of {len(rows)} compared)"
        + (f", {counts[BROKEN]} broken" if counts[BROKEN] else "")
        + (f", {counts[FIXED]} fixed" if counts[FIXED] else "")
        + (f", {counts[UNTIMED]} untimed in both" if counts[UNTIMED] else "")
    )
    for side, missing in (("base", only_base), ("new", only_new)):
        if missing:
            listed = ", ".join(missing[:_LISTED_MISSING])
            extra = len(missing) - _LISTED_MISSING
            more = f", and {extra} more" if extra > 0 else ""
            print(f"only in {side}: {len(missing)} configurations: {listed}{more}")
    return 1 if counts[REGRESSED] or counts[BROKEN] else 0
