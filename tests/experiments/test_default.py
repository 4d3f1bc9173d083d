"""The default experiment (the README's main job) end to end, shrunk: tiny random model, few steps, 2 SNRs.

It goes through the real chain (pipeline + latent_codec + phy) and the command
line, and checks the run directory a user gets: tidy CSV, config, environment,
plots, image grid, report; then ``distdiff plot`` regenerates the outputs.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from experiments.results import read_results

SHRINK = ["model=tiny-random", "seeds=[0]", "grid.snr_db=[0, 25]", "chain.num_inference_steps=4",
          "chain.num_shared_steps=2", "execution.executor=serial"]


def _cli(argv) -> int:
    from experiments.cli import main

    return main(argv)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    argv = ["run", "--out", str(out), "--no-progress"]
    for s in SHRINK:
        argv += ["--set", s]
    assert _cli(argv) == 0
    (run_dir,) = list((out / "default").iterdir())
    return run_dir


def test_default_run_writes_a_complete_run_directory(default_run):
    for name in ("results.csv", "config.yaml", "environment.json", "report.md", "image_grid.png", "timings.csv"):
        assert (default_run / name).is_file(), name
    df = read_results(default_run / "results.csv")
    cfg = yaml.safe_load((default_run / "config.yaml").read_text())
    receivers = sum(len(g["receiver_prompts"]) for g in cfg["users"])
    assert len(df) == 2 * receivers                        # point x user x seed
    for col in ("snr_db", "seed", "user", "receiver_prompt", "psnr_db", "ssim", "mse", "adherent", "airtime_s",
                "compute_saved_fraction", "mcs_index", "bler"):
        assert col in df.columns, col
    assert sorted(df["snr_db"].unique()) == [0, 25]
    # sharing 2 of 4 steps saves compute against every receiver generating alone
    assert (df["compute_saved_fraction"] > 0).all()
    # adaptive MCS: a higher SNR never gets a lower-rate MCS
    mcs = df.groupby("snr_db")["mcs_index"].min()
    assert mcs[25] >= mcs[0]
    env = json.loads((default_run / "environment.json").read_text())
    assert env["versions"]["torch"] and env["seeds"] == [0] and env["torch_threads_per_worker"] == 1
    report = (default_run / "report.md").read_text()
    assert "## Headline numbers" in report and "psnr_db" in report and "![image grid]" in report
    for line in report.splitlines():
        if line.startswith("![") and "](" in line:
            assert (default_run / line.split("](")[1].rstrip(")")).is_file(), line
    images = list((default_run / "images").iterdir())
    assert len(images) == 2
    names = sorted(p.stem for p in images[0].glob("*.png"))
    assert names == sorted(f"{g['name']}_u{u}{s}" for g in cfg["users"] for u in range(len(g["receiver_prompts"]))
                           for s in ("", "_ref", "_alone"))


def test_rerun_resumes_without_recomputing(default_run, capsys):
    out = default_run.parent.parent
    argv = ["run", "--out", str(out), "--no-progress"]
    for s in SHRINK:
        argv += ["--set", s]
    before = (default_run / "results.csv").read_bytes()
    assert _cli(argv) == 0
    assert "2 already done, 0 run now" in capsys.readouterr().out
    assert (default_run / "results.csv").read_bytes() == before


def test_plot_command_regenerates_plots_and_report(default_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(default_run, run)
    report = (run / "report.md").read_text()
    plots = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert plots
    shutil.rmtree(run / "plots")
    (run / "report.md").unlink()
    (run / "image_grid.png").unlink()
    assert _cli(["plot", str(run)]) == 0
    assert sorted(p.name for p in (run / "plots").glob("*.png")) == plots
    assert (run / "image_grid.png").is_file()
    assert (run / "report.md").read_text() == report.replace(str(default_run), str(run))


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nseeds: [0]\nusers: [{shared_prompt: a, receiver_prompts: [b]}]\ngrdi: {snr_db: [0]}\n")
    assert _cli(["sweep", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("distdiff: error: ") and "unknown key 'grdi'" in err[0]
    assert _cli(["plot", str(tmp_path)]) == 2
    assert "no results.csv" in capsys.readouterr().err


def test_free_prompts_are_grouped_by_meaning(tmp_path):
    """A config with free user prompts: the pipeline's grouper forms the groups (fruit vs vehicles)."""
    from experiments.config import parse_config
    from experiments.executors import SerialExecutor
    from experiments.runner import run_sweep

    cfg = parse_config({
        "name": "grouped", "model": "tiny-random", "seeds": [0],
        "grouping": {"prompts": ["a red apple on a wooden table", "a blue bus on a white table",
                                 "a yellow lemon on a blue table", "a red car on a wooden table"],
                     "threshold": 0.5, "max_group_size": 4, "auto_shared_steps": True},
        "chain": {"num_inference_steps": 4, "num_shared_steps": 2, "transmission": "lossless", "classify": False, "compare_alone": False},
        "grid": {"guidance_scale": [7.5]},
    })
    out = run_sweep(cfg, out_root=tmp_path, executor=SerialExecutor(), progress=False, make_outputs=False)
    assert out.complete
    df = read_results(out.run_dir / "results.csv")
    groups = {g: sorted(sub["receiver_prompt"]) for g, sub in df.groupby("group")}
    assert sorted(groups.values()) == [["a blue bus on a white table", "a red car on a wooden table"],
                                       ["a red apple on a wooden table", "a yellow lemon on a blue table"]]
    assert (df["group_similarity"] < 1).all() and (df["psnr_db"] == float("inf")).all()   # lossless
    assert df["num_shared_steps"].between(0, 4).all()
