"""The resumable sweep runner: points -> executor -> durable results -> plots and report.

:func:`run_sweep` expands a config into points (:mod:`experiments.grid`), skips
those already in the run directory's ``results.csv``, runs the rest on an
executor (:mod:`experiments.executors`) with a progress bar and ETA, and writes
each point's rows the moment it finishes (:mod:`experiments.results`). When all
points are done it sorts the CSV and writes the plots and ``report.md``.

The work of one point is a plain function ``point_fn(point) -> PointResult``;
the default, :func:`experiments.evaluate.evaluate_point`, runs the
collaborative chain of :mod:`pipeline`. Any picklable function with that
signature works (the tests use a cheap fake one).

Example
-------
>>> from experiments.config import load_config
>>> from experiments.runner import run_sweep
>>> cfg = load_config("default", overrides=["model=tiny-random", "seeds=[0]", "grid.snr_db=[10]"])
>>> outcome = run_sweep(cfg, out_root="/tmp/distdiff-results")    # doctest: +SKIP
>>> outcome.run_dir, outcome.num_done                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .config import ExperimentConfig
from .configtools import check_plain_name
from .evaluate import evaluate_point
from .executors import Executor, PointError, make_executor
from .grid import Point, PointResult, expand_grid, plan_chunks, resolved_columns
from .results import ResultsStore, append_csv_row, environment_info, save_png


#: a sweep stops when its first this-many finished points all failed with one identical error
FAIL_FAST_POINTS = 3


@dataclass
class SweepOutcome:
    """Summary of one :func:`run_sweep` call."""

    run_dir: Path
    num_points: int
    num_skipped: int = 0
    num_done: int = 0
    num_failed: int = 0
    interrupted: bool = False
    wall_s: float = 0.0
    failures: list[tuple[int, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.num_skipped + self.num_done == self.num_points


def run_dir_for(cfg: ExperimentConfig, out_root: str | Path = "results", run_id: str | None = None) -> Path:
    """``<out_root>/<experiment>/<run-id>``; the run id defaults to the config's hash, so a rerun resumes.

    ``run_id`` must be a plain name (no path separators, no ``..``): the run stays under ``out_root``.
    """
    if run_id is not None:
        check_plain_name(run_id, "--run-id")
    return Path(out_root) / check_plain_name(cfg.name, "name") / (run_id or cfg.config_hash())


class RunIdentityError(ValueError):
    """The run directory holds the results of another configuration (one line naming ``--run-id``)."""


def check_run_identity(cfg: ExperimentConfig, run_dir: Path, points: list[Point]) -> None:
    """Refuse to write into a run directory that belongs to another resolved configuration.

    A run directory belongs to one configuration (its :meth:`ExperimentConfig.config_hash`,
    recorded in ``config.yaml``). Without ``config.yaml``, every finished point in
    ``results.csv`` must be a point of this grid.
    """
    run_dir = Path(run_dir)
    mine = cfg.config_hash()
    config_path = run_dir / "config.yaml"
    theirs = None
    if config_path.is_file():
        try:
            theirs = ((yaml.safe_load(config_path.read_text()) or {}).get("run") or {}).get("config_hash")
        except (yaml.YAMLError, OSError, UnicodeDecodeError, AttributeError):
            theirs = "unreadable"
    if theirs is not None and theirs != mine:
        raise RunIdentityError(
            f"run directory {run_dir} holds another configuration (config hash {theirs}, this one is {mine}); "
            f"nothing was written. Give another --run-id, or leave --run-id out to run in "
            f"{run_dir.parent / mine}")
    csv_path = run_dir / "results.csv"
    if theirs is None and csv_path.is_file():
        foreign = ResultsStore(csv_path, repair=False).completed_keys() - {p.key for p in points}
        if foreign:
            raise RunIdentityError(
                f"run directory {run_dir} holds {len(foreign)} point(s) of another configuration and no "
                f"config.yaml; nothing was written. Give another --run-id")


#: the workers' shared adaptive-MCS probes (phy.probe_store): ``<run dir>/.probes``, removed when the sweep completes
PROBE_FOLDER = ".probes"
#: = ``phy.probe_store.PROBE_STORE_ENV`` (tested), spelled here so that the driver never imports torch
PROBE_STORE_ENV = "DISTDIFF_PROBE_STORE"


def _timed_call(fn_and_point):
    from .evaluate import unet_calls

    fn, point = fn_and_point
    t0, calls0 = time.perf_counter(), unet_calls()
    result = fn(point)
    return result, time.perf_counter() - t0, os.getpid(), unet_calls() - calls0


class _Job:
    """Picklable wrapper: (point function, point) -> (PointResult, wall_s, pid, unet_calls).

    ``probe_store``: the folder through which the workers share their adaptive-MCS probes
    (:mod:`phy.probe_store`); in the process's environment while the point runs, and only then (a
    serial sweep runs in the caller's process, whose later links must not write into a finished run).
    """

    def __init__(self, fn, probe_store: str | None = None):
        self.fn = fn
        self.probe_store = probe_store

    def __call__(self, point):
        if not self.probe_store:
            return _timed_call((self.fn, point))
        before = os.environ.get(PROBE_STORE_ENV)
        os.environ[PROBE_STORE_ENV] = self.probe_store
        try:
            return _timed_call((self.fn, point))
        finally:
            if before is None:
                os.environ.pop(PROBE_STORE_ENV, None)
            else:
                os.environ[PROBE_STORE_ENV] = before


def write_run_metadata(cfg: ExperimentConfig, run_dir: Path, points: list[Point], executor: Executor,
                       point_threads: int | None = None) -> None:
    """``config.yaml`` (resolved config and the resolved chain of every point) and ``environment.json``.

    ``point_threads``: the torch threads each point computes with, when the point
    function pins them (:func:`experiments.evaluate.evaluate_point` does: 1).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = cfg.model_dump(mode="json")
    resolved["run"] = {"config_hash": cfg.config_hash(), "num_points": len(points)}
    resolved["points"] = [{"index": p.index, "key": p.key, "seed": p.seed, "params": p.params,
                           "chain": p.extra.get("chain_resolved", p.chain)} for p in points]
    (run_dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False, width=120))
    env = environment_info(device=cfg.device, torch_threads=cfg.execution.torch_threads, seeds=cfg.seeds,
                           executor=executor.description, point_threads=point_threads)
    (run_dir / "environment.json").write_text(json.dumps(env, indent=2) + "\n")


def _store_point(store: ResultsStore, run_dir: Path, point: Point, result: PointResult) -> None:
    if point.save_images:
        for name, image in result.images.items():
            save_png(run_dir / "images" / point.key / f"{name}.png", image)
    rows = []
    for r in result.rows:
        row = {"point_index": point.index, "seed": point.seed, **point.params}
        row.update({k: v for k, v in resolved_columns(point).items() if k not in row})
        row.update(r)
        rows.append(row)
    store.append_point(point.key, rows)      # last: a point is done once its rows are durable


def run_sweep(cfg: ExperimentConfig, point_fn: Callable[[Point], PointResult] | None = None,
              out_root: str | Path = "results", run_id: str | None = None, executor: Executor | None = None,
              progress: bool = True, limit: int | None = None, make_outputs: bool = True,
              chain_model="auto") -> SweepOutcome:
    """Run (or resume) every point of ``cfg``.

    Parameters
    ----------
    cfg : ExperimentConfig
        The validated experiment.
    point_fn : callable, optional
        ``point_fn(point) -> PointResult`` (picklable for process executors);
        default :func:`experiments.evaluate.evaluate_point`.
    out_root, run_id : see :func:`run_dir_for`.
    executor : Executor, optional
        Default: from ``cfg.execution`` (local worker processes).
    progress : bool
        Show a tqdm progress bar with ETA (on stderr).
    limit : int, optional
        Run at most this many of the remaining points (a partial sweep; rerun to continue).
    make_outputs : bool
        Write plots, image grid and report once every point is done.

    Returns
    -------
    SweepOutcome
        Counts of skipped (already done), newly done and failed points. Ctrl-C
        stops the workers, keeps every finished point and returns with
        ``interrupted=True``.
    """
    if point_fn is None:
        point_fn = evaluate_point
    run_dir = run_dir_for(cfg, out_root, run_id)
    points = expand_grid(cfg, chain_model=chain_model)
    check_run_identity(cfg, run_dir, points)
    ex = cfg.execution
    executor = executor or make_executor(ex.executor, workers=ex.workers, torch_threads=ex.torch_threads,
                                         start_method=ex.start_method, max_retries=ex.max_retries,
                                         **ex.options)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = _lock_run_dir(run_dir)
    except OSError as exc:
        raise ValueError(f"--out: cannot create the run directory {run_dir}: {exc.strerror}") from None
    try:
        check_run_identity(cfg, run_dir, points)       # again, under the lock
        return _run_locked(cfg, point_fn, points, run_dir, executor, progress, limit, make_outputs)
    except OSError as exc:
        if exc.filename is None:
            raise
        raise ValueError(f"cannot write results in {run_dir}: {exc.strerror} ({exc.filename}); every finished "
                         f"point is saved, fix the folder and rerun the same command to resume") from None
    finally:
        lock.close()


def _lock_run_dir(run_dir: Path):
    """An exclusive lock on the run directory (released by the OS even after kill -9)."""
    import fcntl

    f = open(run_dir / ".lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise ValueError(f"run directory {run_dir} is in use by another sweep (pid {holder}); wait for it to "
                         f"finish, or give another --run-id") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def _run_locked(cfg, point_fn, points, run_dir, executor, progress, limit, make_outputs) -> SweepOutcome:
    write_run_metadata(cfg, run_dir, points, executor, point_threads=getattr(point_fn, "torch_threads", None))
    store = ResultsStore(run_dir / "results.csv")
    done = store.completed_keys()
    todo = [p for p in points if p.key not in done]
    outcome = SweepOutcome(run_dir=run_dir, num_points=len(points), num_skipped=len(points) - len(todo))
    if limit is not None:
        todo = todo[:limit]
    t0 = time.perf_counter()
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"{cfg.name}", unit="pt", file=sys.stderr, dynamic_ncols=True)
    # points that share a sender state run together on one worker (nothing recomputed), biggest groups first
    chunks = plan_chunks(todo, getattr(executor, "workers", 1))
    results = executor.imap_grouped(_Job(point_fn, str(run_dir / PROBE_FOLDER)), chunks)
    fatal = None
    try:
        for point, result, error in results:
            if error is None:
                point_result, wall_s, pid, calls = result
                _store_point(store, run_dir, point, point_result)
                append_csv_row(run_dir / "timings.csv", {"point_index": point.index, "point_key": point.key,
                                                          "wall_s": round(wall_s, 4), "worker_pid": pid,
                                                          "unet_calls": calls})
                outcome.num_done += 1
            else:
                outcome.num_failed += 1
                outcome.failures.append((point.index, str(error)))
                same = {msg for _, msg in outcome.failures}
                if outcome.num_done == 0 and len(same) == 1 and \
                        outcome.num_failed >= min(FAIL_FAST_POINTS, len(todo)):
                    fatal = str(error)
                append_csv_row(run_dir / "failures.csv", {
                    "point_index": point.index, "point_key": point.key, "kind": error.kind,
                    "error": str(error), "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
                one_line = " | ".join(line.strip() for line in str(error).splitlines() if line.strip())
                message = f"point {point.index} failed ({error.kind}): {one_line}"
                if bar is not None:
                    bar.write(message)
                else:
                    print(message, file=sys.stderr)
                if fatal is not None:
                    raise ValueError(f"the first {outcome.num_failed} points all failed with the same error, so the "
                                     f"sweep stops (see {run_dir / 'failures.csv'}): {one_line}")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=outcome.num_failed, refresh=False)
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        results.close()
        executor.close(cancel=True)
        if bar is not None:
            bar.close()
    outcome.wall_s = time.perf_counter() - t0
    if outcome.complete:
        store.finalize({p.key: p.index for p in points})      # sorts; never drops a row
        shutil.rmtree(run_dir / PROBE_FOLDER, ignore_errors=True)   # the shared probes served their sweep
        if make_outputs:
            from .report import write_outputs

            write_outputs(run_dir, cfg=cfg)
    return outcome


__all__ = ["PointResult", "SweepOutcome", "RunIdentityError", "run_sweep", "run_dir_for", "check_run_identity",
           "write_run_metadata", "PointError"]
