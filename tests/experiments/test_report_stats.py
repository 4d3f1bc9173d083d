"""The statistics behind every report (experiments.stats, experiments.report) and the configs sized for claims."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from experiments import stats
from experiments.report import comparisons, headline_table, key_findings

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"


def _wilson_closed_form(k, n, z=sps.norm.ppf(0.975)):
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


@pytest.mark.parametrize("k,n", [(0, 10), (5, 12), (7, 12), (31, 32), (50, 100)])
def test_one_wilson_interval_matches_the_closed_form_everywhere_it_is_used(k, n):
    from pipeline.embedded.classifier import wilson

    lo, hi = _wilson_closed_form(k, n)
    for got in (stats.wilson_interval(k, n), wilson(k, n)):
        assert got[0] == pytest.approx(max(lo, 0.0), abs=1e-9) and got[1] == pytest.approx(min(hi, 1.0), abs=1e-9)


@pytest.mark.parametrize("k,n,d", [(5, 12, 1.0), (6, 12, 2.0), (50, 100, 4.0), (12, 640, 8.0), (0, 64, 2.0)])
def test_wilson_interval_with_a_design_effect_is_the_closed_form_over_the_effective_trials(k, n, d):
    """design_effect d: the Wilson interval of the same proportion over n / d trials (Kish); d <= 1 changes
    nothing."""
    lo, hi = _wilson_closed_form(k / d, n / d)
    got = stats.wilson_interval(k, n, design_effect=d)
    assert got[0] == pytest.approx(max(lo, 0.0), abs=1e-9) and got[1] == pytest.approx(min(hi, 1.0), abs=1e-9)
    assert stats.wilson_interval(k, n, design_effect=0.7) == stats.wilson_interval(k, n)
    if d > 1:
        assert got[1] - got[0] > stats.wilson_interval(k, n)[1] - stats.wilson_interval(k, n)[0]


def test_design_effect_of_clustered_and_independent_counts():
    from phy.sweep import design_effect

    rng = np.random.default_rng(0)
    independent = rng.binomial(8, 0.1, size=4000)
    clustered = 8 * rng.binomial(1, 0.1, size=4000)           # a row fails whole or not at all
    assert design_effect(independent, 8) == pytest.approx(1.0, abs=0.06)
    assert design_effect(clustered, 8) == pytest.approx(8.0, rel=0.05)   # m for perfectly correlated rows
    assert design_effect([0, 0, 0], 8) == 1.0 and design_effect([3], 8) == 1.0


def test_mean_interval_is_students_t():
    x = np.array([3.1, 2.7, 3.9, 4.4, 2.2, 3.3, 3.0])
    m, lo, hi, n = stats.mean_interval(x)
    ref = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    assert (m, n) == (pytest.approx(x.mean()), 7) and (lo, hi) == pytest.approx(ref)
    assert math.isnan(stats.mean_interval([1.0])[1])                 # one sample: no interval


def test_paired_tests_mcnemar_and_wilcoxon():
    a = np.array([1] * 9 + [0] * 1 + [1] * 20)
    b = np.array([0] * 9 + [1] * 1 + [1] * 20)                       # 9 vs 1 discordant pairs
    r = stats.paired_test(a, b)
    assert r["test"] == "exact McNemar" and r["discordant"] == (9, 1)
    assert r["p_value"] == pytest.approx(sps.binomtest(9, 10).pvalue)
    rng = np.random.default_rng(0)
    x = rng.normal(30, 3, 32)
    y = x - rng.normal(1.0, 1.0, 32)
    r = stats.paired_test(x, y)
    assert r["test"] == "Wilcoxon signed-rank" and r["n"] == 32
    assert r["p_value"] == pytest.approx(sps.wilcoxon(x, y).pvalue)
    assert r["diff_low"] < r["diff"] < r["diff_high"]
    # NaN on either side drops the pair
    assert stats.paired_test([1.0, np.nan, 3.0, 4.0], [0.5, 1.0, np.nan, 3.0])["n"] == 2
    # Fig. 6's old claim: 5/12 vs 7/12 is no evidence (Fisher p = 0.68)
    r = stats.unpaired_test([1] * 5 + [0] * 7, [1] * 7 + [0] * 5)
    assert r["test"] == "Fisher's exact" and r["p_value"] == pytest.approx(0.684, abs=1e-3)


def _rows():
    """Two SNRs x two arms x 32 pairs; at 0 dB a quarter of the receivers fell back."""
    rng = np.random.default_rng(1)
    rows = []
    for snr in (0, 20):
        for arm in ("soft", "hard"):
            for seed in range(8):
                for r in range(4):
                    fb = int(snr == 0 and r == 0)
                    psnr = math.inf if (snr == 20 and seed == 0) else 20 + snr + rng.normal(0, 2) + (arm == "hard")
                    rows.append(dict(point_key=f"{snr}-{arm}-{seed}", seed=seed, snr_db=snr, arm=arm,
                                     receiver_prompt=f"p{r}", fallback_generate_alone=fb,
                                     psnr_db=12.0 if fb else psnr, ssim=0.9, adherent=int(rng.random() < 0.8),
                                     block_errors=3, num_blocks=10))
    df = pd.DataFrame(rows)
    df["bler"] = df["block_errors"] / df["num_blocks"]
    return df


def test_fallbacks_leave_the_quality_means_and_infinite_psnr_is_explicit():
    df = _rows()
    at0 = df[(df.snr_db == 0) & (df.arm == "soft")]
    s = stats.summarise(at0, "psnr_db")
    assert s["n"] == 24 and s["excluded_fallback"] == 8 and s["small"]        # 24 < MIN_SAMPLES
    assert s["value"] == pytest.approx(at0[at0.fallback_generate_alone == 0].psnr_db.mean())
    fb = stats.summarise(at0, "fallback_generate_alone")
    assert fb["kind"] == "proportion" and fb["value"] == 0.25 and fb["n"] == 32
    bler = stats.summarise(at0, "bler")                                       # link metric: every row counts
    assert bler["kind"] == "rate" and bler["n_units"] == 320
    assert (bler["low"], bler["high"]) == pytest.approx(stats.wilson_interval(96, 320))
    at20 = df[(df.snr_db == 20) & (df.arm == "soft")]
    s = stats.summarise(at20, "psnr_db")
    assert s["identical"] == 4 and np.isfinite(s["value"]) and s["high"] <= stats.PSNR_CAP_DB
    table = headline_table(df, ["snr_db", "arm"], ["psnr_db", "adherent", "bler"])
    assert "inf" not in table and "4 identical" in table and "(n=24)" in table and "†" in table
    assert "fallback rate" in table.splitlines()[0]
    assert all("[" in line for line in key_findings(df, ["snr_db", "arm"], ["psnr_db", "adherent"]))


def test_comparisons_are_paired_on_the_same_seeds_and_receivers():
    df = _rows()
    text = "\n".join(comparisons(df, ["snr_db", "arm"], ["psnr_db", "adherent"]))
    assert "Wilcoxon signed-rank" in text and "exact McNemar" in text and "Fisher" not in text
    line = next(l for l in text.splitlines() if l.startswith("| 20 | hard | psnr_db"))
    assert line.split("|")[7].strip() == "32"                                 # 32 pairs
    line0 = next(l for l in text.splitlines() if l.startswith("| 0 | hard | psnr_db"))
    assert line0.split("|")[7].strip() == "24"                                # fallback pairs dropped
    # different receivers in the two arms: unpaired tests
    df2 = df.copy()
    df2.loc[df2.arm == "hard", "receiver_prompt"] += "-other"
    text2 = "\n".join(comparisons(df2, ["snr_db", "arm"], ["adherent"]))
    assert "Fisher's exact" in text2 and "McNemar" not in text2


def test_plot_bands_are_wilson_for_rates_and_stay_in_range():
    from experiments.plots import summarise

    df = pd.DataFrame({"point_key": ["a"] * 4, "snr_db": [0] * 4, "bler": [1.0, 1.0, 1.0, 0.9],
                       "block_errors": [10, 10, 10, 9], "num_blocks": [10] * 4,
                       "ssim": [1.0, 0.2, 1.0, 1.0]})
    b = summarise(df, ["snr_db"], "bler").iloc[0]
    assert 0.0 <= b["low"] <= b["mean"] <= b["high"] <= 1.0
    from phy.sweep import design_effect

    deff = design_effect([10, 10, 10, 9], [10] * 4)   # the rows are clusters of blocks
    assert deff > 1 and (b["low"], b["high"]) == pytest.approx(stats.wilson_interval(39, 40, design_effect=deff))
    s = summarise(df, ["snr_db"], "ssim").iloc[0]
    assert s["high"] <= 1.0


def _config(name):
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


COMMITTED = ["default", "fig3_bit_errors", "fig5_shared_steps", "fig6_semantic", "snr_channels",
             "mcs_fixed_vs_adaptive", "digital_vs_analog", "soft_vs_hard", "latency_energy"]


@pytest.mark.parametrize("name", COMMITTED)
def test_every_committed_experiment_has_enough_samples_per_point(name):
    cfg = _config(name)
    assert len(cfg["seeds"]) >= 8
    users = cfg["users"]
    sets = users.values() if isinstance(users, dict) else [users]
    pairs = set()
    for groups in sets:
        receivers = sum(len(g["receiver_prompts"]) for g in groups)
        assert receivers * len(cfg["seeds"]) >= 32, name                       # rows per plotted point
        pairs |= {(g["shared_prompt"], p) for g in groups for p in g["receiver_prompts"]}
    assert len(pairs) >= 4


def test_fig3_has_a_raw_and_a_sanitised_float16_arm_and_the_analog_header_is_robust():
    from latent_codec import CodecConfig

    v = _config("fig3_bit_errors")["variants"]
    assert CodecConfig.model_validate(v["float16_raw"]["codec"]).build().sanitize is False
    assert CodecConfig.model_validate(v["float16_sanitised"]["codec"]).build().sanitize is True
    from pipeline.chain import ChainConfig
    from pipeline.transport import build_transport

    analog = _config("digital_vs_analog")["variants"]["analog"]
    assert analog["control_link"] == "robust"
    t = build_transport(ChainConfig(transmission="analog", codec={"name": "analog"}, snr_db=0.0,
                                    control_link="robust"))
    assert t.control_config.mcs == 0 and t.control_config.code == "ldpc"
    with pytest.raises(ValueError, match="control_link"):
        ChainConfig(control_link="fast")


def test_comparisons_stratify_by_every_other_axis():
    """With several axes besides the arm (channel x SNR x variant), each (channel, SNR) cell gets its tests."""
    df = _rows().rename(columns={"arm": "variant"})
    df = pd.concat([df.assign(channel="awgn"), df.assign(channel="tdl-c")], ignore_index=True)
    df["point_key"] = df["point_key"].astype(str) + df["channel"]
    text = "\n".join(comparisons(df, ["channel", "snr_db", "variant"], ["psnr_db"]))
    assert "at each `channel`, `snr_db`" in text
    rows = [l for l in text.splitlines() if "| psnr_db |" in l]
    assert {l.split("|")[1].strip() for l in rows} == {"awgn, 0", "awgn, 20", "tdl-c, 0", "tdl-c, 20"}
    assert all(l.split("|")[8].strip() == "Wilcoxon signed-rank" for l in rows)
