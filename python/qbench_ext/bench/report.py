"""`report RESULTS.json --dir DIR`: charts and a markdown report from a saved results file,
without a GPU.

quant: effective GB/s per configuration for each provider, with the copy bandwidth as a
horizontal line (quant_gbps.png), and our speed-up over each peer (quant_speedup.png).
gemm: TFLOP/s against batch size M (log x) per provider, one panel per (N, K, ...) shape,
with the INT8 matrix rate as a line (gemm_tflops.png).
A default-suite file gets both, and its summary. DIR/report.md holds the tables in markdown
with the images linked, ready to paste into a pull request.

Needs matplotlib (`pip install 'qbench-ext[plot]'`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .results import suite_reports
from .suite import (
    ceiling_for,
    config_label,
    format_summary,
    gemm_flops,
    is_timed,
    our_providers,
    primary_provider,
    rate,
    report_providers,
    summarize,
)

NAME = "report"
HELP = "render charts (PNG) and report.md from a saved results file (no GPU; needs matplotlib)"
NEEDS_MATPLOTLIB = "report needs matplotlib: pip install 'qbench-ext[plot]'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", metavar="RESULTS.json", help="a file written by --out")
    parser.add_argument(
        "--dir", metavar="DIR",
        help="where to write the PNGs and report.md (default: RESULTS-report beside the file)",
    )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _providers(report: dict) -> list[str]:
    return report_providers(report)


# ---------------------------------------------------------------------------------------
# Charts


def plot_quant(plt, report: dict, ceilings: dict, directory: Path) -> list[str]:
    results = report["results"]
    labels = [config_label("quant", r["config"]) for r in results]
    width = max(8.0, 0.22 * len(results) + 2)
    x = list(range(len(results)))
    files = []

    fig, ax = plt.subplots(figsize=(width, 5.5))
    for provider in _providers(report):
        values = [rate("quant", r["config"], r["providers"].get(provider)) for r in results]
        if any(values):
            ax.plot(x, [v if v else float("nan") for v in values], "o-", ms=3, lw=1,
                    label=provider)
    ceiling = ceiling_for("quant", ceilings)
    if ceiling:
        ax.axhline(ceiling[1], color="black", ls="--", lw=1,
                   label=f"{ceiling[0]} {ceiling[1]:.0f} GB/s")
    ax.set_yscale("log")
    ax.set_ylabel("effective GB/s (x + q + scales bytes / time)")
    ax.set_xticks(x, labels, rotation=90, fontsize=7)
    ax.set_title(f"per-token-group quantization, {_gpu(report)}")
    ax.grid(True, which="both", axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(directory / "quant_gbps.png", dpi=110)
    plt.close(fig)
    files.append("quant_gbps.png")

    ours = primary_provider(report)
    mine = our_providers(report)
    peers = [p for p in _providers(report) if p not in mine]
    fig, ax = plt.subplots(figsize=(width, 5.5))
    plotted = False
    for peer in peers:
        values = []
        for r in results:
            mine, theirs = r["providers"].get(ours), r["providers"].get(peer)
            ok = is_timed(mine) and is_timed(theirs)
            values.append(theirs["median_ms"] / mine["median_ms"] if ok else float("nan"))
        if any(v == v for v in values):
            ax.plot(x, values, "o-", ms=3, lw=1, label=f"vs {peer}")
            plotted = True
    ax.axhline(1.0, color="black", lw=1)
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_ylabel(f"{ours} speed-up\n(peer time / ours)")
    ax.set_xticks(x, labels, rotation=90, fontsize=7)
    ax.set_title(f"our speed-up over each peer, {_gpu(report)}")
    ax.grid(True, which="both", axis="y", alpha=0.3)
    if plotted:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(directory / "quant_speedup.png", dpi=110)
    plt.close(fig)
    files.append("quant_speedup.png")
    return files


def _shape_key(config: dict) -> str:
    """The configuration without its batch size M: one panel of the gemm chart."""
    if {"n", "k"} <= config.keys():
        users = config.get("shape_users") or config.get("layer")
        return f"N={config['n']} K={config['k']}" + (f"\n{users}" if users else "")
    rest = {k: v for k, v in config.items() if k not in ("m", "bytes", "flops", "label")}
    return " ".join(f"{k}={v}" for k, v in rest.items())


def plot_gemm(plt, report: dict, ceilings: dict, directory: Path) -> list[str]:
    panels: dict[str, list[dict]] = {}
    for result in report["results"]:
        if "m" in result["config"]:
            panels.setdefault(_shape_key(result["config"]), []).append(result)
    if not panels:
        return []
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4 * rows), squeeze=False)
    ceiling = ceiling_for("gemm", ceilings)
    providers = _providers(report)
    for ax, (title, results) in zip(axes.flat, panels.items()):
        results = sorted(results, key=lambda r: r["config"]["m"])
        ms = [r["config"]["m"] for r in results]
        for provider in providers:
            values = [rate("gemm", r["config"], r["providers"].get(provider)) for r in results]
            if any(values):
                ax.plot(ms, [v if v else float("nan") for v in values], "o-", ms=3, lw=1,
                        label=provider)
        if ceiling:
            ax.axhline(ceiling[1], color="black", ls="--", lw=1,
                       label=f"{ceiling[0]} {ceiling[1]:.0f}")
        if ceilings.get("bf16_tflops"):
            ax.axhline(ceilings["bf16_tflops"], color="grey", ls=":", lw=1,
                       label=f"cuBLAS BF16 at {ceilings.get('matrix_size')}^3 "
                       f"{ceilings['bf16_tflops']:.0f}")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("batch size M (tokens)")
        ax.set_ylabel("TFLOP/s")
        ax.set_title(title, fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"INT8 GEMM, {_gpu(report)}")
    fig.tight_layout()
    fig.savefig(directory / "gemm_tflops.png", dpi=110)
    plt.close(fig)
    return ["gemm_tflops.png"]


# ---------------------------------------------------------------------------------------
# Markdown


def _gpu(report: dict) -> str:
    return (report.get("environment") or {}).get("gpu_name") or "unknown GPU"


def markdown_table(headers: list[str], rows: list[list[str]], *, left_columns: int = 1) -> str:
    align = ["---" if i < left_columns else "---:" for i in range(len(headers))]
    lines = [headers, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _cell(suite: str, config: dict, m: dict | None) -> str:
    if not is_timed(m):
        return (m or {}).get("check") or "-"
    value = rate(suite, config, m)
    text = f"{m['median_ms'] * 1e3:.2f}"
    if suite == "gemm" and value:
        text += f" ({value:.0f})"
    return text + ("*" if m.get("check") == "close" else "")


def results_markdown(suite: str, report: dict, ceilings: dict) -> str:
    providers = _providers(report)
    ours = primary_provider(report)
    peers = [  # peers timed somewhere: a column of speed-ups
        p for p in providers
        if p not in our_providers(report)
        and any(is_timed(r["providers"].get(p)) for r in report["results"])
    ]
    ceiling = ceiling_for(suite, ceilings)
    unit = "GB/s" if suite == "quant" else "TFLOP/s"
    headers = ["configuration", *[f"{p} (us)" for p in providers]]
    if ours:
        headers += [f"{ours} {unit}"] + ([f"% of {ceiling[0]}"] if ceiling else [])
        headers += [f"vs {p}" for p in peers]
    rows = []
    for result in report["results"]:
        config, measured = result["config"], result["providers"]
        row = [config_label(suite, config)]
        row += [_cell(suite, config, measured.get(p)) for p in providers]
        if ours:
            mine = measured.get(ours)
            value = rate(suite, config, mine)
            row.append(f"{value:.0f}" if value else "-")
            if ceiling:
                row.append(f"{100 * value / ceiling[1]:.1f}%" if value else "-")
            for peer in peers:
                theirs = measured.get(peer)
                ok = is_timed(mine) and is_timed(theirs)
                row.append(f"{theirs['median_ms'] / mine['median_ms']:.2f}x" if ok else "-")
        rows.append(row)
    notes = [
        "Times are medians per call in microseconds (CUDA-graph replays); `*`: output within "
        "one rounding step of the reference, not bit-exact."
    ]
    if suite == "gemm":
        notes.append("GEMM cells: time (TFLOP/s).")
    if ours and peers:
        notes.append(f"`vs PEER`: the peer's time / {ours}'s time (> 1: ours is faster).")
    return "\n\n".join([markdown_table(headers, rows), " ".join(notes)])


def _environment_lines(document: dict) -> list[str]:
    env = document.get("environment") or {}
    commit = env.get("git_commit")
    fields = [
        ("GPU", env.get("gpu_name")),
        ("driver", env.get("driver_version")),
        ("torch", env.get("torch")),
        ("CUDA", env.get("torch_cuda")),
        ("commit", commit and f"{commit[:12]}{' (dirty)' if env.get('git_dirty') else ''}"),
        ("date", env.get("date_utc")),
        ("command", f"`{env['command']}`" if env.get("command") else None),
    ]
    return [f"- {name}: {value}" for name, value in fields if value]


def _ceiling_lines(ceilings: dict) -> list[str]:
    lines = []
    if ceilings.get("copy_gbps"):
        lines.append(f"- copy bandwidth: {ceilings['copy_gbps']:.0f} GB/s")
    if ceilings.get("empty_kernel_median_us"):
        lines.append(f"- empty kernel: {ceilings['empty_kernel_median_us']:.2f} us")
    if ceilings.get("bf16_tflops"):
        size = ceilings.get("matrix_size")
        lines.append(f"- BF16 cuBLAS at {size}^3: {ceilings['bf16_tflops']:.0f} TFLOP/s")
    if ceilings.get("int8_tops"):
        size = ceilings.get("matrix_size")
        lines.append(f"- INT8 int8_scaled_mm at {size}^3: {ceilings['int8_tops']:.0f} TOPS")
    return lines


def render(document: dict, directory: Path, plt) -> list[str]:
    """Writes the charts and report.md into `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    reports = suite_reports(document)
    shared_ceilings = document.get("ceilings") or {}
    sections = [f"# Benchmark report ({document.get('suite', 'results')})", ""]
    sections += _environment_lines(document) + [""]
    if ceiling_lines := _ceiling_lines(shared_ceilings):
        sections += ["## Ceilings", "", *ceiling_lines, ""]
    # Recomputed from the measurements, so that an older file reads with today's rules.
    summary = summarize(reports, shared_ceilings) if len(reports) > 1 else None
    if summary:
        sections += ["## Summary", "", "```", format_summary(summary), "```", ""]
    files = []
    for suite, report in reports.items():
        if not all("providers" in r for r in report.get("results", [])):
            sections += [f"## {suite}", "", "(not timing results: nothing to chart)", ""]
            continue
        ceilings = {**(report.get("ceilings") or {}), **shared_ceilings}
        if suite == "quant":
            images = plot_quant(plt, report, ceilings, directory)
        elif suite == "gemm" or any(gemm_flops(r["config"]) for r in report["results"][:1]):
            images = plot_gemm(plt, report, ceilings, directory)
        else:
            images = []
        files += images
        sections += [f"## {suite}", ""]
        sections += [f"![{Path(image).stem}]({image})" for image in images]
        sections += ["", results_markdown(suite, report, ceilings), ""]
        for note in report.get("notes") or []:
            sections.append(f"- {note}")
        sections.append("")
    (directory / "report.md").write_text("\n".join(sections).rstrip() + "\n")
    return [*files, "report.md"]


def run(args: argparse.Namespace) -> int:
    try:
        plt = _pyplot()
    except ImportError:
        print(NEEDS_MATPLOTLIB, file=sys.stderr)
        return 2
    path = Path(args.results)
    try:
        document = json.loads(path.read_text())
        suite_reports(document)
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {path} as a JSON results file ({exc})", file=sys.stderr)
        return 2
    directory = Path(args.dir) if args.dir else path.with_name(f"{path.stem}-report")
    files = render(document, directory, plt)
    print(f"wrote {', '.join(files)} to {directory}")
    return 0
