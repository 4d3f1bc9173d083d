"""Shared pytest configuration.

Every test runs with one torch thread: the suite must be cheap and its
timings comparable on a shared two-core machine.
"""

import torch

torch.set_num_threads(1)
