"""The quality-airtime frontier (experiments.frontier): crossover budgets by hand, figure and table from a tiny CSV."""

import math

import pandas as pd
import pytest
import yaml

from experiments.frontier import crossover_budget, frontier_points, frontier_table


def _pts(rows):
    return pd.DataFrame(rows, columns=["arm", "x", "mean", "fallback"])


def test_crossover_at_the_first_arm_that_catches_up():
    pts = _pts([("learned", 0.125, 20.0, 0.0), ("analog", 4.5, 22.0, 0.0), ("digital", 2.0, 30.0, 0.0),
                ("weak", 1.0, 15.0, 0.0)])
    # budgets 0.125 and 1.0: learned is best (weak is worse); at 2.0 digital beats it
    assert crossover_budget(pts, "learned") == {"status": "crossover", "from_budget": 0.125, "budget": 2.0,
                                                "by": "digital"}


def test_never_when_a_cheaper_arm_is_as_good_and_always_when_none_catches_up():
    cheaper = _pts([("learned", 0.5, 20.0, 0.0), ("other", 0.25, 20.0, 0.0)])
    assert crossover_budget(cheaper, "learned")["status"] == "never"
    alone = _pts([("learned", 0.5, 20.0, 0.0), ("other", 8.0, 19.0, 0.0), ("gone", 4.0, math.nan, 1.0)])
    assert crossover_budget(alone, "learned") == {"status": "always", "from_budget": 0.5, "budget": None, "by": None}


def test_a_point_that_mostly_fell_back_does_not_count_and_the_reference_may_have_several_points():
    pts = _pts([("learned", 0.125, 20.0, 0.0), ("learned", 0.5, 24.0, 0.0), ("digital", 0.25, 22.0, 0.9),
                ("analog", 1.0, 23.0, 0.0), ("big", 3.0, 25.0, 0.0)])
    # digital (90% fallback) is ignored; at 1.0 learned's best within budget (24 at 0.5) still beats analog (23)
    assert crossover_budget(pts, "learned") == {"status": "crossover", "from_budget": 0.125, "budget": 3.0,
                                                "by": "big"}
    assert crossover_budget(pts, "learned", max_fallback=1.0)["budget"] == 0.25


def _tiny_results():
    rows = []
    for channel in ("awgn", "rayleigh"):
        for snr in (0.0, 10.0):
            for variant, uses, psnr in (("learned", 0.125, 20.0 + snr / 5), ("digital", 4.0 - snr / 5, 20.0 + snr)):
                for seed in range(3):
                    rows.append({"point_key": f"{channel}-{snr}-{variant}", "seed": seed, "user": 0,
                                 "channel": channel, "snr_db": snr, "variant": variant,
                                 "channel_uses_per_latent_value": uses, "psnr_db": psnr + 0.5 * seed,
                                 "fallback_generate_alone": False})
    return pd.DataFrame(rows)


def test_points_and_table_from_a_tiny_csv():
    df = _tiny_results()
    pts = frontier_points(df, "channel_uses_per_latent_value", "psnr_db", "variant", ["channel", "snr_db"])
    assert len(pts) == 8 and set(pts["count"]) == {3}
    row = pts[(pts.channel == "awgn") & (pts.snr_db == 10.0) & (pts.arm == "digital")].iloc[0]
    assert row["x"] == pytest.approx(2.0) and row["mean"] == pytest.approx(30.5) and row["low"] < 30.5 < row["high"]
    lines = frontier_table(pts, "learned", 0.5, ["channel", "snr_db"])
    body = [ln for ln in lines if ln.startswith("| awgn") or ln.startswith("| rayleigh")]
    assert len(body) == 4
    # at 0 dB learned (20.5 at 0.125 uses) wins alone until digital ties it (20.5 at 4 uses): crossover at 4
    assert "| awgn | 0.0 | 4 (from 0.125; then digital) |" in body[0]
    assert "no point ≤ 0.5 (spends 4)" in body[0] and "20.50 [" in body[0]
    with pytest.raises(ValueError, match="not in the results"):
        frontier_points(df, "airtime", "psnr_db", "variant")


def test_a_config_plots_entry_draws_the_frontier_and_the_report_tabulates_it(tmp_path):
    from experiments.config import PlotSpec
    from experiments.report import write_outputs

    spec = PlotSpec(kind="frontier", x="channel_uses_per_latent_value", y=["psnr_db"], arm="variant",
                    panel=["channel", "snr_db"], reference="learned", budget=0.5, title="Frontier")
    with pytest.raises(ValueError, match="needs 'arm'"):
        PlotSpec(kind="frontier", x="c", y=["psnr_db"])
    run = tmp_path / "run"
    run.mkdir()
    _tiny_results().to_csv(run / "results.csv", index=False)
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "tiny", "grid": {"channel": [], "snr_db": [],
                                                                             "variant": []},
                                                    "plots": [spec.model_dump(mode="json")]}))
    out = write_outputs(run)
    names = [p.name for p in out["plots"]]
    assert "frontier__psnr_db__channel_uses_per_latent_value.png" in names
    assert (run / "plots" / "frontier__psnr_db__channel_uses_per_latent_value.pdf").is_file()
    report = out["report"].read_text()
    assert "## Frontier and bounds" in report and "learned better below" in report


def test_a_latent_nmse_entry_draws_the_codecs_against_the_bounds(tmp_path):
    import torch

    from experiments.frontier import gap_table, special_figures
    from latent_codec import AnalogCodec
    from pipeline.embedded.latent_nmse import measure

    x = torch.randn(8, 2, 8, 8, generator=torch.Generator().manual_seed(0)) * torch.linspace(2.0, 0.2, 8)
    table = measure({"analog": lambda rho, snr_db, k: AnalogCodec(2 * rho)}, {4: (x, 1.0), 8: (x / 2, 0.5)},
                    [0.5, 0.125], [0.0, 10.0])
    assert set(table.columns) >= {"nmse_db", "nmse_ci_low_db", "opta_nmse_db", "gap_to_linear_optimal_db"}
    assert (table.opta_nmse_db <= table.linear_optimal_nmse_db + 1e-9).all()
    table.to_csv(tmp_path / "latent_nmse.csv", index=False)
    specs = [{"kind": "latent_nmse", "x": "snr_db", "y": ["nmse_db"], "data": "latent_nmse.csv"},
             {"kind": "latent_nmse", "x": "snr_db", "y": ["nmse_db"], "data": "missing.csv"}]
    paths, lines = special_figures(tmp_path, _tiny_results(), specs, tmp_path / "plots")
    assert [p.name for p in paths] == ["latent_nmse__latent_nmse.png"] and paths[0].is_file()
    assert any("missing.csv" in ln and "missing" in ln for ln in lines)
    gaps = gap_table(table)
    assert len(gaps) == 2 + 2 and "| 0.5 | analog |" in gaps[2]


def test_step_table_finds_falls_and_cliffs_on_paired_rows():
    from experiments.frontier import step_table

    rng = __import__("numpy").random.default_rng(0)
    rows = []
    # arm "steady" rises 4 dB per 5 dB; arm "cliff" loses 6 dB from -10 to -5 (below the training range at -5)
    # and 2 dB from 0 to 5 (a fall, above the range); a fallback row is left out of its pairs
    means = {"steady": {-10: 10, -5: 14, 0: 18, 5: 22}, "cliff": {-10: 8, -5: 14, 0: 16, 5: 14}}
    for arm, by_snr in means.items():
        for snr, mean in by_snr.items():
            for seed in range(16):
                rows.append({"variant": arm, "channel": "awgn", "snr_db": snr, "seed": seed, "pair": "g/u0",
                             "psnr_db": mean + 0.3 * rng.standard_normal(),
                             "fallback_generate_alone": seed == 0 and snr == 5})
    lines = step_table(pd.DataFrame(rows), "snr_db", "psnr_db", "variant", ["channel"], below=-5, max_drop=3)
    assert lines[0] == "1 of 6 steps fall beyond their interval; 0 fall by more than 3 per 5 below -5."
    table = {tuple(l.split(" | ")[1:3]): l for l in lines if l.startswith("| awgn")}
    assert table[("cliff", "-5 -> 0")].endswith("| rises |")
    assert table[("cliff", "0 -> 5")].endswith("| fall |") and "| 15 |" in table[("cliff", "0 -> 5")]
    # mirrored in SNR, the "cliff" arm falls 2 dB from 0 to 5 (within 3 per 5) and 6 dB from 5 to 10 (a cliff)
    flipped = pd.DataFrame(rows).assign(snr_db=lambda d: -d["snr_db"]).query("variant == 'cliff'")
    lines = step_table(flipped, "snr_db", "psnr_db", "variant", ["channel"], below=6, max_drop=3)
    assert lines[0] == "2 of 3 steps fall beyond their interval; 1 fall by more than 3 per 5 below 6."
    assert any(l.startswith("| awgn | cliff | 5 -> 10") and l.endswith("| cliff |") for l in lines)
    assert any(l.startswith("| awgn | cliff | 0 -> 5") and "within 3" in l for l in lines)


def test_steps_entries_are_validated():
    from experiments.config import PlotSpec

    with pytest.raises(ValueError, match="a steps entry needs 'arm'"):
        PlotSpec(kind="steps", x="snr_db", y=["psnr_db"])
    with pytest.raises(ValueError, match="below and max_drop apply to kind 'steps'"):
        PlotSpec(x="snr_db", y=["psnr_db"], below=-5.0)


def test_every_arm_against_opta_leaves_fallbacks_out_and_uses_its_own_channel_uses():
    from experiments.config import PlotSpec
    from experiments.frontier import arms_against_opta
    from phy.jscc_bounds import nmse_db, opta_nmse

    spec = pd.DataFrame({"k": [8] * 8, "coefficient": range(8), "variance": [4.0, 2.0, 1.0, 1.0, .5, .5, .2, .1]})
    rows = pd.DataFrame({"variant": ["cheap"] * 3 + ["dear"] * 2, "channel": "awgn", "snr_db": 5.0,
                         "num_shared_steps": 8, "channel_uses_per_latent_value": [0.125] * 3 + [4.0] * 2,
                         "latent_mse": [0.5, 0.5, None, 0.01, 0.01]})
    table = {l.split(" | ")[0][2:]: l for l in arms_against_opta(rows, spec) if l.startswith("| cheap") or
             l.startswith("| dear")}
    var = spec["variance"].mean()
    assert "| 2 | " in table["cheap"]                                  # the fallback row (no latent_mse) is out
    assert f"{float(nmse_db(opta_nmse(spec['variance'], 4.0, 5.0))):.2f}" in table["dear"]   # OPTA at 4 uses
    assert f"{float(nmse_db(0.5 / var)):.2f}" in table["cheap"]
    with pytest.raises(ValueError, match="spectrum applies to kind 'latent_nmse'"):
        PlotSpec(x="snr_db", y=["psnr_db"], spectrum="s.csv")
