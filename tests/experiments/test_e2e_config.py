"""The learned-vs-separation experiment, shrunk: every arm runs through the real chain on the shipped model."""

from __future__ import annotations

import pytest

from experiments.cli import main
from experiments.results import read_results

SHRINK = ["seeds=[100]", "grid.snr_db=[10]", "grid.channel=[awgn]", "chain.num_inference_steps=6",
          "chain.num_shared_steps=2", "chain.classify=false", "execution.executor=serial"]


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    argv = ["run", "e2e_vs_separation", "--out", str(out), "--no-progress"]
    for s in SHRINK:
        argv += ["--set", s]
    assert main(argv) == 0
    (run_dir,) = list((out / "e2e_vs_separation").iterdir())
    return read_results(run_dir / "results.csv")


def test_every_arm_gives_a_receiver_image(rows):
    assert set(rows["variant"]) == {"learned_rho0.5", "learned_rho0.125", "analog_rho0.5", "analog_rho0.125",
                                    "digital_uniform8", "float16_raw"}
    assert len(rows) == 6 * 4 and rows["psnr_db"].notna().all()


def test_channel_uses_per_latent_value_is_each_arms_own(rows):
    by = rows.groupby("variant")["channel_uses_per_latent_value"].first()
    assert by["learned_rho0.125"] == pytest.approx(0.125)          # no header on the learned path
    assert by["learned_rho0.5"] == pytest.approx(0.5)
    assert by["analog_rho0.125"] > 0.125                            # 1/8 of symbols + the robust header
    # the same header (one right-sized MCS-0 block) on top of 4x the symbols
    assert by["analog_rho0.5"] - by["analog_rho0.125"] == pytest.approx(0.5 - 0.125)
    assert by["float16_raw"] > by["digital_uniform8"] > 1.0                 # 16 > 8 bits per value, same MCS
