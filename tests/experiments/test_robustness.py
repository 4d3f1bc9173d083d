"""A careless or hostile user: nothing lost, nothing silently wrong, no runaway, no traceback.

One test (or a few) per class of the hostile-user review: data loss, silently wrong
results, runaways, tracebacks, paper-ready plots, tidy rows (the module structure,
no import cycles and no private names across modules, is tests/test_imports.py's). Open-ended inputs (run ids,
YAML range strings) are property-tested with hypothesis.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.config import ConfigError, apply_overrides, load_config, parse_config, read_raw
from experiments.configtools import check_plain_name, yaml_load
from experiments.executors import SerialExecutor
from experiments.grid import PointResult, count_points, iter_points
from experiments.results import ResultsStore, read_results
from experiments.runner import RunIdentityError, run_dir_for, run_sweep


RAW = {
    "name": "hostile",
    "seeds": [0],
    "users": [{"shared_prompt": "a red apple on a wooden table",
               "receiver_prompts": ["a yellow lemon\non a wooden table", "an orange, on a \"wooden\" table"]}],
    "chain": {"base": 1},
    "grid": {"snr_db": [0, 5, 10]},
}


def fake_point(point) -> PointResult:
    """Deterministic rows whose prompts hold a newline, a comma and quotes (CSV's hard cases)."""
    rows = [{"user": u, "receiver_prompt": prompt, "psnr_db": 10.0 + float(point.params["snr_db"]) + u}
            for u, prompt in enumerate(point.groups[0]["receiver_prompts"])]
    return PointResult(rows)


def _cfg(**changes):
    return parse_config({**RAW, **changes}, chain_model=None)


def _sweep(cfg, out, **kw):
    return run_sweep(cfg, fake_point, out_root=out, executor=SerialExecutor(), progress=False, chain_model=None,
                     make_outputs=False, **kw)


# --------------------------------------------------------------------------- structure
# import cycles and private names across modules: tests/test_imports.py (every package)


# --------------------------------------------------------------------------- data loss
def test_a_different_configuration_never_overwrites_a_run(tmp_path):
    first = _sweep(_cfg(), tmp_path, run_id="shared")
    assert first.complete
    csv_before = (first.run_dir / "results.csv").read_bytes()
    config_before = (first.run_dir / "config.yaml").read_bytes()
    # the same run id, another grid (what `--set grid.snr_db=[0]` does): refused, nothing touched
    with pytest.raises(RunIdentityError, match="--run-id"):
        _sweep(_cfg(grid={"snr_db": [0]}), tmp_path, run_id="shared")
    assert (first.run_dir / "results.csv").read_bytes() == csv_before
    assert (first.run_dir / "config.yaml").read_bytes() == config_before
    # without --run-id the other configuration gets its own run directory; the first one is intact
    other = _sweep(_cfg(grid={"snr_db": [0]}), tmp_path)
    assert other.complete and other.run_dir != first.run_dir
    assert (first.run_dir / "results.csv").read_bytes() == csv_before
    # the same configuration resumes into its run id (nothing to do)
    again = _sweep(_cfg(), tmp_path, run_id="shared")
    assert again.num_skipped == 3 and again.num_done == 0
    assert (first.run_dir / "results.csv").read_bytes() == csv_before


def test_a_run_directory_without_config_yaml_and_foreign_rows_is_refused(tmp_path):
    run = _sweep(_cfg(), tmp_path, run_id="r").run_dir
    (run / "config.yaml").unlink()
    rows = len(read_results(run / "results.csv"))
    with pytest.raises(RunIdentityError, match="another configuration"):
        _sweep(_cfg(grid={"snr_db": [20]}), tmp_path, run_id="r")
    assert len(read_results(run / "results.csv")) == rows


def test_finishing_never_deletes_rows(tmp_path):
    store = ResultsStore(tmp_path / "results.csv")
    store.append_point("old", [{"x": 1}])
    store.append_point("new", [{"x": 2}])
    store.finalize({"new": 0})
    assert list(read_results(tmp_path / "results.csv")["point_key"]) == ["new", "old"]


_BAD_IDS = st.one_of(
    st.text(min_size=1, max_size=20).map(lambda s: "/" + s),
    st.text(max_size=10).map(lambda s: s + "/.." + s),
    st.builds(lambda a, b: f"{a}/{b}", st.text(max_size=8), st.text(max_size=8)),
    st.sampled_from(["..", ".", "../x", "/tmp/x", "a/../../b", "", ".hidden", "-rf", "a\\b", "a\nb", "a" * 129]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run_id=_BAD_IDS)
def test_run_ids_that_are_not_plain_names_are_refused(run_id):
    with pytest.raises(ValueError, match="not a plain name"):
        run_dir_for(_cfg(), "/tmp/out", run_id)


@settings(max_examples=150, deadline=None)
@given(run_id=st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}\Z"))
def test_every_accepted_run_id_stays_under_the_results_root(run_id):
    try:
        check_plain_name(run_id, "--run-id")
    except ValueError:
        assert ".." in run_id
        return
    d = run_dir_for(_cfg(), "/tmp/out", run_id)
    assert d.parent == Path("/tmp/out/hostile") and d.name == run_id


@pytest.mark.parametrize("name", ["..", ".", "../escape", "/abs", "a/b"])
def test_a_config_name_that_is_not_plain_is_refused(name):
    with pytest.raises(ConfigError, match="not a plain name"):
        _cfg(name=name)


def test_the_cli_refuses_a_path_as_run_id_before_any_work(tmp_path, capsys):
    from experiments.cli import main

    code = main(["run", "default", "--out", str(tmp_path), "--run-id", "../../victim", "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--run-id" in err and "not a plain name" in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- silently wrong
_NUM = st.integers(min_value=-99, max_value=99)


@settings(max_examples=200, deadline=None)
@given(start=_NUM, step=st.integers(min_value=1, max_value=59), count=st.integers(min_value=1, max_value=6))
def test_unquoted_yaml_ranges_are_ranges_not_base_60_numbers(start, step, count):
    stop = start + step * (count - 1)
    text = f"{start}:{step}:{stop}"
    assert yaml_load(f"snr_db: {text}") == {"snr_db": text}           # YAML 1.1 would give a base-60 int
    cfg = _cfg(grid=yaml_load(f"snr_db: {text}"))
    assert cfg.grid["snr_db"] == [float(start + i * step) for i in range(count)]
    raw = apply_overrides(RAW, [f"grid.snr_db={text}"])                 # --set grid.snr_db=-5:5:5
    assert parse_config(raw, chain_model=None).grid["snr_db"] == cfg.grid["snr_db"]


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=59), st.integers(min_value=0, max_value=59))
def test_sexagesimal_looking_scalars_stay_strings(a, b):
    assert yaml_load(f"x: {a}:{b:02d}") == {"x": f"{a}:{b:02d}"}
    assert yaml_load(f"x: {a}:{b:02d}.5") == {"x": f"{a}:{b:02d}.5"}


def test_yaml_numbers_still_parse():
    assert yaml_load("a: 20e6\nb: -5\nc: 0.5\nd: .inf\ne: 0x10\nf: 3.5e9\ng: 1_000") == {
        "a": 20e6, "b": -5, "c": 0.5, "d": float("inf"), "e": 16, "f": 3.5e9, "g": 1000}


def test_duplicate_keys_are_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump(RAW) + "seeds: [1, 2]\n")
    with pytest.raises(ConfigError, match="duplicate key 'seeds'"):
        read_raw(path)
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        apply_overrides(RAW, ["chain={a: 1, a: 2}"])


def test_csv_repair_parses_a_torn_row_inside_a_quoted_newline(tmp_path):
    run = _sweep(_cfg(), tmp_path, limit=2).run_dir
    csv_path = run / "results.csv"
    text = csv_path.read_text()
    assert '"a yellow lemon\non a wooden table"' in text               # the prompt's newline is in a quote
    full = _sweep(_cfg(), tmp_path / "ref").run_dir / "results.csv"
    last_point = full.read_text()[len(text):]                            # the third point's two rows
    cut = last_point.index("lemon\n") + len("lemon\n")                   # torn right after the quoted newline
    with open(csv_path, "a") as f:
        f.write(last_point[:cut])
    assert len(ResultsStore(csv_path).completed_keys()) == 2             # the torn point is not complete
    done = _sweep(_cfg(), tmp_path)
    assert done.num_skipped == 2 and done.num_done == 1
    assert csv_path.read_bytes() == full.read_bytes()                    # as if never cut
    assert list(read_results(csv_path)["receiver_prompt"])[:2] == RAW["users"][0]["receiver_prompts"]


def test_points_compute_with_one_torch_thread_whatever_the_process_uses(monkeypatch, tmp_path):
    import torch

    import experiments.evaluate as ev

    seen = []
    monkeypatch.setattr(ev, "_evaluate", lambda point: seen.append(torch.get_num_threads()) or PointResult([]))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ev.evaluate_point(None)
        assert seen == [1] and torch.get_num_threads() == 2                # pinned inside, restored after
    finally:
        torch.set_num_threads(before)
    out = run_sweep(_cfg(), ev.evaluate_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                    chain_model=None, make_outputs=False)
    import json

    env = json.loads((out.run_dir / "environment.json").read_text())
    assert env["torch_threads_per_point"] == 1 and env["versions"]["torch"] == torch.__version__


# --------------------------------------------------------------------------- runaways
def test_a_million_point_grid_is_refused_at_once_naming_max_points():
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="--max-points"):
        _cfg(grid={"snr_db": "0:0.00001:10"})
    with pytest.raises(ConfigError, match=r"1000000 points .*--max-points"):
        _cfg(grid={"snr_db": "0:1:999", "speed_mps": list(range(1000))})
    with pytest.raises(ConfigError, match="--max-points"):
        _cfg(grid={"snr_db": "0:1e-12:10"})                             # never expanded
    assert time.perf_counter() - t0 < 5.0


def test_max_points_raises_the_limit_and_points_stream_lazily():
    cfg = _cfg(grid={"snr_db": "0:1:199", "speed_mps": list(range(100))}, execution={"max_points": 20_000})
    assert count_points(cfg) == 20_000
    it = iter_points(cfg, chain_model=None)
    first = next(it)
    assert first.index == 0 and first.params == {"snr_db": 0.0, "speed_mps": 0}


def test_dry_run_of_a_huge_grid_is_one_line_error(tmp_path, capsys):
    from experiments.cli import main

    t0 = time.perf_counter()
    code = main(["run", "default", "--out", str(tmp_path), "--dry-run", "--set", "grid.snr_db=0:0.00001:10"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--max-points" in err and len(err.splitlines()) == 1
    assert time.perf_counter() - t0 < 60


# --------------------------------------------------------------------------- tracebacks -> one line
def _cli_error(argv, capsys) -> str:
    from experiments.cli import main

    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_out_that_is_a_file_or_under_a_file_is_refused_before_work(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert "--out" in _cli_error(["run", "default", "--out", str(f), "--dry-run"], capsys)
    assert "--out" in _cli_error(["run", "default", "--out", str(f / "sub"), "--dry-run"], capsys)


def test_a_results_folder_made_unwritable_mid_sweep_is_one_line(tmp_path, monkeypatch):
    import experiments.runner as runner

    real, calls = runner._store_point, []

    def store(*args):
        calls.append(1)
        if len(calls) == 2:
            raise PermissionError(13, "Permission denied", str(tmp_path / "results.csv"))
        return real(*args)

    monkeypatch.setattr(runner, "_store_point", store)
    with pytest.raises(ValueError, match="Permission denied.*rerun the same command") as info:
        _sweep(_cfg(), tmp_path)
    assert len(str(info.value).splitlines()) == 1
    monkeypatch.setattr(runner, "_store_point", real)
    assert _sweep(_cfg(), tmp_path).num_skipped == 1                      # the finished point was kept


def test_dry_run_into_a_closed_pipe_exits_quietly(tmp_path, monkeypatch):
    from experiments.cli import main

    r, w = os.pipe()
    os.close(r)
    saved = os.dup(1)
    stream = io.TextIOWrapper(io.FileIO(w, "w"), write_through=True)
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        assert main(["run", "default", "--out", str(tmp_path), "--dry-run", "--set", "model=tiny-random"]) == 0
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def test_a_png_or_a_folder_as_config_is_one_line(tmp_path, capsys):
    png = tmp_path / "figure.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert "not a text file" in _cli_error(["run", str(png), "--dry-run"], capsys)
    with pytest.raises(ConfigError, match="not a text file"):
        load_config(png)


@pytest.mark.parametrize("content", [b'a,b\n1,2,3,4\n"x\n', b"\xff\xfe\x00garbage\x00", b"",
                                     b"point_key,x\n" + b'"unterminated,1\n' * 3])
def test_plot_on_a_garbled_csv_names_the_file(tmp_path, capsys, content):
    (tmp_path / "results.csv").write_bytes(content)
    err = _cli_error(["plot", str(tmp_path)], capsys)
    assert "results.csv" in err


# --------------------------------------------------------------------------- plots
def test_plots_are_fit_for_a_paper(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from experiments.plots import BAND_LABEL, make_plots, plot_metric_panel

    rows = [{"point_key": f"{s}-{m}", "seed": seed, "snr_db": s, "modulation": m,
             "bler": float((seed + s) % 2), "airtime_s": 0.002, "psnr_db": 20.0 + seed}
            for s in (0, 10) for m in ("qpsk", "16qam") for seed in range(3)]
    df = pd.DataFrame(rows)
    paths = make_plots(df, tmp_path)
    assert sorted(p.name for p in paths) == ["airtime_s__snr_db.png", "bler__snr_db.png", "psnr_db__snr_db.png"]
    assert all(p.with_suffix(".pdf").is_file() for p in paths)
    fig, ax = plt.subplots()
    plot_metric_panel(ax, df, "snr_db", "bler", ["modulation"])
    assert ax.get_xlabel() == "SNR [dB]" and ax.get_ylabel() == "BLER" and ax.get_yscale() == "log"
    handles, labels = ax._distdiff_legend
    assert labels == ["modulation=qpsk", "modulation=16qam", BAND_LABEL]
    for band in ax.collections:                                          # the CI band stays within [0, 1]
        ys = band.get_paths()[0].vertices[:, 1]
        assert ys.min() >= 0 and ys.max() <= 1
    plt.close(fig)
    fig, ax = plt.subplots()
    plot_metric_panel(ax, df, "snr_db", "airtime_s", ["modulation"])
    assert ax.get_ylabel() == "airtime [ms]" and ax.get_lines()[0].get_ydata()[0] == pytest.approx(2.0)
    plt.close(fig)


# --------------------------------------------------------------------------- tidy rows
def test_rows_carry_the_resolved_settings_even_when_a_variant_sets_them(tmp_path):
    raw = {**RAW, "chain": {"snr_db": 10, "codec": {"name": "uniform", "bits": 8},
                            "link": {"channel": "awgn", "modulation": "qpsk"}},
           "variants": {"fast": {"codec": {"bits": 4}, "link": {"channel": "rayleigh", "speed_mps": 30.0,
                                                                "modulation": "16qam"}}},
           "grid": {"snr_db": [0, 10]}}
    cfg = parse_config(raw)
    out = run_sweep(cfg, fake_point, out_root=tmp_path, executor=SerialExecutor(), progress=False,
                    make_outputs=False)
    df = read_results(out.run_dir / "results.csv")
    assert set(df["variant"]) == {"fast"}
    for col, value in {"channel": "rayleigh", "speed_mps": 30.0, "modulation": "16qam", "codec": "uniform",
                       "bits": 4, "code_rate": 0.5, "transmission": "digital"}.items():
        assert (df[col] == value).all(), col
    assert "mcs" in df.columns and sorted(set(df["snr_db"])) == [0, 10] and "seed" in df.columns


def test_run_refuses_an_unknown_executor_before_a_dry_run(tmp_path, capsys):
    """``--executor bogus --dry-run`` is an error naming the known executors, not a silent dry run."""
    from experiments.cli import main

    assert main(["run", "--executor", "bogus", "--dry-run", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "executor must be one of" in err and "'bogus'" in err


def test_link_output_is_checked_before_the_simulation(tmp_path, capsys):
    """``link --output`` into a missing folder or onto a folder is one line, before any bit is simulated."""
    from experiments.cli import main

    assert main(["link", "--snr-db", "0", "--output", str(tmp_path / "missing" / "x.csv")]) == 2
    assert "the folder" in capsys.readouterr().err
    assert main(["link", "--snr-db", "0", "--output", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
