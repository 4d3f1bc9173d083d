"""Run ``distdiff`` command lines in a fresh interpreter and report which heavy modules they imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sionna", "diffusers", "transformers")


def run_cli_in_fresh_process(argvs: list[list[str]]) -> subprocess.CompletedProcess:
    """Run ``distdiff ARGV`` for each argv in one fresh interpreter; its stdout is the sorted list of the
    :data:`HEAVY` modules imported by then (``[]`` when none), its stderr the commands' messages."""
    probe = ("import sys\nfrom experiments.cli import main\n"
             f"for argv in {argvs!r}:\n"
             "    try:\n        main(argv)\n"
             "    except SystemExit:\n        pass\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ))
