"""Executors: where the points of a sweep run.

An executor takes a picklable function and a list of items and yields
``(item, result, error)`` triples as each item finishes, in completion order.
The sweep runner (:mod:`experiments.runner`) only sees this interface, so a
cluster engine (Dask, Ray, a Slurm array via submitit ...) plugs in as one more
subclass of :class:`Executor` without touching the runner.

- :class:`SerialExecutor`: in this process, one item after the other (debugging, tests).
- :class:`ProcessExecutor`: local worker processes (``concurrent.futures.ProcessPoolExecutor``),
  each with a fixed number of torch threads (1 by default: on a small machine
  two single-thread workers scale almost linearly, two threads in one process do not).
  A worker that dies (kill -9, segfault, out of memory) breaks the pool: the
  executor starts a fresh pool and retries the items that were in flight, each
  at most ``max_retries`` times; an exception raised by an item is returned as
  that item's error and the sweep goes on.
- :class:`experiments.ray_executor.RayExecutor`: Ray tasks on a local or remote Ray cluster
  (the optional extra ``distdiff[cluster]``).

Executors are named in a config (``execution: {executor: ray}``) and resolved by
:func:`make_executor` through an allow-list, never by importing whatever a config
names: the built-ins ``process``, ``serial`` and ``ray``, and the plug-ins that
installed packages register in the Python entry-point group ``distdiff.executors``
(:data:`ENTRY_POINT_GROUP`). A plug-in is a factory called with the keywords
``workers``, ``torch_threads`` and ``max_retries`` (plus the executor's own options,
when given) that returns an :class:`Executor`. A cluster engine is one small class
and one line of its package's ``pyproject.toml``::

    [project.entry-points."distdiff.executors"]
    dask = "mypackage.cluster:DaskExecutor"

    class DaskExecutor(Executor):
        def __init__(self, workers, torch_threads, max_retries):
            from dask.distributed import Client
            self.client = Client()
        def imap_unordered(self, fn, items):
            from dask.distributed import as_completed
            futures = {self.client.submit(fn, item, pure=False): item for item in items}
            for fut in as_completed(futures):
                try:
                    yield futures[fut], fut.result(), None
                except Exception as exc:
                    yield futures[fut], None, PointError("exception", repr(exc))

after which ``executor: dask`` works in every config. The value of a registered entry
point (``mypackage.cluster:DaskExecutor``) is accepted too, as the name of the same
plug-in; a ``module:factory`` that no installed package registers is refused.
:func:`available_executors` lists what a config may name.

Example
-------
>>> from experiments.executors import SerialExecutor
>>> [(i, r) for i, r, e in SerialExecutor().imap_unordered(abs, [-1, 2])]
[(-1, 1), (2, 2)]
>>> make_executor("process", workers=4).description
'ProcessExecutor(workers=4, torch_threads=1, start=spawn)'
>>> [name for name in available_executors() if name in BUILTIN_EXECUTORS]
['process', 'ray', 'serial']
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any


class PointError(RuntimeError):
    """An item failed: ``kind`` is 'exception' (raised in the item) or 'crash' (its worker died)."""

    def __init__(self, kind: str, message: str, details: str = ""):
        super().__init__(message)
        self.kind = kind
        self.details = details

    def __reduce__(self):  # picklable across processes (the default would call PointError(message))
        return (PointError, (self.kind, str(self), self.details))


class Executor(ABC):
    """Runs ``fn(item)`` for many items; yields ``(item, result, error)`` as they finish.

    Exactly one of ``result`` and ``error`` (a :class:`PointError`) is not None.
    """

    @abstractmethod
    def imap_unordered(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Any, PointError | None]]:
        ...

    def imap_grouped(self, fn: Callable[[Any], Any], chunks: Iterable[Iterable[Any]]) -> Iterator[tuple[Any, Any, PointError | None]]:
        """Like :meth:`imap_unordered` over the items of ``chunks``, with a scheduling hint: the items of one
        chunk share work (a sender state, a reference image memoised in the worker), so an executor that can
        should run them on one worker, one after the other. The default ignores the hint."""
        return self.imap_unordered(fn, [item for chunk in chunks for item in chunk])

    def close(self, cancel: bool = False) -> None:
        """Release resources; ``cancel=True`` drops items not yet started."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(cancel=exc_type is not None)

    @property
    def description(self) -> str:
        return type(self).__name__


class SerialExecutor(Executor):
    """Runs every item in the calling process, in order."""

    def imap_unordered(self, fn, items):
        for item in items:
            try:
                result = fn(item)
            except Exception as exc:  # noqa: BLE001 - one point's failure must not end the sweep
                yield item, None, PointError("exception", f"{type(exc).__name__}: {exc}", traceback.format_exc())
            else:
                yield item, result, None


def _watch_parent(interval_s: float = 1.0) -> None:
    """Exit this worker when its parent dies (kill -9 of the sweep must not leave workers behind)."""
    import threading
    import time

    parent = os.getppid()

    def watch():
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="distdiff-parent-watch", daemon=True).start()


def configure_worker(torch_threads: int) -> None:
    """Initialiser of a worker process: fix the number of CPU threads every library uses."""
    n = str(int(torch_threads))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = n
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Ctrl-C goes to the whole process group: let the parent alone handle it (it stops the workers)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent()
    from .cli import quiet_upstream  # pylint: disable=import-outside-toplevel

    quiet_upstream()  # the same narrow filters as the command line (upstream noise, once per worker)
    import torch

    torch.set_num_threads(int(torch_threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


def guarded_call(fn, item):
    """Runs in the worker: exceptions come back as a PointError (picklable) rather than a traceback."""
    try:
        return fn(item), None
    except Exception as exc:  # noqa: BLE001
        return None, PointError("exception", f"{type(exc).__name__}: {exc}", traceback.format_exc())


#: modules a ``forkserver`` start preloads once (``multiprocessing.set_forkserver_preload``): every worker forks
#: from a process that has already imported them instead of importing them itself (several seconds each)
FORKSERVER_PRELOAD = ("torch", "numpy", "sionna.phy", "phy", "latent_codec", "pipeline", "experiments.evaluate")


class _Lane:
    """One worker process (a one-process pool) with its own queue: the items of a chunk run there in order."""

    def __init__(self, new_pool):
        self.new_pool = new_pool
        self.pool = new_pool()
        self.queue: list = []             # a stack of the items still to submit (pop() gives them in order)
        self.in_flight: dict[Future, Any] = {}

    def restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self.new_pool()


class ProcessExecutor(Executor):
    """Local worker processes with ``torch_threads`` threads each.

    Each worker is a lane with its own queue; :meth:`imap_grouped` hands a whole chunk
    to one lane (the chunk's items run on that worker, consecutively) and a free lane
    takes the next chunk, so work is balanced and shared state stays in one worker.

    Parameters
    ----------
    workers : int
        Number of worker processes (>= 1).
    torch_threads : int
        torch (and OpenMP/BLAS) threads per worker (>= 1).
    start_method : str
        'spawn' (default: safe with torch's thread pools), 'forkserver' (workers fork from a
        server that preloaded :data:`FORKSERVER_PRELOAD`: no per-worker import time) or 'fork'.
    max_retries : int
        How many times an item whose worker died is retried in a fresh worker.
    """

    def __init__(self, workers: int = 2, torch_threads: int = 1, start_method: str = "spawn",
                 max_retries: int = 1, preload: tuple[str, ...] = FORKSERVER_PRELOAD):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1, got {torch_threads}")
        if start_method not in ("spawn", "forkserver", "fork"):
            raise ValueError(f"start_method must be one of spawn, forkserver, fork; got {start_method!r}")
        self.workers = int(workers)
        self.torch_threads = int(torch_threads)
        self.start_method = start_method
        self.max_retries = int(max_retries)
        self.preload = tuple(preload)
        self._lanes: list[_Lane] = []

    @property
    def description(self) -> str:
        return f"ProcessExecutor(workers={self.workers}, torch_threads={self.torch_threads}, start={self.start_method})"

    def _new_pool(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            ctx.set_forkserver_preload(list(self.preload))     # no effect once the server runs
        return ProcessPoolExecutor(max_workers=1, mp_context=ctx,
                                   initializer=configure_worker, initargs=(self.torch_threads,))

    def imap_unordered(self, fn, items):
        return self.imap_grouped(fn, [[item] for item in items])

    def imap_grouped(self, fn, chunks):
        chunks = [list(c) for c in chunks if c]
        chunks.reverse()                     # a stack: pop() gives the chunks in order
        attempts: dict[int, int] = {}
        self._lanes = [_Lane(self._new_pool) for _ in range(self.workers)]
        try:
            while True:
                for lane in self._lanes:
                    # at most 2 items per worker queued, so an interrupt loses little queued work
                    while len(lane.in_flight) < 2 and (lane.queue or chunks):
                        if not lane.queue:
                            lane.queue = chunks.pop()[::-1]
                        item = lane.queue.pop()
                        try:
                            fut = lane.pool.submit(guarded_call, fn, item)
                        except BrokenProcessPool:
                            lane.queue.append(item)
                            lane.restart()
                            break
                        lane.in_flight[fut] = item
                futures = [f for lane in self._lanes for f in lane.in_flight]
                if not futures:
                    if chunks or any(lane.queue for lane in self._lanes):
                        continue
                    return
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for lane in self._lanes:
                    broken = False
                    for fut in [f for f in lane.in_flight if f in done]:
                        item = lane.in_flight.pop(fut)
                        try:
                            result, error = fut.result()
                        except BrokenProcessPool:
                            lane.in_flight[fut] = item
                            broken = True
                            continue
                        yield item, result, error
                    if broken:
                        # every item in flight on this worker died with it; which one killed it is unknown
                        dead = list(lane.in_flight.values())
                        lane.in_flight.clear()
                        lane.restart()
                        for item in reversed(dead):
                            n = attempts[id(item)] = attempts.get(id(item), 0) + 1
                            if n > self.max_retries:
                                yield item, None, PointError(
                                    "crash", f"worker process died {n} times while running this point")
                            else:
                                lane.queue.append(item)
        finally:
            self.close(cancel=True)

    def close(self, cancel: bool = False) -> None:
        lanes, self._lanes = self._lanes, []
        for lane in lanes:
            pool = lane.pool
            if cancel:
                # terminate workers still computing: an interrupted sweep must stop now
                procs = list(getattr(pool, "_processes", {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for p in procs:
                    if p.is_alive():
                        p.terminate()
                for p in procs:
                    p.join(timeout=5)
            else:
                pool.shutdown(wait=True)


#: the entry-point group where installed packages register executor factories
ENTRY_POINT_GROUP = "distdiff.executors"

#: the built-in executors (also registered in the group by distdiff's own pyproject.toml;
#: listed here so that they work from a source checkout that was never pip-installed)
BUILTIN_EXECUTORS = {
    "process": "experiments.executors:process_executor",
    "ray": "experiments.ray_executor:ray_executor",
    "serial": "experiments.executors:serial_executor",
}


def process_executor(workers: int = 2, torch_threads: int = 1, max_retries: int = 1,
                     start_method: str = "spawn") -> ProcessExecutor:
    """Factory of the ``process`` entry point."""
    return ProcessExecutor(workers=workers, torch_threads=torch_threads, start_method=start_method,
                           max_retries=max_retries)


def serial_executor(workers: int = 1, torch_threads: int = 1, max_retries: int = 0) -> SerialExecutor:
    """Factory of the ``serial`` entry point (the execution settings do not apply in-process)."""
    return SerialExecutor()


def _registered() -> dict[str, Any]:
    """name -> entry point (or 'module:attr' string for a built-in) of every executor a config may name."""
    from importlib.metadata import EntryPoint, entry_points

    found: dict[str, Any] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    for name, value in BUILTIN_EXECUTORS.items():     # built-ins win over a plug-in of the same name
        found[name] = EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
    return found


def available_executors() -> list[str]:
    """The executor names a config may use: the built-ins and the installed plug-ins, sorted."""
    return sorted(_registered())


def check_executor(kind: str):
    """The entry point registered as ``kind`` (a name, or the ``module:attr`` value of a registered entry
    point), without importing it; an unknown name is a one-line ValueError listing the known ones.

    >>> check_executor("process").name
    'process'
    >>> check_executor("bogus")
    Traceback (most recent call last):
    ...
    ValueError: executor must be one of process, ray, serial (plug-ins register in the 'distdiff.executors' entry-point group), got 'bogus'
    """
    registered = _registered()
    ep = registered.get(kind)
    if ep is None and ":" in kind:
        ep = next((e for e in registered.values() if e.value.replace(" ", "") == kind), None)
    if ep is None:
        raise ValueError(f"executor must be one of {', '.join(sorted(registered))} (plug-ins register in the "
                         f"'{ENTRY_POINT_GROUP}' entry-point group), got {kind!r}")
    return ep


def _resolve(kind: str):
    """The factory registered as ``kind`` (see :func:`check_executor`), imported."""
    ep = check_executor(kind)
    try:
        return ep.load()
    except (ImportError, AttributeError) as err:
        raise ValueError(f"executor {kind!r} ({ep.value}) cannot be imported ({err})") from None


def make_executor(kind: str = "process", workers: int = 2, torch_threads: int = 1,
                  start_method: str = "spawn", max_retries: int = 1, **options) -> Executor:
    """An executor by its registered name: 'process' (local workers), 'serial' (in this process),
    'ray' (a Ray cluster) or a plug-in of the ``distdiff.executors`` entry-point group
    (see the module docstring).

    ``options`` are the executor's own keywords (for 'ray': ``address``, ``num_cpus``,
    ``num_gpus``, ``runtime_env``); ``start_method`` applies to 'process' only.
    """
    factory = _resolve(kind)
    kwargs = {"workers": workers, "torch_threads": torch_threads, "max_retries": max_retries, **options}
    if factory is process_executor:
        kwargs["start_method"] = start_method
    try:
        ex = factory(**kwargs)
    except TypeError as err:
        if options and "unexpected keyword" in str(err):
            raise ValueError(f"executor {kind!r} does not take the option(s) {', '.join(sorted(options))} "
                             f"({err})") from None
        raise
    if not isinstance(ex, Executor):
        raise ValueError(f"executor {kind!r} returned {type(ex).__name__}, not an experiments.executors.Executor")
    return ex


__all__ = ["Executor", "SerialExecutor", "ProcessExecutor", "PointError", "make_executor", "available_executors",
           "check_executor",
           "configure_worker", "guarded_call", "ENTRY_POINT_GROUP", "BUILTIN_EXECUTORS", "FORKSERVER_PRELOAD"]
