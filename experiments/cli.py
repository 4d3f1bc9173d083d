"""The ``distdiff`` command line.

``distdiff <command> [options]``; each command lives in
``experiments/commands/<command>.py`` and exposes ``add_parser(subparsers)``
and ``run(args) -> int``.  Add a command by adding its module name to
:data:`COMMANDS`.

Errors: a bad option is argparse's one-line usage error (exit code 2); a
:class:`ValueError` raised by the library (an invalid configuration, an empty
SNR list, ...) is printed as ``distdiff: error: <message>`` (exit code 2),
without a traceback.  Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

__all__ = ["COMMANDS", "build_parser", "main"]

# transformers warns at import that torchvision is absent (it is not needed here); keep the
# command line's output to what the user asked for. Worker processes inherit this.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

#: subcommand module names under experiments/commands, in help order
COMMANDS = ["link", "run", "sweep", "plot", "generate"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="distdiff",
        description="Collaborative distributed diffusion over a simulated wireless link.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"experiments.commands.{name}")
        sub_parser = module.add_parser(sub)
        if sub_parser is None:
            sub_parser = sub.choices[getattr(module, "NAME", name)]
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``distdiff`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        return int(args._run(args) or 0)  # pylint: disable=protected-access
    except ValueError as exc:
        print(f"distdiff: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distdiff: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
