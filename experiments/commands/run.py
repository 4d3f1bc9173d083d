"""``distdiff run [CONFIG]``: run an experiment (default: the project's main job, ``default.yaml``).

With no argument it runs ``experiments/configs/default.yaml`` on the shipped
model: a group of users with similar prompts shares the first denoising steps
at the edge, the intermediate state crosses a TDL mobile channel at a sweep of
SNRs with adaptive MCS, and each user finishes locally. It prints the headline
numbers and writes ``results/<experiment>/<run-id>/`` (CSV, plots, images,
report). Rerunning the same command resumes and skips finished points.

Example
-------
``distdiff run``  ·  ``distdiff run fig3_bit_errors --workers 2``  ·
``distdiff run --set seeds=[0] --set grid.snr_db=[0,20]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys

NAME = "run"
HELP = "run an experiment config (default: the main job, experiments/configs/default.yaml)"


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``sweep``."""
    p.add_argument("--out", default="results", metavar="ROOT",
                   help="results root; the run goes to ROOT/<experiment>/<run-id> (default: results)")
    p.add_argument("--run-id", default=None, help="run id (default: a hash of the config, so a rerun resumes)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted path, YAML value), e.g. --set grid.snr_db=[0,10]; repeatable")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: the config's execution.workers)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per worker outside the points (default: the config's, 1); every point "
                        "computes with one thread, so results never depend on this")
    p.add_argument("--serial", action="store_true", help="run every point in this process (debugging)")
    p.add_argument("--executor", default=None, metavar="NAME",
                   help="process, serial, ray, or a registered plug-in (default: the config's execution.executor)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address for --executor ray ('auto': the cluster this node belongs to, "
                        "'ray://HOST:10001'; default: RAY_ADDRESS, else a local cluster)")
    p.add_argument("--limit", type=int, default=None, help="run at most N of the remaining points, then stop")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--max-points", type=int, default=None, metavar="N",
                   help="refuse a grid of more than N points (combinations x seeds; default: the config's "
                        "execution.max_points, 10000)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the config and list the points (how many are done), run nothing")


def _dry_run(cfg, args) -> int:
    """List the points lazily (first lines at once, even for a large grid); done points are marked."""
    from experiments.grid import count_points, iter_points
    from experiments.results import ResultsStore
    from experiments.runner import run_dir_for

    csv_path = run_dir_for(cfg, args.out, args.run_id) / "results.csv"
    done = ResultsStore(csv_path, repair=False).completed_keys() if csv_path.is_file() else set()
    n_done = 0
    for p in iter_points(cfg):
        params = ", ".join(f"{k}={v}" for k, v in p.params.items())
        n_done += p.key in done
        print(f"  point {p.index:4d} {p.key} seed={p.seed} {params}{'  [done]' if p.key in done else ''}")
    print(f"{count_points(cfg)} points, {n_done} done")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0])
    p.add_argument("config", nargs="?", default=None,
                   help="a config file, or the name of a shipped config (default: default)")
    add_common_arguments(p)
    return p


def execute(args) -> int:
    """Load, validate and run the config named in ``args``; print a summary. Exit code 0/1/130."""
    from experiments.config import load_config
    from experiments.configtools import check_output_folder, check_plain_name
    from experiments.report import DEFAULT_HEADLINE, key_findings
    from experiments.plots import axis_columns, metric_columns
    from experiments.results import read_results
    from experiments.runner import run_sweep

    overrides = list(args.overrides)
    if args.workers is not None:
        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        overrides.append(f"execution.workers={args.workers}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        overrides.append(f"execution.torch_threads={args.threads}")
    if args.serial and args.executor not in (None, "serial"):
        raise ValueError(f"--serial and --executor {args.executor} contradict each other; give one")
    if args.serial:
        overrides.append("execution.executor=serial")
    if args.executor is not None:
        overrides.append(f"execution.executor={args.executor}")
    if args.address is not None:
        overrides.append(f"execution.options.address={json.dumps(args.address)}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    if args.max_points is not None:
        if args.max_points < 1:
            raise ValueError(f"--max-points must be >= 1, got {args.max_points}")
        overrides.append(f"execution.max_points={args.max_points}")
    if args.run_id is not None:
        check_plain_name(args.run_id, "--run-id")
    check_output_folder(args.out)
    cfg = load_config(args.config, overrides=overrides)
    from ..executors import check_executor  # pylint: disable=import-outside-toplevel

    check_executor(cfg.execution.executor)  # an unknown executor is an error before --dry-run, not after it
    try:
        print(f"distdiff {args.command if hasattr(args, 'command') else NAME}: experiment '{cfg.name}' -> "
              f"{args.out}/{cfg.name}/{args.run_id or cfg.config_hash()}", flush=True)
        if args.dry_run:
            return _dry_run(cfg, args)
    except BrokenPipeError:                 # `distdiff run --dry-run | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    outcome = run_sweep(cfg, out_root=args.out, run_id=args.run_id, progress=not args.no_progress,
                        limit=args.limit)
    print(f"points: {outcome.num_points} total, {outcome.num_skipped} already done, {outcome.num_done} run now, "
          f"{outcome.num_failed} failed ({outcome.wall_s:.1f} s)")
    if outcome.interrupted:
        print("interrupted: every finished point is saved; rerun the same command to resume", file=sys.stderr)
        return 130
    csv_path = outcome.run_dir / "results.csv"
    if csv_path.exists():
        df = read_results(csv_path)
        findings = key_findings(df, axis_columns(df, list(cfg.grid)), metric_columns(df, cfg.headline or DEFAULT_HEADLINE))
        if findings:
            print("\n".join(findings))
    if outcome.complete:
        print(f"report: {outcome.run_dir / 'report.md'}")
        return 0
    if outcome.num_failed:
        print(f"{outcome.num_failed} point(s) failed (see {outcome.run_dir / 'failures.csv'}); "
              f"rerun the same command to retry them", file=sys.stderr)
        return 1
    print("partial run (--limit): rerun the same command to continue")
    return 0


def run(args) -> int:
    return execute(args)
