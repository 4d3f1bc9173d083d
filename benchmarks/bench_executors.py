"""Benchmark: the Ray executor against the process executor on a shrunk diffusion sweep.

The same sweep (the main job, ``default.yaml``, on the tiny random model with few
denoising steps: real diffusion, link and codec work per point, seconds each) runs
once on each executor, with the same number of workers, into fresh run directories.
It reports per executor the wall time of the whole ``run_sweep`` call (cluster or
pool start-up, worker imports and model loading included), that wall time per point,
the mean time a point spends inside its worker (``timings.csv``), and the ratio
Ray / process. It also checks that both ``results.csv`` files are byte-identical.

Run (a few minutes on a 2-core CPU; the ratio is from one run, so run it on an idle machine)::

    .venv/bin/python benchmarks/bench_executors.py                      # 2 workers, 12 points
    .venv/bin/python benchmarks/bench_executors.py --workers 4 --seeds 0,1,2,3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tabulate import tabulate


def shrunk_config(seeds: str, snr_db: str, steps: int):
    from experiments.config import load_config

    return load_config("default", overrides=[
        "model=tiny-random", f"seeds=[{seeds}]", f"grid.snr_db=[{snr_db}]",
        f"chain.num_inference_steps={steps}", f"chain.num_shared_steps={max(1, steps // 2)}",
        "execution.save_images=false"])


def run_once(cfg, executor, out: Path) -> dict:
    from experiments.results import read_results
    from experiments.runner import run_sweep

    t0 = time.perf_counter()
    outcome = run_sweep(cfg, out_root=out, executor=executor, progress=False, make_outputs=False)
    wall_s = time.perf_counter() - t0
    if not outcome.complete or outcome.num_failed:
        raise SystemExit(f"{executor.description}: the sweep did not complete ({outcome.failures[:1]})")
    timings = read_results(outcome.run_dir / "timings.csv")
    return {"wall_s": wall_s, "sweep_s": outcome.wall_s, "points": outcome.num_points,
            "point_s": float(timings["wall_s"].mean()), "worker_processes": timings["worker_pid"].nunique(),
            "csv": (outcome.run_dir / "results.csv").read_bytes()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", default="0,1", help="comma list (default: 0,1)")
    ap.add_argument("--snr-db", default="-5,0,5,10,15,25", help="comma list (default: 6 SNRs)")
    ap.add_argument("--steps", type=int, default=4, help="denoising steps per image (default: 4)")
    args = ap.parse_args(argv)

    from experiments.executors import ProcessExecutor
    from experiments.ray_executor import RayExecutor

    cfg = shrunk_config(args.seeds, args.snr_db, args.steps)
    rows, csvs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, ex in [("process", ProcessExecutor(workers=args.workers)),
                         ("ray", RayExecutor(workers=args.workers))]:
            r = run_once(cfg, ex, Path(tmp) / name)
            csvs[name] = r.pop("csv")
            rows.append({"executor": name, **r, "wall_per_point_s": r["wall_s"] / r["points"]})
            print(f"{name}: {r['wall_s']:.1f} s for {r['points']} points", flush=True)
    proc, ray_ = rows
    print(tabulate([[r["executor"], r["points"], r["worker_processes"], f"{r['wall_s']:.1f}", f"{r['sweep_s']:.1f}",
                     f"{r['wall_per_point_s']:.2f}", f"{r['point_s']:.2f}"] for r in rows],
                   headers=["executor", "points", "worker processes", "wall [s]", "executor loop [s]",
                            "wall per point [s]", "in worker per point [s]"]))
    print(f"workers={args.workers}; Ray / process wall time: {ray_['wall_s'] / proc['wall_s']:.3f} "
          f"(overhead per point {(ray_['wall_s'] - proc['wall_s']) / proc['points']:+.2f} s); "
          f"in-worker time per point: {ray_['point_s'] / proc['point_s']:.3f}")
    same = csvs["process"] == csvs["ray"]
    print(f"results.csv byte-identical across executors: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
