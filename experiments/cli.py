"""The ``distdiff`` command line.

``distdiff <command> [options]``; each command lives in
``experiments/commands/<command>.py`` and exposes ``add_parser(subparsers)``
and ``run(args) -> int``.  Add a command by adding its module name to
:data:`COMMANDS`.

Errors: a bad option is argparse's one-line usage error (exit code 2); a
:class:`ValueError` raised by the library (an invalid configuration, an empty
SNR list, ...) is printed as ``distdiff: error: <message>`` (exit code 2),
without a traceback.  Ctrl-C exits with 130; a closed output pipe
(``distdiff ... | head``) ends the command quietly.

Fail fast: building the parser imports neither torch nor Sionna nor diffusers
(the options generated from the configuration models come from
:mod:`experiments.cli_options`' cache), so a bad option is reported at once;
the heavy imports happen when a command runs.

Process-wide settings made here, once, and nowhere else: glibc's malloc
tuning (:func:`phy.tune_malloc`, before a command that simulates a link) and
the warnings filters of :func:`quiet_upstream` (exact upstream messages that
say nothing to a user of the command line).

Example
-------
>>> version()  # doctest: +ELLIPSIS
'0...'
>>> _glue_negative_values(["link", "--snr-db", "-5:5:5", "--seed", "3"])
['link', '--snr-db=-5:5:5', '--seed', '3']
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import warnings
from typing import Optional, Sequence

__all__ = ["COMMANDS", "build_parser", "main", "quiet_upstream", "version"]

#: subcommand module names under experiments/commands, in help order
COMMANDS = ["link", "run", "sweep", "plot", "generate"]
#: commands that need no link simulation (no malloc tuning, no phy import)
_NO_PHY = {"plot"}


def version() -> str:
    """The installed distribution's version (or the source tree's, from pyproject)."""
    from importlib.metadata import PackageNotFoundError, version as dist_version  # pylint: disable=import-outside-toplevel

    try:
        return dist_version("distdiff")
    except PackageNotFoundError:  # pragma: no cover - a source checkout that is not installed
        return "unknown (not installed)"


def quiet_upstream() -> None:
    """Silence, narrowly, upstream messages that are noise to a command-line user.

    Each filter names an exact message or module; nothing is silenced globally.
    Worker processes inherit the environment variables.
    """
    # transformers' import notes that torchvision is absent (it is not needed here) and its
    # logging repeats it; keep the output to what the user asked for
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # diffusers' logger says "accelerate not found" (or "Cannot initialize model with low cpu
    # memory usage because `accelerate` was not found") in the middle of progress bars
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", message=r".*torchvision.*", module=r"transformers(\..*)?")
    warnings.filterwarnings("ignore", message=r".*`accelerate` was not found.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(diffusers|transformers|sionna)(\..*)?")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(diffusers|transformers)(\..*)?")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="distdiff",
        description="Collaborative distributed diffusion over a simulated wireless link.",
    )
    parser.add_argument("--version", action="version", version=f"distdiff {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"experiments.commands.{name}")
        sub_parser = module.add_parser(sub)
        if sub_parser is None:
            sub_parser = sub.choices[getattr(module, "NAME", name)]
        sub_parser.set_defaults(_run=module.run)
    return parser


_NEGATIVE = re.compile(r"^-(\d|\.\d|inf\b)")


def _glue_negative_values(argv: list[str]) -> list[str]:
    """``--snr-db -5:5:5`` -> ``--snr-db=-5:5:5``: a value that starts like a negative number is
    kept with its option (argparse would take ``-5:5:5`` or ``-3,0,3`` for an option)."""
    out: list[str] = []
    for token in argv:
        if out and _NEGATIVE.match(token) and out[-1].startswith("--") and "=" not in out[-1] and out[-1] != "--":
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``distdiff`` console script; returns the exit code."""
    quiet_upstream()
    parser = build_parser()
    args = parser.parse_args(_glue_negative_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        if args.command not in _NO_PHY and hasattr(args, "_run"):
            check = getattr(importlib.import_module(f"experiments.commands.{args.command}"), "check", None)
            if check is not None:  # the command's own checks, before the heavy imports
                check(args)
            import phy  # pylint: disable=import-outside-toplevel

            phy.tune_malloc()
        return int(args._run(args) or 0)  # pylint: disable=protected-access
    except ValueError as exc:
        print(f"distdiff: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distdiff: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``| head``): say nothing, and keep Python's exit-time flush quiet
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
