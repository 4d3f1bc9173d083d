"""Does ``mcs: auto`` meet its own BLER target on fading channels with LS estimation?

For each channel (AWGN; Rayleigh block fading, TDL-A and TDL-C at 3 and 30 m/s,
all with LS estimation; TDL-C at 10 m/s, the issue's reference case) and each
SNR, the adaptive link (:class:`phy.DigitalLink` with ``mcs="auto"``, 1024-bit
blocks unless ``--block-length``, MCS table 1 unless ``--mcs-table``, target BLER 0.1)
picks its MCS -- over a calibrated
category (AWGN, Rayleigh and TDL-A/C at 3 and 30 m/s with LS: ``path=table``) from the BLER-vs-average-SNR
table measured over that channel (``python -m phy.calibrate --channel ...``), otherwise (TDL-C at
10 m/s: ``path=profile``) at the channel's :class:`phy.mcs.FadingProfile`, the information of the
receiver's own LLRs; both count the LS estimation loss -- and the bit-true chain then
measures that MCS's BLER at the same SNR (independent seeds).  A point
*meets* the target when the measured BLER is at most 1.5 x the target; the
table gives the Wilson 95% interval of each BLER (and the same interval widened by the point's design
effect: the blocks of one payload row can fail together, :func:`phy.sweep.design_effect`), the expected BLER the
selection predicted, and whether the selection itself found an MCS that
meets the target (``feasible``; where none does it falls back to the most
robust MCS and the target cannot be met: channel outage, not a selection
error).

Run (resumable: points already in --output are kept; the table-path channels
cost no probe: 2.4 CPU-minutes for the 42 points at 640 blocks; TDL-C at 10 m/s adds its probes)::

    .venv/bin/python benchmarks/mcs_fading.py --output benchmarks/results/mcs_fading.jsonl
    .venv/bin/python benchmarks/mcs_fading.py --blocks 640 --channels awgn rayleigh tdl-a:3 tdl-a:30 \
        tdl-c:3 tdl-c:30 --output benchmarks/results/mcs_fading_tables.jsonl
    .venv/bin/python benchmarks/mcs_fading.py --snr-db -5 0 5 --channels tdl-c:30 --blocks 200
    .venv/bin/python benchmarks/mcs_fading.py --mcs-table 3 --blocks 640 --channels awgn rayleigh tdl-a:3 \
        tdl-a:30 tdl-c:3 tdl-c:30 --output benchmarks/results/mcs_fading_tables_table3.jsonl
    .venv/bin/python benchmarks/mcs_fading.py --block-length 8424 --blocks 320 --channels awgn rayleigh \
        tdl-a:3 tdl-a:30 tdl-c:3 tdl-c:30 --output benchmarks/results/mcs_fading_tables_k8424.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's phy, not an installed copy

from phy.calibrate import CATEGORIES  # noqa: E402

#: the calibrated categories under short names ("tdl-a:3" for TDL-A at 3 m/s), plus the main job's
#: TDL-C at 10 m/s, which has no table (the profile path)
CHANNELS = {f["channel"] + (f":{f['speed_mps']:g}" if "speed_mps" in f else ""): f for f in CATEGORIES.values()}
CHANNELS["tdl-c:10"] = dict(channel="tdl-c", speed_mps=10.0, csi="ls")


def measure(name: str, snr_db: float, blocks: int, target: float, seed: int, mcs_table: int = 1,
            block_length: int = 1024) -> dict:
    """Choose the MCS at ``snr_db`` and measure its BLER over ``blocks`` code blocks of ``block_length`` bits."""
    from phy import DigitalLink, LinkConfig
    from phy.seeding import derive_seed
    from phy.sweep import bit_errors_per_block, design_effect, wilson_interval

    cfg = LinkConfig(mcs="auto", mcs_table=mcs_table, block_length=block_length, target_bler=target,
                     **CHANNELS[name])
    link = DigitalLink(cfg)
    t0 = time.perf_counter()
    choice = link.select_mcs(snr_db)
    t_select = time.perf_counter() - t0
    # the seed of a 1024-bit point is the one the earlier runs used (their results stay reproducible)
    key = f"mcs_fading/{name}/{snr_db}/{seed}" + ("" if block_length == 1024 else f"/k{block_length}")
    gen = torch.Generator().manual_seed(derive_seed(key))
    n = errors = 0
    per_row: list[int] = []   # block errors of each payload row of 8 blocks (one channel realisation in time)
    t0 = time.perf_counter()
    with torch.no_grad():
        while n < blocks:
            bits = torch.randint(0, 2, (8, 8 * block_length), generator=gen).float()
            res = link(bits, snr_db, gen)
            assert res.mcs_index == choice.index
            row_errors = (bit_errors_per_block(bits, res.bits_hat, block_length) > 0).sum(-1)
            assert int(row_errors.sum()) == res.block_errors
            per_row.extend(int(v) for v in row_errors)
            n += res.num_blocks
            errors += res.block_errors
    lo, hi = wilson_interval(errors, n)
    # blocks of one row can fail together (a slow fade): the interval widened by the measured design effect
    deff = design_effect(per_row, 8)
    lo_rows, hi_rows = wilson_interval(errors, n, design_effect=deff)
    bler = errors / n
    return dict(channel=name, snr_db=snr_db, mcs_table=mcs_table, block_length=block_length, path=choice.path,
                calibration=choice.calibration,
                mcs=choice.index, modulation=choice.modulation,
                code_rate=round(choice.code_rate, 4), spectral_efficiency=round(choice.spectral_efficiency, 4),
                feasible=choice.meets_target, expected_bler=round(choice.expected_bler, 4), blocks=n,
                block_errors=errors, bler=round(bler, 4), ci_low=round(lo, 4), ci_high=round(hi, 4),
                design_effect=round(deff, 3), ci_low_rows=round(lo_rows, 4), ci_high_rows=round(hi_rows, 4),
                met=bler <= 1.5 * target, select_s=round(t_select, 1), measure_s=round(time.perf_counter() - t0, 1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", nargs="+", default=list(CHANNELS), choices=list(CHANNELS))
    p.add_argument("--snr-db", nargs="+", type=float, default=[-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0])
    p.add_argument("--blocks", type=int, default=320, help="code blocks measured per point")
    p.add_argument("--target-bler", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mcs-table", type=int, default=1, choices=[1, 2, 3], help="38.214 PDSCH MCS table")
    p.add_argument("--block-length", type=int, default=1024,
                   help="information bits per code block (the tables have 256, 1024 and 8424 = 8448 - CRC24B)")
    p.add_argument("--output", default="benchmarks/results/mcs_fading.jsonl")
    p.add_argument("--report-only", action="store_true", help="measure nothing: print the table of --output")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from phy import tune_malloc

    tune_malloc()
    out = Path(args.output)
    if args.report_only and not out.is_file():
        p.error(f"--report-only: {out} does not exist")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["channel"], r["snr_db"], r.get("mcs_table", 1), r.get("block_length", 1024)))
    todo = [] if args.report_only else [(name, snr) for name in args.channels for snr in args.snr_db
                                        if (name, snr, args.mcs_table, args.block_length) not in done]
    if todo:
        with open(out, "a", encoding="utf-8") as fh:
            for name, snr in todo:
                row = measure(name, snr, args.blocks, args.target_bler, args.seed, args.mcs_table, args.block_length)
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                print(json.dumps(row), flush=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    print(f"{'channel':10} {'SNR':>5} {'path':>7} {'MCS':>4} {'mod':>6} {'rate':>6} {'feas':>5} {'exp':>6} "
          f"{'n':>5} {'BLER':>6} {'95% CI':>15} {'deff':>5} {'95% CI, rows':>15} {'met':>4}")
    for r in rows:
        rows_ci = (f"{r['design_effect']:5.2f} [{r['ci_low_rows']:.3f}, {r['ci_high_rows']:.3f}]"
                   if "design_effect" in r else f"{'-':>5} {'-':>15}")
        print(f"{r['channel']:10} {r['snr_db']:5.0f} {r.get('path', 'profile'):>7} {r['mcs']:4d} "
              f"{r['modulation']:>6} {r['code_rate']:6.3f} "
              f"{str(r['feasible']):>5} {r['expected_bler']:6.3f} {r['blocks']:5d} {r['bler']:6.3f} "
              f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] {rows_ci} {'yes' if r['met'] else 'NO':>4}")
    met = sum(r["met"] for r in rows)
    feasible = [r for r in rows if r["feasible"]]
    print(f"# {met}/{len(rows)} points meet BLER <= 1.5 x {args.target_bler}; "
          f"{sum(r['met'] for r in feasible)}/{len(feasible)} of those where "
          f"the selection found a feasible MCS")
    with_rows = [r for r in feasible if "ci_high_rows" in r]
    if with_rows:
        print(f"# feasible points whose 95% upper bound is <= 1.5 x {args.target_bler}: "
              f"{sum(r['ci_high'] <= 1.5 * args.target_bler for r in with_rows)}/{len(with_rows)} with blocks as "
              f"independent trials, {sum(r['ci_high_rows'] <= 1.5 * args.target_bler for r in with_rows)}/"
              f"{len(with_rows)} widened by each point's design effect (rows of 8 blocks, "
              f"max {max(r['design_effect'] for r in with_rows):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
