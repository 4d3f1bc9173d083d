"""Subcommands of the ``distdiff`` command line.

Each module ``experiments/commands/<name>.py`` exposes
``add_parser(subparsers) -> argparse.ArgumentParser`` (it adds its
subparser) and ``run(args) -> int`` (the exit code).  ``experiments/cli.py``
lists the module names in ``COMMANDS``.
"""
