"""``distdiff sweep CONFIG``: run any experiment grid in parallel worker processes, resumably.

Points run in local worker processes (one torch thread each by default); each
finished point is appended to ``results.csv`` at once, so Ctrl-C, kill -9 or a
crash in one point loses no finished point, and rerunning the same command
resumes, skipping what is done. A progress bar shows the ETA.

Example
-------
``distdiff sweep snr_channels --workers 2``  ·  ``distdiff sweep my_experiment.yaml --out /data/results``
"""

from __future__ import annotations

from experiments.commands.run import add_common_arguments, execute

NAME = "sweep"
HELP = "run the grid of any experiment config in parallel, resumably"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="a config file, or the name of a shipped config")
    add_common_arguments(p)
    return p


def run(args) -> int:
    return execute(args)
