"""The benchmark driver: `python -m qbench_ext.bench SUITE [options]`.

Each suite is a module with NAME, HELP, add_arguments(parser) and run(args) -> exit status;
adding one to SUITES gives it a subcommand.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import quant

SUITES = {suite.NAME: suite for suite in (quant,)}


def build_parser(prog: str | None = None, *, suite: str | None = None) -> argparse.ArgumentParser:
    """The parser of every suite as subcommands, or with `suite`, of that suite alone (for
    scripts that stand for one suite)."""
    if suite is not None:
        module = SUITES[suite]
        parser = argparse.ArgumentParser(prog=prog, description=module.HELP)
        module.add_arguments(parser)
        parser.set_defaults(run=module.run)
        return parser
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(
        title="suites", dest="suite", metavar="SUITE", required=True
    )
    for name, module in SUITES.items():
        subparser = subcommands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(
    argv: Sequence[str] | None = None, *, prog: str | None = None, suite: str | None = None
) -> int:
    """Parses `argv` (default: the command line) and runs the chosen suite; returns its exit
    status."""
    args = build_parser(prog, suite=suite).parse_args(argv)
    return args.run(args)
