"""The sweep runner: durable results, resume after every kind of interruption, parallel workers.

A cheap deterministic fake point function stands in for the diffusion chain
(the runner must not care what a point computes). "Interrupted" runs are
compared with an uninterrupted run of the same config: the final results.csv
must be byte-identical.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from experiments.config import parse_config
from experiments.executors import ProcessExecutor, SerialExecutor
from experiments.results import ResultsStore, read_results
from experiments.runner import PointResult, run_sweep

RAW = {
    "name": "fake",
    "seeds": [0, 1],
    "users": [{"shared_prompt": "a red apple on a wooden table",
               "receiver_prompts": ["a yellow lemon on a wooden table", "an orange orange on a wooden table"]}],
    "chain": {"base": 1},
    "grid": {"snr_db": [0, 5, 10], "variant": ["a", "b"]},
    "variants": {"a": {"gain": 1.0}, "b": {"gain": 2.0}},
}
NUM_POINTS = 3 * 2 * 2


_CALLS: list[int] = []


def fake_point(point) -> PointResult:
    """Deterministic in the point's parameters and seed; misbehaves on request (env vars)."""
    calls = os.environ.get("FAKE_CALL_LOG")
    if calls:
        with open(calls, "a") as f:
            f.write(f"{point.index}\n")
    if os.environ.get("FAKE_RAISE_AT") == str(point.index):
        raise ValueError(f"injected failure at point {point.index}")
    kill_dir = os.environ.get("FAKE_KILL_ONCE_DIR")
    if kill_dir and point.index == 1:
        marker = Path(kill_dir) / "killed"
        if not marker.exists():
            marker.write_text("1")
            os.kill(os.getpid(), signal.SIGKILL)
    delay = float(os.environ.get("FAKE_DELAY_S", "0"))
    if delay:
        time.sleep(delay)
    slow_after = os.environ.get("FAKE_SLOW_AFTER")    # this process's first N points are quick, then it stalls
    if slow_after is not None:
        _CALLS.append(point.index)
        if len(_CALLS) > int(slow_after):
            time.sleep(120)
    rng = np.random.default_rng([point.seed, int(point.key[:8], 16)])
    gain = point.chain.get("gain", 1.0)
    rows, images = [], {}
    for u, prompt in enumerate(point.groups[0]["receiver_prompts"]):
        row = {"user": u, "receiver_prompt": prompt,
               "psnr_db": gain * (10.0 + point.params["snr_db"]) + rng.normal(),
               "ssim": float(rng.uniform()), "adherent": bool(rng.uniform() < 0.5),
               "airtime_s": 1e-3 * gain, "compute_saved_fraction": 0.25}
        if point.params["variant"] == "b":
            row["mcs_index"] = 7          # a column only some points have
        rows.append(row)
        images[f"g0_u{u}"] = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        images[f"g0_u{u}_ref"] = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return PointResult(rows, images)


def _cfg(**extra):
    return parse_config({**RAW, **extra}, chain_model=None)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted serial run: its results.csv is the truth every resumed run must reproduce."""
    out = tmp_path_factory.mktemp("ref")
    outcome = run_sweep(_cfg(), fake_point, out_root=out, executor=SerialExecutor(), progress=False,
                        chain_model=None)
    assert outcome.complete and outcome.num_done == NUM_POINTS and outcome.num_failed == 0
    return outcome.run_dir


def test_uninterrupted_run_layout(reference):
    df = read_results(reference / "results.csv")
    assert len(df) == NUM_POINTS * 2                      # point x user (x seed: seeds are points)
    assert list(df.columns[:4]) == ["point_index", "point_key", "point_rows", "seed"]
    assert df["point_index"].is_monotonic_increasing
    assert set(df["snr_db"]) == {0, 5, 10} and set(df["variant"]) == {"a", "b"}
    assert df.loc[df["variant"] == "a", "mcs_index"].isna().all()
    assert (df.loc[df["variant"] == "b", "mcs_index"] == 7).all()
    for name in ("config.yaml", "environment.json", "timings.csv", "report.md", "image_grid.png"):
        assert (reference / name).is_file(), name
    assert len(list((reference / "plots").glob("*.png"))) >= 3
    assert len(list((reference / "images").iterdir())) == NUM_POINTS
    report = (reference / "report.md").read_text()
    assert "psnr_db" in report and "plots/psnr_db__snr_db.png" in report


def test_run_id_is_the_config_hash_and_ignores_execution_settings(reference):
    assert reference.name == _cfg().config_hash()
    assert _cfg(execution={"workers": 1}).config_hash() == _cfg().config_hash()
    assert _cfg(seeds=[0, 2]).config_hash() != _cfg().config_hash()


def test_partial_run_then_resume_gives_the_same_rows(reference, tmp_path, monkeypatch):
    log = tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_CALL_LOG", str(log))
    first = run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                      limit=5, chain_model=None, make_outputs=False)
    assert first.num_done == 5 and not first.complete
    assert not (first.run_dir / "report.md").exists()
    second = run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                       chain_model=None, make_outputs=False)
    assert second.num_skipped == 5 and second.num_done == NUM_POINTS - 5 and second.complete
    calls = [int(x) for x in log.read_text().split()]
    assert sorted(calls) == list(range(NUM_POINTS))        # no point ran twice
    assert (second.run_dir / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    third = run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                      chain_model=None, make_outputs=False)
    assert third.num_skipped == NUM_POINTS and third.num_done == 0


def test_torn_line_and_incomplete_point_are_discarded(reference, tmp_path):
    run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False, limit=3,
              chain_model=None, make_outputs=False)
    csv_path = tmp_path / "fake" / reference.name / "results.csv"
    lines = (reference / "results.csv").read_text().splitlines(keepends=True)
    header = lines[0]
    assert csv_path.read_text().splitlines(keepends=True)[0] == header
    # a point with one of its two rows written, then a torn line (kill -9 mid-write)
    with open(csv_path, "a") as f:
        f.write(lines[-1])
        f.write(lines[-3][:17])
    assert len(ResultsStore(csv_path).completed_keys()) == 3
    done = run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                     chain_model=None, make_outputs=False)
    assert done.num_skipped == 3 and done.complete
    assert csv_path.read_bytes() == (reference / "results.csv").read_bytes()


def test_failing_point_is_recorded_and_retried_on_rerun(reference, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_RAISE_AT", "4")
    bad = run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                    chain_model=None, make_outputs=False)
    assert bad.num_failed == 1 and bad.num_done == NUM_POINTS - 1 and not bad.complete
    failures = (bad.run_dir / "failures.csv").read_text()
    assert "injected failure at point 4" in failures and "exception" in failures
    monkeypatch.delenv("FAKE_RAISE_AT")
    good = run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                     chain_model=None, make_outputs=False)
    assert good.num_done == 1 and good.complete
    assert (good.run_dir / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()


def test_parallel_workers_survive_a_killed_worker(reference, tmp_path, monkeypatch):
    """kill -9 of a worker process mid-point: a fresh pool retries it; nothing is lost or duplicated."""
    monkeypatch.setenv("FAKE_KILL_ONCE_DIR", str(tmp_path))
    out = run_sweep(_cfg(), fake_point, out_root=tmp_path, progress=False, chain_model=None,
                    executor=ProcessExecutor(workers=2, torch_threads=1, max_retries=1, start_method="fork"),
                    make_outputs=False)
    assert (tmp_path / "killed").exists()                 # the worker really died
    assert out.complete and out.num_failed == 0
    assert (out.run_dir / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    pids = set(read_results(out.run_dir / "timings.csv")["worker_pid"])
    assert len(pids) >= 2 and os.getpid() not in pids     # the points really ran in other processes


_DRIVER = textwrap.dedent("""
    import signal, sys
    # a sweep started from a terminal gets Ctrl-C; one started in the background (nohup, CI runners) inherits
    # SIGINT ignored, and Python keeps it ignored: give the driver a terminal's SIGINT
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, {tests!r})
    from test_runner import _cfg, fake_point
    from experiments.executors import ProcessExecutor, SerialExecutor
    from experiments.runner import run_sweep
    if __name__ == "__main__":
        ex = ProcessExecutor(workers=2, start_method="fork") if {parallel!r} else SerialExecutor()
        out = run_sweep(_cfg(), fake_point, out_root={out!r}, executor=ex, progress=False, chain_model=None)
        print("INTERRUPTED" if out.interrupted else "DONE", out.num_done, flush=True)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_killed_sweep_process_resumes(reference, tmp_path, sig):
    """kill -9 (parallel workers) or Ctrl-C (serial) of the sweep: finished points kept, no orphan workers."""
    parallel = sig == signal.SIGKILL
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER.format(tests=str(Path(__file__).parent), out=str(tmp_path), parallel=parallel))
    # each process finishes its first points, then stalls until the signal: 2 points are done, never all
    env = dict(os.environ, FAKE_SLOW_AFTER="1" if parallel else "2")
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    csv_path = tmp_path / "fake" / reference.name / "results.csv"
    deadline = time.time() + 60
    while time.time() < deadline:
        if csv_path.exists() and len(ResultsStore(csv_path).completed_keys()) >= 2:
            break
        time.sleep(0.05)
    workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    proc.send_signal(sig)
    stdout, _ = proc.communicate(timeout=60)
    if parallel:
        assert workers
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(int(w)) for w in workers):
            time.sleep(0.2)
        assert not any(_alive(int(w)) for w in workers), "worker processes outlived the killed sweep"
    done_before = len(ResultsStore(csv_path).completed_keys())
    assert 2 <= done_before < NUM_POINTS
    if sig == signal.SIGINT:
        assert stdout.startswith("INTERRUPTED")           # Ctrl-C is caught: finished points kept, clean exit
    out = run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                    chain_model=None, make_outputs=False)
    assert out.num_skipped == done_before and out.complete
    assert csv_path.read_bytes() == (reference / "results.csv").read_bytes()


def test_plot_regenerates_outputs_from_the_csv_alone(reference, tmp_path):
    import shutil

    from experiments.report import write_outputs

    run = tmp_path / "copy"
    shutil.copytree(reference, run)
    report = (run / "report.md").read_text()
    plots = sorted(p.name for p in (run / "plots").glob("*.png"))
    shutil.rmtree(run / "plots")
    (run / "report.md").unlink()
    (run / "image_grid.png").unlink()
    (run / "config.yaml").unlink()                        # from the CSV alone (and the saved images)
    out = write_outputs(run)
    assert sorted(p.name for p in out["plots"]) == plots
    assert (run / "image_grid.png").is_file()
    new = (run / "report.md").read_text()
    # the same numbers: the headline table is identical (the setup section needs the config)
    table = report[report.index("Per grid point"):report.index("How to read the numbers")]
    assert table.replace(str(reference), str(run)) in new


def _raise_on_odd(x):
    if x % 2:
        raise ValueError(f"odd {x}")
    return x * 10


def test_process_executor_returns_exceptions_as_point_errors():
    with ProcessExecutor(workers=2, start_method="fork") as ex:
        out = sorted(((i, r, e and (e.kind, str(e))) for i, r, e in ex.imap_unordered(_raise_on_odd, range(4))),
                     key=lambda t: t[0])
    assert out == [(0, 0, None), (1, None, ("exception", "ValueError: odd 1")), (2, 20, None),
                   (3, None, ("exception", "ValueError: odd 3"))]


def test_a_second_sweep_on_the_same_run_directory_is_refused(tmp_path):
    from experiments.runner import _lock_run_dir

    run_dir = tmp_path / "fake" / _cfg().config_hash()
    run_dir.mkdir(parents=True)
    held = _lock_run_dir(run_dir)
    try:
        with pytest.raises(ValueError, match="in use by another sweep"):
            run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                      chain_model=None, make_outputs=False)
    finally:
        held.close()
    assert run_sweep(_cfg(), fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                     chain_model=None, make_outputs=False).complete


def _always_fails(point):
    raise FileNotFoundError("no model at /nowhere")


def test_a_sweep_whose_first_points_all_fail_alike_stops_early(tmp_path):
    with pytest.raises(ValueError, match=r"first 3 points all failed with the same error.*no model at /nowhere"):
        run_sweep(_cfg(), _always_fails, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                  chain_model=None, make_outputs=False)
    failures = read_results(tmp_path / "fake" / _cfg().config_hash() / "failures.csv")
    # the first three points of the schedule (points sharing a sender state run together), and no more
    from experiments.grid import expand_grid, plan_chunks

    scheduled = [p.index for chunk in plan_chunks(expand_grid(_cfg(), chain_model=None), 1) for p in chunk]
    assert list(failures["point_index"]) == scheduled[:3]


def test_finished_file_does_not_depend_on_the_order_points_finished_in(tmp_path):
    """Columns that only some points have (a fallback point lacks num_repaired): one header whatever finished first."""
    points = {"k0": [{"point_index": 0, "seed": 0, "psnr_db": None, "fallback": True}],
              "k1": [{"point_index": 1, "seed": 0, "psnr_db": 31.5, "fallback": False, "num_repaired": 2}],
              "k2": [{"point_index": 2, "seed": 1, "psnr_db": 29.0, "fallback": False, "num_repaired": 0,
                      "mcs_index": 4}]}
    order = {"k0": 0, "k1": 1, "k2": 2}
    files = []
    for finish_order in (["k0", "k1", "k2"], ["k2", "k0", "k1"], ["k1", "k2", "k0"]):
        store = ResultsStore(tmp_path / f"{''.join(finish_order)}.csv")
        for key in finish_order:
            store.append_point(key, points[key])
        store.finalize(order)
        files.append(store.path.read_bytes())
    assert files[0] == files[1] == files[2]
    header = files[0].decode().splitlines()[0].split(",")
    assert header == ["point_index", "point_key", "point_rows", "seed", "psnr_db", "fallback", "num_repaired",
                      "mcs_index"]                                   # the rows' own order
