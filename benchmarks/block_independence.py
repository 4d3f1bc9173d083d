"""Are the code blocks of one payload row independent trials?  (Do Wilson intervals over blocks hold?)

The BLER benchmarks and tables (``benchmarks/mcs_fading.py``, ``python -m phy.calibrate``) count block
errors over rows of 8 code blocks and give Wilson 95% intervals, which assume independent blocks.  Over a
fading channel the blocks of one row share a channel realisation in time, so their errors could cluster.
This script sends single rows of 8 blocks (a fresh channel per call), counts the block errors per row and
reports the design effect ``var(errors per row) / (8 p (1 - p))`` (:func:`phy.sweep.design_effect`): 1 for
independent blocks, larger when errors cluster (a Wilson interval would then be too narrow by its square
root; ``benchmarks/mcs_fading.py`` widens each point's interval by its own design effect).

Run (about two minutes on one core)::

    .venv/bin/python benchmarks/block_independence.py | tee benchmarks/results/block_independence.txt
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's phy, not an installed copy

#: (category, information bits per block, SNR [dB], MCS of table 1, rows): points near the 10 % target
POINTS = [("tdl-c_30mps_ls", 8424, 10.0, 8, 80), ("tdl-a_30mps_ls", 8424, 20.0, 20, 80),
          ("tdl-c_3mps_ls", 1024, 10.0, 5, 300), ("tdl-c_30mps_ls", 1024, 10.0, 5, 300),
          ("tdl-a_3mps_ls", 1024, 15.0, 12, 300), ("tdl-a_3mps_ls", 8424, 15.0, 14, 80),
          ("rayleigh_ls", 1024, 15.0, 17, 300)]


def main() -> int:
    from phy import DigitalLink, LinkConfig
    from phy.calibrate import CATEGORIES
    from phy.sweep import design_effect
    from scipy import stats

    torch.set_num_threads(1)
    print("category         K     SNR  MCS  rows  BLER   design effect  chi2 p (overdispersion)")
    for category, k, snr_db, mcs, rows in POINTS:
        link = DigitalLink(LinkConfig(mcs=mcs, block_length=k, **CATEGORIES[category]))
        gen = torch.Generator().manual_seed(7)
        t0 = time.perf_counter()
        with torch.no_grad():
            errors = np.array([link(torch.randint(0, 2, (1, 8 * k), generator=gen).float(), snr_db, gen).block_errors
                               for _ in range(rows)], dtype=np.float64)
        p = errors.mean() / 8
        deff = design_effect(errors, 8) if 0 < p < 1 else float("nan")
        # dispersion test: (rows - 1) * design effect ~ chi2(rows - 1) for binomial rows
        p_value = float(stats.chi2.sf((rows - 1) * deff, rows - 1)) if np.isfinite(deff) else float("nan")
        print(f"{category:15} {k:5d} {snr_db:5.1f} {mcs:4d} {rows:5d}  {p:.3f}  {deff:13.2f}  {p_value:.3f}"
              f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
