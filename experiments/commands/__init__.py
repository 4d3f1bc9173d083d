"""Subcommands of the ``distdiff`` command line.

Each module ``experiments/commands/<name>.py`` exposes
``add_parser(subparsers) -> argparse.ArgumentParser`` (it adds its
subparser) and ``run(args) -> int`` (the exit code), and optionally ``check(args)``: the
checks that need no heavy import, which the command line runs before it
imports torch and Sionna. Options that set a configuration field come from
the model (:mod:`experiments.cli_options`).  ``experiments/cli.py``
lists the module names in ``COMMANDS``.
"""
