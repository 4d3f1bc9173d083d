"""Benchmark: what the sweep machinery costs, in one run (issue 13's targets).

Sections (``--only`` picks some; all by default), each ratio measured in this one run:

- ``capacity`` (the control, run before and after the worker benchmarks): N pure-Python
  processes against the same work in series; on a machine shared with other jobs it is
  below N, and no sweep can scale better than it.
- ``link-workers``: a 100-point link sweep (LDPC, 4 modulations x 25 SNRs) with 2 worker
  processes against 1 (in-process); the rows must be identical.
- ``diffusion-workers``: a 40-point diffusion sweep (the main job on the tiny random model,
  4 seeds x 10 SNRs, 4 steps) on a process executor with 2 workers against 1, plus the UNet
  calls (``timings.csv``) of each; the results.csv files must be byte-identical.
- ``target``: a link sweep stopping at 100 block errors (``target_block_errors=100``) against a
  fixed-bit sweep of the same worst-case precision (every point gets the bits the target sweep
  needed at its hardest point); compute = simulated bits and wall time; the worst-case
  relative half-width of the 95% BLER interval of both is printed.
- ``link-1000``: a 1,008-point link sweep (MCS 0..27 x 36 SNRs, target 100 block errors,
  at most 20,000 bits a point) on ``--workers`` processes: its wall time.
- ``main``: the main job (``python -m experiments.cli run``) of a base checkout (``--base``,
  e.g. ``git worktree add /tmp/base <commit>``) against this checkout, one after the other,
  with the UNet calls counted from each run's timings (base: recomputations inferred from
  which worker ran which seed).

Run (the whole set takes ~15 minutes on a 2-core CPU; run on an idle machine, the ratios of a
shared machine are lower)::

    python benchmarks/bench_sweeps.py
    python benchmarks/bench_sweeps.py --only capacity,link-workers,target
    python benchmarks/bench_sweeps.py --only main --base /tmp/base
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))          # this checkout, not an installed distdiff


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _burn(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def bench_capacity(workers: int) -> list[list]:
    """The control: what N processes of pure Python get from this machine now (a shared machine gives < N)."""
    import multiprocessing

    n = 6_000_000
    _, t1 = _timed(lambda: [_burn(n) for _ in range(workers)])
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        _, tn = _timed(lambda: pool.map(_burn, [n] * workers))
    return [[f"control: {workers} busy loops, in series vs {workers} processes", f"{t1:.2f} s", f"{tn:.2f} s",
             f"{t1 / tn:.2f}x"]]


def bench_link_workers(workers: int) -> list[list]:
    from phy import LinkConfig
    from phy.sweep import sweep_links

    snrs = [float(s) for s in range(-4, 21)]
    sweeps = [(LinkConfig(code="ldpc", modulation=m, block_length=512), snrs, None)
              for m in ("qpsk", "16qam", "64qam", "256qam")]
    kw = dict(num_bits=32768, seed=0, progress=False)
    one, t1 = _timed(lambda: sweep_links(sweeps, workers=1, **kw))
    many, tn = _timed(lambda: sweep_links(sweeps, workers=workers, **kw))
    assert repr(one) == repr(many), "rows differ between 1 and N workers"
    return [["link sweep, 100 points", f"1 worker {t1:.1f} s", f"{workers} workers {tn:.1f} s", f"{t1 / tn:.2f}x"]]


def _diffusion_cfg(start_method: str):
    from experiments.config import load_config

    return load_config("default", overrides=[
        "model=tiny-random", "seeds=[0,1,2,3]", "grid.snr_db=[-5,0,5,10,12,15,18,20,22,25]",
        "chain.num_inference_steps=4", "chain.num_shared_steps=2", "execution.save_images=false",
        f"execution.start_method={start_method}"])


def bench_diffusion_workers(workers: int, start_method: str) -> list[list]:
    from experiments.executors import ProcessExecutor
    from experiments.results import read_results
    from experiments.runner import run_sweep

    rows, csvs, walls, calls = [], {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, workers):
            cfg = _diffusion_cfg(start_method)
            ex = ProcessExecutor(workers=n, start_method=start_method)
            out, wall = _timed(lambda: run_sweep(cfg, out_root=Path(tmp) / f"w{n}", executor=ex, progress=False,
                                                 make_outputs=False))
            assert out.complete and not out.num_failed, out.failures[:1]
            csvs[n] = (out.run_dir / "results.csv").read_bytes()
            walls[n] = wall
            calls[n] = int(read_results(out.run_dir / "timings.csv")["unet_calls"].sum())
    if csvs[1] != csvs[workers]:
        import io  # pylint: disable=import-outside-toplevel

        import pandas as pd  # pylint: disable=import-outside-toplevel

        a, b = (pd.read_csv(io.BytesIO(csvs[n])) for n in (1, workers))
        cols = [c for c in a.columns if c not in b.columns or not a[c].astype(str).equals(b[c].astype(str))]
        first = {c: (a[c][a[c].astype(str) != b[c].astype(str)].head(2).tolist(),
                     b[c][a[c].astype(str) != b[c].astype(str)].head(2).tolist()) for c in cols[:4]}
        for n in (1, workers):
            Path(tempfile.gettempdir(), f"bench_diffusion_w{n}.csv").write_bytes(csvs[n])
        raise AssertionError(f"results.csv differs between 1 and {workers} workers in columns {cols}: {first} "
                             f"(both kept in {tempfile.gettempdir()}/bench_diffusion_w*.csv)")
    rows.append(["diffusion sweep, 40 points", f"1 worker {walls[1]:.1f} s ({calls[1]} UNet calls)",
                 f"{workers} workers {walls[workers]:.1f} s ({calls[workers]} UNet calls)",
                 f"{walls[1] / walls[workers]:.2f}x"])
    return rows


def _worst_half_width(rows) -> float:
    return max((r["bler_high"] - r["bler_low"]) / 2 / r["bler"] for r in rows if r["bler"] > 0)


def bench_target() -> list[list]:
    from phy import LinkConfig
    from phy.sweep import sweep_links

    sweeps = [(LinkConfig(code="ldpc", block_length=256), [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75], None)]
    adaptive, ta = _timed(lambda: sweep_links(sweeps, 4_000_000, progress=False, target_block_errors=100,
                                              max_bits=4_000_000))
    need = max(r["num_bits"] for r in adaptive)
    fixed, tf = _timed(lambda: sweep_links(sweeps, need, progress=False))
    bits_a, bits_f = sum(r["num_bits"] for r in adaptive), sum(r["num_bits"] for r in fixed)
    return [["--target-block-errors 100 vs fixed bits (8 SNRs, LDPC)",
             f"target: {bits_a / 1e6:.2f} Mbit, {ta:.1f} s, worst +-{_worst_half_width(adaptive):.1%}",
             f"fixed {need / 1e6:.2f} Mbit/pt: {bits_f / 1e6:.2f} Mbit, {tf:.1f} s, "
             f"worst +-{_worst_half_width(fixed):.1%}",
             f"{bits_f / bits_a:.2f}x bits, {tf / ta:.2f}x time"]]


def bench_link_1000(workers: int) -> list[list]:
    cmd = [sys.executable, "-m", "experiments.cli", "link", "--mcs", "0:27", "--snr-db", "-5:1:30",
           "--target-block-errors", "100", "--max-bits", "20000", "--workers", str(workers), "--no-progress",
           "--format", "json"]
    proc, wall = _timed(lambda: subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True))
    n = len(proc.stdout.splitlines())
    return [[f"link sweep, {n} points (`{' '.join(cmd[3:])}`)", "", f"{wall:.1f} s wall", f"{n / wall:.1f} pt/s"]]


def _unet_calls(run_dir: Path, per_seed_group: int | None = None) -> int | None:
    from experiments.results import read_results

    t = read_results(run_dir / "timings.csv")
    if "unet_calls" in t:
        return int(t["unet_calls"].sum())
    return None


def bench_main(base: Path) -> list[list]:
    out = []
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, where in (("base", base), ("this", ROOT)):
            cmd = [sys.executable, "-m", "experiments.cli", "run", "--out", f"{tmp}/{name}", "--no-progress"]
            _, walls[name] = _timed(lambda: subprocess.run(cmd, cwd=where, check=True, capture_output=True))
            run_dir = next(Path(tmp, name).glob("*/*"))
            out.append([f"main job ({name}: {where})", f"{walls[name]:.1f} s",
                        f"UNet calls {_unet_calls(run_dir)}", ""])
    out.append(["main job, base / this", "", "", f"{walls['base'] / walls['this']:.2f}x"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="capacity,link-workers,diffusion-workers,capacity,target,link-1000",
                    help="comma list of sections (main needs --base)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--start-method", default="forkserver", choices=["spawn", "forkserver", "fork"])
    ap.add_argument("--base", default=None, help="a checkout of the commit to compare the main job against")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    table = []
    for section in [s.strip() for s in args.only.split(",") if s.strip()]:
        if section == "capacity":
            table += bench_capacity(args.workers)
        elif section == "link-workers":
            table += bench_link_workers(args.workers)
        elif section == "diffusion-workers":
            table += bench_diffusion_workers(args.workers, args.start_method)
        elif section == "target":
            table += bench_target()
        elif section == "link-1000":
            table += bench_link_1000(args.workers)
        elif section == "main":
            if not args.base:
                raise SystemExit("--only main needs --base PATH (a checkout of the commit to compare against)")
            table += bench_main(Path(args.base))
        else:
            raise SystemExit(f"unknown section {section!r}")
        print(tabulate(table[-1:], tablefmt="plain"), flush=True)
    print()
    print(tabulate(table, headers=["benchmark", "reference", "this", "ratio"], tablefmt="github"))
    print(f"\n(cpu count {os.cpu_count()}; load average {os.getloadavg()[0]:.2f} at the end)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
