"""Shared pytest configuration.

Every test runs with one torch thread: the suite must be cheap and its
timings comparable on a shared two-core machine.

The command line's option cache (:func:`experiments.cli_options.cache_dir`)
goes to a temporary folder for the session (``DISTDIFF_CACHE_DIR``, inherited
by the subprocesses the tests start), so the suite leaves nothing in the
user's home; the folder is removed at the end.
"""

import os
import shutil
import tempfile

_CACHE_DIR = tempfile.mkdtemp(prefix="distdiff-test-cache-")
os.environ["DISTDIFF_CACHE_DIR"] = _CACHE_DIR

import torch  # noqa: E402

torch.set_num_threads(1)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)
