"""The `modelrollout` command (also installed as `kubectl-modelrollout`).

Each subcommand lives in its own module under `modelrollout.cli` and exposes
`register(subparsers)`, which adds its parser and sets `handler` to a function
taking the parsed arguments and returning the exit code. Modules are imported
only when listed here, and heavy imports stay inside the handlers, so `--help`
is fast and a missing optional piece never breaks the other commands.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from modelrollout import __version__

# Subcommand modules, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "status",
    "control",
    "serve",
    "train",
    "package",
    "register",
    "retrain",
    "review",
    "prune",
    "loadgen",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelrollout",
        description="Progressive delivery of ML model servers on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"modelrollout {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"modelrollout.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
