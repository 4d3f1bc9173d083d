"""The ``distdiff`` command line.

``distdiff <command> [options]``; each command lives in
``experiments/commands/<command>.py`` (``-`` in a command's name is ``_`` in
its module's) and exposes ``add_parser(subparsers)``
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
import logging
import os
import re
import sys
import warnings
from typing import Optional, Sequence

__all__ = ["COMMANDS", "build_parser", "parse_args", "main", "quiet_upstream", "version"]

#: subcommand module names under experiments/commands, in help order
COMMANDS = ["link", "run", "sweep", "plot", "generate", "train_jscc"]
#: commands that need no link simulation (no malloc tuning, no phy import)
_NO_PHY = {"plot"}


def version() -> str:
    """The installed distribution's version (or the source tree's, from pyproject)."""
    from importlib.metadata import PackageNotFoundError, version as dist_version  # pylint: disable=import-outside-toplevel

    try:
        return dist_version("distdiff")
    except PackageNotFoundError:  # pragma: no cover - a source checkout that is not installed
        return "unknown (not installed)"


#: (logger name, start of the message) of upstream log records dropped by :func:`quiet_upstream`
QUIET_LOG_RECORDS = (
    # transformers: image processors need torchvision, which the text-to-image path does not use
    ("transformers.utils.import_utils", "`CLIPImageProcessor` requires torchvision (not installed)"),
    ("transformers.utils.import_utils", "`SiglipImageProcessor` requires torchvision (not installed)"),
    # diffusers: loading without accelerate (the shipped model is small; nothing to gain)
    ("diffusers.pipelines.pipeline_utils", "Cannot initialize model with low cpu memory usage because `accelerate`"),
    ("diffusers.models.modeling_utils", "Cannot initialize model with low cpu memory usage because `accelerate`"),
)
#: (category, message regex, module regex) of upstream warnings ignored by :func:`quiet_upstream`
QUIET_WARNINGS = (
    # numpy 2 about diffusers' schedulers calling np.array(tensor, copy=False) (harmless here)
    (DeprecationWarning, r"__array__ implementation doesn't accept a copy keyword", r"diffusers\.schedulers\."),
)


class _DropRecords(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def quiet_upstream() -> None:
    """Silence, narrowly, upstream messages that are noise to a command-line user.

    Drops the exact log records of :data:`QUIET_LOG_RECORDS` (a filter on each named logger,
    created now; the libraries are not imported) and ignores the exact warnings of
    :data:`QUIET_WARNINGS`. Nothing else is silenced. Idempotent. Worker processes of a sweep
    should call it too (their initialiser).
    """
    by_logger: dict[str, list[str]] = {}
    for name, prefix in QUIET_LOG_RECORDS:
        by_logger.setdefault(name, []).append(prefix)
    for name, prefixes in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropRecords) for f in logger.filters):
            logger.addFilter(_DropRecords(tuple(prefixes)))
    for category, message, module in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


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


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse a command line (``sys.argv[1:]`` by default); negative values may follow their option."""
    return build_parser().parse_args(_glue_negative_values(list(sys.argv[1:] if argv is None else argv)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``distdiff`` console script; returns the exit code."""
    quiet_upstream()
    args = parse_args(argv)
    try:
        if args.command not in _NO_PHY and hasattr(args, "_run"):
            check = getattr(importlib.import_module(f"experiments.commands.{args.command.replace('-', '_')}"), "check", None)
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
