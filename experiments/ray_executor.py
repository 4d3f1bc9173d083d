"""The Ray executor: the points of a sweep run on Ray actors, on one machine or a cluster.

:class:`RayExecutor` has the semantics of :class:`experiments.executors.ProcessExecutor`:
the driver (the ``distdiff`` process) is the only writer of ``results.csv`` and
appends each point as it finishes; an exception raised by a point comes back
as that point's error (the sweep goes on, a rerun retries it); a point whose
worker dies (kill -9, out of memory, a lost node) is retried up to
``max_retries`` times by Ray in a restarted worker, then recorded as a ``crash``. Resume, ordering and
the byte-identical final CSV are the runner's, so they hold unchanged.

Where it runs: ``address`` (``"auto"``: the cluster this machine belongs to,
``"ray://head:10001"``: a remote one), else the ``RAY_ADDRESS`` environment
variable, else a local cluster of ``workers * num_cpus`` CPUs started for the
sweep (and stopped after it). A Ray session already started in this process
(``ray.init`` before the sweep) is used as it is and left running.

Scheduling: each slot of the cluster (``num_cpus`` CPUs, default
``torch_threads``, and ``num_gpus`` GPUs, default 0; a fraction such as 0.5
shares a GPU between two points) is one Ray actor, a worker process kept for the
whole sweep. The runner groups the points that share work (one seed's points
share its sender state, references and images generated alone, memoised in the
worker) into chunks (:meth:`~experiments.executors.Executor.imap_grouped`); a
free actor takes the next chunk and runs its points one after the other, as the
process executor's workers do. What a point function caches per process, the
model (:func:`experiments.evaluate.get_pipeline`) and the MI tables
(``functools.lru_cache``), is loaded once per actor, not once per point.

At most two points per actor are queued at a time, so an interrupted sweep
loses little queued work; ``close(cancel=True)`` (Ctrl-C) kills the actors,
and with them the points in flight.

Ray is an optional dependency: ``pip install "distdiff[cluster]"``.

Example
-------
>>> ex = RayExecutor(workers=4, torch_threads=2, num_gpus=0.5)     # connects lazily: nothing starts yet
>>> ex.resources_per_point
{'num_cpus': 2, 'num_gpus': 0.5}
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from .executors import Executor, PointError, guarded_call

#: keywords of ``ray.init`` for the local cluster a sweep starts when it is given no address
LOCAL_INIT = {"include_dashboard": False, "log_to_driver": True}

_WORKER_THREADS: list[int] = []     # the torch threads this worker process was set to (per-process memo)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ValueError("executor 'ray' needs Ray, which is not installed: pip install \"distdiff[cluster]\" "
                         "(or pip install \"ray>=2.40\")") from None
    return ray


def _run_point(fn: Callable[[Any], Any], item: Any, torch_threads: int):
    """Runs in a Ray worker: sets the torch threads once per process, then runs the point (errors returned)."""
    if _WORKER_THREADS != [torch_threads]:
        import torch

        torch.set_num_threads(int(torch_threads))
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:   # already set in this process
            pass
        _WORKER_THREADS[:] = [torch_threads]
        from .cli import quiet_upstream  # pylint: disable=import-outside-toplevel

        quiet_upstream()  # the command line's narrow filters of upstream noise, once per worker
    return guarded_call(fn, item)


class _PointActor:
    """One slot of the cluster: a worker process that runs points one after the other (a Ray actor)."""

    def run(self, fn: Callable[[Any], Any], item: Any, torch_threads: int):
        return _run_point(fn, item, torch_threads)


class RayExecutor(Executor):
    """Points on Ray actors, a chunk of points per actor (see the module docstring).

    Parameters
    ----------
    workers : int
        Points running at once on the local cluster this executor starts (it gets
        ``workers * num_cpus`` CPUs). On an existing cluster (``address``,
        ``RAY_ADDRESS`` or an earlier ``ray.init``) every free slot of the cluster is used.
    torch_threads : int
        torch threads per point (>= 1); also the default ``num_cpus``.
    max_retries : int
        How many times Ray reruns a point whose worker died, before it is recorded as a crash.
    address : str, optional
        Ray cluster address (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); default
        ``RAY_ADDRESS``, else a local cluster.
    num_cpus, num_gpus : float, optional
        Resources of one point (default ``torch_threads`` CPUs, no GPU).
    runtime_env : dict, optional
        Ray runtime environment of the actors (``working_dir``, ``env_vars``, ``pip`` ...),
        for clusters whose nodes do not share this checkout.
    """

    def __init__(self, workers: int = 2, torch_threads: int = 1, max_retries: int = 1,
                 address: str | None = None, num_cpus: float | None = None, num_gpus: float = 0,
                 runtime_env: dict | None = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {torch_threads}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if num_cpus is not None and not num_cpus > 0:
            raise ValueError(f"num_cpus must be > 0, got {num_cpus}")
        if not num_gpus >= 0:
            raise ValueError(f"num_gpus must be >= 0, got {num_gpus}")
        if runtime_env is not None and not isinstance(runtime_env, dict):
            raise ValueError(f"runtime_env must be a mapping, got {type(runtime_env).__name__}")
        self.workers = int(workers)
        self.torch_threads = int(torch_threads)
        self.max_retries = int(max_retries)
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.num_cpus = num_cpus if num_cpus is not None else self.torch_threads
        self.num_gpus = num_gpus
        self.runtime_env = runtime_env
        self._started = False          # True when this executor started the Ray session (so it stops it)
        self._in_flight: dict = {}
        self._actors: list = []

    @property
    def resources_per_point(self) -> dict:
        """``{'num_cpus': ..., 'num_gpus': ...}`` of one slot (an actor, which runs one point at a time)."""
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}

    def _connect(self):
        ray = _import_ray()
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, include_dashboard=False)
            else:
                # GPUs: Ray detects the machine's own (a point asking for more than there are is refused in _slots).
                # The workers import the point function from where this process does (its sys.path), not
                # only from the current directory, so a sweep started from any directory works.
                from ray.job_config import JobConfig

                path = [p for p in dict.fromkeys(os.path.abspath(p or ".") for p in sys.path) if os.path.isdir(p)]
                ray.init(address="local", num_cpus=max(1, int(round(self.workers * self.num_cpus))),
                         job_config=JobConfig(code_search_path=path), **LOCAL_INIT)
            self._started = True
        return ray

    def _slots(self, ray) -> int:
        """How many points the cluster can run at once."""
        total = ray.cluster_resources()
        slots = int(total.get("CPU", 0) // self.num_cpus) if self.num_cpus else 10**6
        if self.num_gpus:
            slots = min(slots, int(total.get("GPU", 0) // self.num_gpus))
        if slots < 1:
            raise ValueError(f"the Ray cluster has {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs; "
                             f"one point needs num_cpus={self.num_cpus:g}, num_gpus={self.num_gpus:g}")
        return slots

    @property
    def description(self) -> str:
        ray = self._connect()
        total = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        where = self.address or ("local" if self._started else "existing session")
        return (f"RayExecutor(address={where}, nodes={nodes}, cluster_cpus={total.get('CPU', 0):g}, "
                f"cluster_gpus={total.get('GPU', 0):g}, slots={self._slots(ray)}, num_cpus={self.num_cpus:g}, "
                f"num_gpus={self.num_gpus:g}, torch_threads={self.torch_threads}, max_retries={self.max_retries})")

    def imap_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]):
        return self.imap_grouped(fn, [[item] for item in items])

    def imap_grouped(self, fn: Callable[[Any], Any], chunks: Iterable[Iterable[Any]]):
        """Each slot of the cluster is a Ray actor (one worker process); a free actor takes the next chunk
        and runs its points one after the other, so what a chunk shares (the sender state, the
        references, memoised in the worker process) is computed once, as on the process executor."""
        ray = self._connect()
        options = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "max_restarts": -1,
                   "max_task_retries": self.max_retries}
        if self.runtime_env:
            options["runtime_env"] = self.runtime_env
        actor_class = ray.remote(**options)(_PointActor)
        fn_ref = ray.put(fn)           # shipped once, not once per point
        pending = [list(c) for c in chunks if c][::-1]     # a stack: pop() gives the chunks in order
        if not pending:
            return
        self._actors = [actor_class.remote() for _ in range(min(self._slots(ray), len(pending)))]
        queues: list[list] = [[] for _ in self._actors]   # per actor, a stack of its chunk's items still to send
        busy = [0] * len(self._actors)                     # per actor, its points in flight
        in_flight = self._in_flight                        # ObjectRef -> (actor index, item)
        try:
            while True:
                for a, actor in enumerate(self._actors):
                    # at most 2 points queued per actor, so an interrupted sweep loses little queued work
                    while busy[a] < 2 and (queues[a] or pending):
                        if not queues[a]:
                            queues[a] = pending.pop()[::-1]
                        item = queues[a].pop()
                        in_flight[actor.run.remote(fn_ref, item, self.torch_threads)] = (a, item)
                        busy[a] += 1
                if not in_flight:
                    return
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    a, item = in_flight.pop(ref)
                    busy[a] -= 1
                    try:
                        result, error = ray.get(ref)
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                            ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError,
                            ray.exceptions.OutOfMemoryError) as exc:
                        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        result, error = None, PointError(
                            "crash", f"worker process died {self.max_retries + 1} times while running this point "
                                     f"({type(exc).__name__}: {first})", traceback.format_exc())
                    except ray.exceptions.RayError as exc:   # e.g. the point's arguments could not be unpickled
                        result, error = None, PointError("exception", f"{type(exc).__name__}: {exc}",
                                                         traceback.format_exc())
                    yield item, result, error
        finally:
            self.close(cancel=True)

    def close(self, cancel: bool = False) -> None:
        try:
            import ray
        except ImportError:
            return
        actors, self._actors = self._actors, []
        if ray.is_initialized():
            # the actors' worker processes end with them; killing them also stops the points in flight
            for actor in actors:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already dead
                    pass
        self._in_flight.clear()
        if self._started and ray.is_initialized():
            ray.shutdown()
            self._started = False


def ray_executor(workers: int = 2, torch_threads: int = 1, max_retries: int = 1, **options) -> RayExecutor:
    """Factory of the ``ray`` entry point (``execution.executor: ray``); options as :class:`RayExecutor`."""
    _import_ray()      # fail before the sweep starts when Ray is not installed
    return RayExecutor(workers=workers, torch_threads=torch_threads, max_retries=max_retries, **options)


__all__ = ["RayExecutor", "ray_executor"]
