"""The benchmark driver: `python -m qbench_ext.bench [SUITE | COMMAND] [options]`.

Each suite is a module with NAME, HELP, add_arguments(parser) and run(args) -> exit status;
adding one to SUITES gives it a subcommand, and puts it in the default suite, which runs
when no suite is named (`python -m qbench_ext.bench [--quick] [--out FILE.json]
[--dry-run]`). COMMANDS work on results and accuracy rather than timing: `compare`,
`report`, `accuracy`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import gemm, quant

SUITES = {suite.NAME: suite for suite in (quant, gemm)}

from . import accuracy, compare, report  # noqa: E402
from . import suite as default_suite  # noqa: E402

COMMANDS = {command.NAME: command for command in (compare, report, accuracy)}


def _module(name: str):
    if name == default_suite.NAME:
        return default_suite
    return SUITES[name] if name in SUITES else COMMANDS[name]


def build_parser(prog: str | None = None, *, suite: str | None = None) -> argparse.ArgumentParser:
    """The parser of every suite as subcommands, or with `suite`, of that suite alone (for
    scripts that stand for one suite)."""
    if suite is not None:
        module = _module(suite)
        parser = argparse.ArgumentParser(prog=prog, description=module.HELP)
        module.add_arguments(parser)
        parser.set_defaults(run=module.run)
        return parser
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.splitlines()[0],
        epilog="Without a suite or command, runs the default suite: "
        f"{default_suite.HELP} (options: --quick, --out FILE.json, --vllm-lib PATH, "
        "--dry-run).",
    )
    subcommands = parser.add_subparsers(
        title="suites and commands", dest="suite", metavar="SUITE", required=True
    )
    for name, module in {**SUITES, **COMMANDS}.items():
        subparser = subcommands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(
    argv: Sequence[str] | None = None, *, prog: str | None = None, suite: str | None = None
) -> int:
    """Parses `argv` (default: the command line) and runs the chosen suite; returns its exit
    status. Without a suite or command name (no arguments, or options only), runs the
    default suite."""
    argv = list(sys.argv[1:] if argv is None else argv)
    names_nothing = not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help"))
    if suite is None and names_nothing:
        suite = default_suite.NAME
    args = build_parser(prog, suite=suite).parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:  # the suites have written what they measured
        print("interrupted", file=sys.stderr)
        return 130
