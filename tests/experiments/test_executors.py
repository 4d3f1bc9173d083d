"""Executors: the plug-in allow-list, and the Ray executor on a local two-CPU Ray cluster.

The Ray tests never connect to anything but a cluster they start on this
machine (``ray.init(address="local", num_cpus=2)``, no dashboard). They use the
cheap deterministic fake point of ``test_runner`` and compare every final
``results.csv`` byte for byte with a run of the process executor.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from importlib.metadata import EntryPoint

import pytest

from experiments.executors import (ENTRY_POINT_GROUP, ProcessExecutor, SerialExecutor, available_executors,
                                   make_executor)
from experiments.results import read_results
from experiments.runner import run_sweep
from tests.experiments.test_runner import NUM_POINTS, _cfg, fake_point


# ---------------------------------------------------------------- plug-ins: an allow-list, not arbitrary imports

class _CountingExecutor(SerialExecutor):
    instances: list = []

    def __init__(self, workers, torch_threads, max_retries, **options):
        self.workers = workers
        self.options = options
        _CountingExecutor.instances.append(self)


class _NotAnExecutor:
    def __init__(self, **kwargs):
        pass


_PLUGINS = [EntryPoint(name="counting", value=f"{__name__}:_CountingExecutor", group=ENTRY_POINT_GROUP),
            EntryPoint(name="broken", value=f"{__name__}:_NotAnExecutor", group=ENTRY_POINT_GROUP),
            EntryPoint(name="missing", value="no_such_module_xyz:Executor", group=ENTRY_POINT_GROUP),
            EntryPoint(name="process", value=f"{__name__}:_CountingExecutor", group=ENTRY_POINT_GROUP)]


@pytest.fixture
def plugins(monkeypatch):
    """Register test plug-ins in the entry-point group, as an installed package would."""
    import importlib.metadata

    real = importlib.metadata.entry_points

    def entry_points(**params):
        if params.get("group") == ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints(_PLUGINS)
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_a_registered_plugin_is_named_in_the_config(plugins, tmp_path):
    reference = run_sweep(_cfg(), fake_point, out_root=tmp_path / "ref", executor=SerialExecutor(),
                          progress=False, chain_model=None, make_outputs=False)
    assert {"counting", "process", "serial", "ray"} <= set(available_executors())
    ex = make_executor("counting", workers=3, address="x")
    assert isinstance(ex, _CountingExecutor) and ex.workers == 3 and ex.options == {"address": "x"}
    # a config may name the plug-in by its entry point's value as well
    cfg = _cfg(execution={"executor": f"{__name__}:_CountingExecutor", "workers": 5})
    out = run_sweep(cfg, fake_point, out_root=tmp_path, progress=False, chain_model=None, make_outputs=False)
    assert out.complete and _CountingExecutor.instances[-1].workers == 5
    assert (out.run_dir / "results.csv").read_bytes() == (reference.run_dir / "results.csv").read_bytes()
    # a plug-in cannot take a built-in's name
    assert isinstance(make_executor("process", workers=1), ProcessExecutor)


def test_unregistered_or_bad_plugins_are_refused(plugins, tmp_path):
    # importable, but nobody registered it: a config must not make the sweep import (or call) arbitrary code
    for kind in ("os:system", "tests.experiments.test_executors:_CountingExecutor_", "no_such_module:X", "dask"):
        with pytest.raises(ValueError, match=r"executor must be one of .*counting.*process.*ray.*serial.*"
                                             r"'distdiff\.executors' entry-point group"):
            make_executor(kind)
    with pytest.raises(ValueError, match="executor 'missing' .* cannot be imported"):
        make_executor("missing")
    with pytest.raises(ValueError, match="returned _NotAnExecutor, not an experiments.executors.Executor"):
        make_executor("broken")
    with pytest.raises(ValueError, match=r"executor 'serial' does not take the option\(s\) address"):
        make_executor("serial", address="auto")
    with pytest.raises(ValueError, match="executor must be one of"):
        run_sweep(_cfg(execution={"executor": "os:system"}), fake_point, out_root=tmp_path, progress=False,
                  chain_model=None)


def test_builtins_resolve_without_the_package_metadata(monkeypatch):
    """A source checkout that was never pip-installed has no entry points: the built-ins still resolve."""
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **params: importlib.metadata.EntryPoints([]))
    assert available_executors() == ["process", "ray", "serial"]
    assert isinstance(make_executor("serial"), SerialExecutor)
    ex = make_executor("process", workers=3, torch_threads=2, start_method="fork", max_retries=2)
    assert (ex.workers, ex.torch_threads, ex.start_method, ex.max_retries) == (3, 2, "fork", 2)


# ---------------------------------------------------------------- the Ray executor

def test_ray_executor_validates_its_options(monkeypatch):
    from experiments.ray_executor import RayExecutor

    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert RayExecutor().address == "ray://head:10001"                    # RAY_ADDRESS, when no address is given
    assert RayExecutor(address="auto").address == "auto"
    assert RayExecutor(torch_threads=3).resources_per_point == {"num_cpus": 3, "num_gpus": 0}
    for kwargs, message in [({"num_gpus": -1}, "num_gpus must be >= 0"), ({"num_cpus": 0}, "num_cpus must be > 0"),
                            ({"workers": 0}, "workers must be >= 1"), ({"runtime_env": "x"}, "runtime_env must be")]:
        with pytest.raises(ValueError, match=message):
            RayExecutor(**kwargs)
    monkeypatch.setitem(sys.modules, "ray", None)                        # Ray not installed
    with pytest.raises(ValueError, match=r"executor 'ray' needs Ray, which is not installed: pip install "
                                         r"\"distdiff\[cluster\]\""):
        make_executor("ray")


@pytest.fixture(scope="module")
def process_reference(tmp_path_factory):
    """The same sweep on the process executor (run before any Ray session exists in this process)."""
    out = tmp_path_factory.mktemp("process")
    outcome = run_sweep(_cfg(), fake_point, out_root=out, progress=False, chain_model=None, make_outputs=False,
                        executor=ProcessExecutor(workers=2, start_method="fork"))
    assert outcome.complete and outcome.num_failed == 0
    return outcome.run_dir / "results.csv"


def test_ray_worker_killed_mid_sweep_loses_nothing(process_reference, tmp_path, monkeypatch):
    """Point 1 kills its own worker (kill -9) once: Ray reruns it; nothing is lost or duplicated.

    No Ray session exists yet: the executor starts a local cluster (never a remote one) and stops it
    after the sweep; started from another directory, its workers still import the point function.
    """
    ray = pytest.importorskip("ray")
    from experiments.ray_executor import RayExecutor

    assert not ray.is_initialized()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.chdir(tmp_path)
    ex = RayExecutor(workers=2, max_retries=1, runtime_env={"env_vars": {"FAKE_KILL_ONCE_DIR": str(tmp_path)}})
    out = run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=ex, progress=False, chain_model=None,
                    make_outputs=False)
    assert (tmp_path / "killed").exists()                 # the worker really died
    assert out.complete and out.num_failed == 0
    assert (out.run_dir / "results.csv").read_bytes() == process_reference.read_bytes()
    assert "RayExecutor(address=local, nodes=1, cluster_cpus=2" in (out.run_dir / "environment.json").read_text()
    assert not ray.is_initialized()                       # the cluster it started is stopped


@pytest.fixture(scope="module")
def ray_cluster(process_reference):
    """A local two-CPU Ray cluster for this module (never a remote address)."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_sweep_resumes_and_matches_the_process_executor_row_for_row(ray_cluster, process_reference, tmp_path):
    # named in the config as a built-in (the entry point's value, which today's config schema accepts)
    cfg = _cfg(execution={"executor": "experiments.ray_executor:ray_executor", "workers": 2})
    first = run_sweep(cfg, fake_point, out_root=tmp_path, progress=False, chain_model=None, make_outputs=False,
                      limit=5)
    assert first.num_done == 5 and not first.complete
    second = run_sweep(cfg, fake_point, out_root=tmp_path, progress=False, chain_model=None, make_outputs=False)
    assert second.num_skipped == 5 and second.num_done == NUM_POINTS - 5 and second.complete
    assert (second.run_dir / "results.csv").read_bytes() == process_reference.read_bytes()
    env = (second.run_dir / "environment.json").read_text()
    assert "RayExecutor(address=existing session, nodes=1, cluster_cpus=2" in env
    # the points ran in Ray worker processes (one actor per slot), each reused for many points (per-process
    # caches such as the model are loaded once per worker): at most the cluster's two slots per sweep
    timings = read_results(second.run_dir / "timings.csv")
    first_pids = set(timings["worker_pid"][:5])
    second_pids = set(timings["worker_pid"][5:])
    assert len(timings) == NUM_POINTS and os.getpid() not in first_pids | second_pids
    assert 1 <= len(first_pids) <= 2 and 1 <= len(second_pids) <= 2, (first_pids, second_pids)


def _raise_on_odd(x):
    if x % 2:
        raise ValueError(f"odd {x}")
    return x * 10


def _always_dies(x):
    if x == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_ray_errors_are_point_errors(ray_cluster):
    from experiments.ray_executor import RayExecutor

    with RayExecutor(workers=2) as ex:
        out = sorted(((i, r, e and (e.kind, str(e))) for i, r, e in ex.imap_unordered(_raise_on_odd, range(4))),
                     key=lambda t: t[0])
    assert out == [(0, 0, None), (1, None, ("exception", "ValueError: odd 1")), (2, 20, None),
                   (3, None, ("exception", "ValueError: odd 3"))]
    # a point whose worker dies on every try: retried max_retries times, then recorded as a crash
    t0 = time.perf_counter()
    with RayExecutor(workers=2, max_retries=1) as ex:
        out = {i: (r, e) for i, r, e in ex.imap_unordered(_always_dies, range(3))}
    assert out[0] == (0, None) and out[2] == (2, None)
    assert out[1][0] is None and out[1][1].kind == "crash"
    assert str(out[1][1]).startswith("worker process died 2 times while running this point")
    assert time.perf_counter() - t0 < 60
    assert ray_cluster.is_initialized()                  # a session it did not start is left running


def _pid(x):
    return os.getpid()


def test_ray_runs_each_chunk_on_one_worker_in_order(ray_cluster):
    """imap_grouped's hint is kept: a chunk's points run in one worker process, one after the other (so what
    they share is computed once there), and the chunks spread over the cluster's two slots."""
    from experiments.ray_executor import RayExecutor

    chunks = [[(c, i) for i in range(4)] for c in range(5)]
    with RayExecutor(workers=2) as ex:
        out = [(item, pid) for item, pid, error in ex.imap_grouped(_pid, chunks) if error is None]
    assert sorted(item for item, _ in out) == sorted(item for chunk in chunks for item in chunk)
    for c in range(5):
        mine = [(item, pid) for item, pid in out if item[0] == c]
        assert [item for item, _ in mine] == chunks[c]                  # in order
        assert len({pid for _, pid in mine}) == 1                       # on one worker
    assert len({pid for _, pid in out}) == 2 and os.getpid() not in {pid for _, pid in out}


def test_link_sweep_on_ray_gives_the_serial_rows(ray_cluster, capsys):
    """`distdiff link --executor ray`: the points run as Ray tasks, slowest first; the rows equal a serial run's."""
    import json

    from experiments.cli import main

    argv = ["link", "--code", "none", "--modulation", "qpsk,16qam", "--snr-db", "0,4", "--num-bits", "4000",
            "--format", "json", "--no-progress"]
    assert main(argv + ["--executor", "serial"]) == 0
    serial = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(argv + ["--executor", "ray", "--workers", "2"]) == 0
    on_ray = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(serial) == 4 and on_ray == serial
    assert main(argv + ["--address", "auto"]) == 2
    assert capsys.readouterr().err.strip() == "distdiff: error: --address applies to --executor ray, not process"
    assert main(argv + ["--executor", "bogus"]) == 2
    assert "executor must be one of process, ray, serial" in capsys.readouterr().err
