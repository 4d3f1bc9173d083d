"""The JSCC training tool on a tiny random model: config errors, learning, bit-identical resume, export."""

import json

import pytest
import torch

from latent_codec.learned import LearnedCodec
from pipeline.embedded import jscc_training as jt


def _cfg(tmp_path, name="run", **over):
    base = {"model": "tiny", "workdir": str(tmp_path / name), "out": str(tmp_path / f"{name}-out"), "seed": 0,
            "codec": {"bandwidth_ratio": 0.5, "width": 16, "depth": 1, "cond_dim": 16},
            "data": {"num_inference_steps": 6, "shared_steps": [0, 1], "train_seeds": 2, "heldout_seeds": 8,
                     "heldout_every": 5, "max_prompts": 10, "guidance_scale": 1.0},
            "steps": 50, "batch_size": 8, "lr": 3e-3, "checkpoint_seconds": 0.0,
            "eval_snr_db": [0.0, 10.0]}
    base.update(over)
    return jt.load_config_dict(base)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jscc")
    return jt.build_dataset(_cfg(tmp))


def test_dataset_splits_prompts_and_seeds(data):
    tr, he = data["train"], data["heldout"]
    assert tr["latents"].shape == (32, 4, 16, 16) and he["latents"].shape == (32, 4, 16, 16)
    assert not set(tr["sender"]) & set(he["sender"])  # held-out prompts
    assert sorted(set(tr["step"].tolist())) == [0, 1]
    assert torch.equal(tr["sigma"][tr["step"] == 1].unique(), torch.tensor([data["sigmas"][1]]))


def _heldout_mse(cfg, codec, data):
    rows = jt.evaluate(cfg, codec, data)
    return sum(10 ** (r["learned_nmse_db"] / 10) for r in rows) / len(rows), rows


def test_fifty_steps_beat_the_initialisation_on_heldout_data(tmp_path, data):
    cfg = _cfg(tmp_path)
    init = jt._make_codec(cfg, data["train"]).eval()
    before, _ = _heldout_mse(cfg, init, data)
    trained = jt.train(cfg, data, progress=False)
    after, rows = _heldout_mse(cfg, trained, data)
    # the initialisation is already the analog-like linear scheme (NMSE ~0.6 here, not 1): 50 steps gain ~0.5 dB
    assert after < 0.95 * before
    assert {"opta_nmse_db", "analog_nmse_db", "n"} <= set(rows[0]) and rows[0]["n"] == 16


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, data):
    a = jt.train(_cfg(tmp_path, "a", steps=6), data, progress=False)
    cfg_b = _cfg(tmp_path, "b", steps=6)
    jt.train(cfg_b, data, progress=False, stop_after=4)
    assert torch.load(tmp_path / "b" / jt.CHECKPOINT, weights_only=False)["step"] == 4
    b = jt.train(cfg_b, data, progress=False)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(ValueError, match="another configuration"):
        jt.train(_cfg(tmp_path, "b", steps=6, lr=1e-2), data, progress=False)


def test_denoiser_objective_trains_and_export_writes_a_card(tmp_path, data):
    cfg = _cfg(tmp_path, loss={"latent": 0.0, "denoiser": 1.0}, steps=3, channels=["awgn", "rayleigh"])
    sd = jt._load_model(cfg)
    codec = jt.train(cfg, data, sd, progress=False)
    hist = torch.load(tmp_path / "run" / jt.CHECKPOINT, weights_only=False)["history"]
    assert len(hist) == 3 and all("denoiser" in h and h["denoiser"] > 0 for h in hist)
    out = jt.export(cfg, codec, data, jt.evaluate(cfg, codec, data), "cmd", 1.0)
    assert "| k | SNR" in (out / "README.md").read_text()
    assert json.loads((out / "evaluation.json").read_text())["heldout_states"] == 32
    back = LearnedCodec.from_pretrained(out)
    assert all(torch.equal(v, codec.state_dict()[k]) for k, v in back.state_dict().items())


@pytest.mark.parametrize("over, match", [
    ({"stepz": 1}, "unknown parameter 'stepz'"),
    ({"channels": ["wifi"]}, "channels"),
    ({"snr_db_range": [10, 0]}, "snr_db_range"),
    ({"loss": {"latent": 0.0, "denoiser": 0.0}}, "at least one"),
    ({"codec": {"bandwidth_ratio": 0.5, "width": 16, "depht": 1}}, "depht"),
])
def test_bad_config_is_one_line(tmp_path, over, match):
    with pytest.raises(ValueError, match=match) as err:
        _cfg(tmp_path, **over)
    assert "\n" not in str(err.value)


def test_cli_reports_a_bad_config(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("workdir: w\nout: o\nsteps: -1\n")
    assert jt.main([str(path)]) == 2
    assert "steps" in capsys.readouterr().err
