"""Eb/N0 at BLER 10 % of the 5G LDPC link, and its gap to the Shannon and BICM limits.

For LDPC code rate 1/2 (information + CRC24B bits over coded bits) with QPSK
and 16-QAM at K = 1024 and 4096 information bits per block, over AWGN with
the project's default receiver (app demapping, early-stopping BP, boxplus,
up to 50 iterations), the script locates the 10 % BLER point: a coarse walk
in 0.25 dB steps up from the BICM limit, then a fine walk in 0.05 dB steps from 0.5 dB below
the coarse crossing until the BLER is below half the target, and log-linear
interpolation on the non-increasing envelope of the points.  Eb/N0 is per *information* bit (the
CRC counts as overhead); the limits are those of the information rate
``R = K / n`` actually delivered.

Run::

    python benchmarks/ldpc_threshold.py               # ~5-10 CPU minutes
    python benchmarks/ldpc_threshold.py --decoder sionna
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from phy import DigitalLink, LinkConfig, snr_db_from_ebno_db, theory, tune_malloc  # noqa: E402


def bler_at(link: DigitalLink, ebno_db: float, blocks: int, max_errors: int, seed: int) -> tuple[int, int]:
    cfg = link.config
    snr = snr_db_from_ebno_db(ebno_db, cfg.bits_per_symbol, cfg.effective_code_rate)
    gen = torch.Generator().manual_seed(seed)
    done = errs = 0
    step = max(1, 32768 // cfg.block_length)
    with torch.no_grad():
        while done < blocks and errs < max_errors:
            b = min(step, blocks - done)
            bits = torch.randint(0, 2, (b, cfg.block_length), generator=gen).float()
            res = link(bits, snr, gen)
            done += res.num_blocks
            errs += res.block_errors
    return done, errs


def threshold(link: DigitalLink, target: float, coarse_blocks: int, fine_blocks: int, seed: int) -> tuple[float, list]:
    cfg = link.config
    limit = theory.bicm_ebno_limit_db(cfg.modulation, cfg.effective_code_rate)
    e = math.floor(limit / 0.25) * 0.25
    points = []
    while True:  # coarse walk
        n, k = bler_at(link, e, coarse_blocks, 10 * coarse_blocks, seed)
        points.append((e, n, k))
        if k / n < target:
            break
        e += 0.25
    f, i = round(e - 0.5, 3), 0
    while i < 40:  # fine walk: 0.05 dB steps until the BLER is well below the target
        n, k = bler_at(link, f, fine_blocks, 10 * fine_blocks, seed + 1 + i)
        points.append((f, n, k))
        if k / n < target / 2:
            break
        f, i = round(f + 0.05, 3), i + 1
    pts = sorted({p[0]: p for p in points}.values())  # fine points replace coarse ones
    s = np.array([p[0] for p in pts])
    b = np.array([p[2] / p[1] for p in pts])
    b_env = np.maximum.accumulate(b[::-1])[::-1]  # non-increasing envelope for the crossing
    idx = int(np.argmax(b_env < target))
    if idx == 0:
        return float(s[0]), pts
    lo, hi = idx - 1, idx
    lb = np.log(np.maximum(b_env[[lo, hi]], 0.5 / fine_blocks))
    frac = (lb[0] - math.log(target)) / (lb[0] - lb[1])
    return float(s[lo] + frac * (s[hi] - s[lo])), pts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--decoder", choices=["early-stop", "sionna"], default="early-stop")
    p.add_argument("--target-bler", type=float, default=0.1)
    p.add_argument("--fine-blocks", type=int, default=None, help="blocks per fine point (default 400 / 150)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="print every measured point")
    args = p.parse_args(argv)
    tune_malloc()
    print("modulation  K     R=K/n   Eb/N0@BLER10%  Shannon  gap    BICM   gap    (dB)")
    for mod in ("qpsk", "16qam"):
        for k in (1024, 4096):
            cfg = LinkConfig(modulation=mod, code="ldpc", code_rate=0.5, block_length=k, channel="awgn",
                             decoder=args.decoder)
            link = DigitalLink(cfg)
            fine = args.fine_blocks or (400 if k <= 1024 else 150)
            thr, pts = threshold(link, args.target_bler, coarse_blocks=max(20, fine // 4), fine_blocks=fine,
                                 seed=args.seed)
            r = cfg.effective_code_rate
            shannon = theory.shannon_ebno_limit_db(cfg.bits_per_symbol * r)
            bicm = theory.bicm_ebno_limit_db(mod, r)
            print(f"{mod:10s}  {k:5d} {r:.4f}  {thr:13.2f}  {shannon:7.2f}  {thr - shannon:5.2f}  "
                  f"{bicm:5.2f}  {thr - bicm:5.2f}", flush=True)
            if args.verbose:
                for e, n, kk in pts:
                    print(f"    Eb/N0 {e:6.2f} dB  blocks {n:5d}  errors {kk:5d}  BLER {kk / n:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
