"""The JSCC training tool on a tiny random model: config errors, learning, bit-identical resume, export."""

import json
from pathlib import Path

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
    sd = jt.load_model(cfg)
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


# ------------------------------------------------------------------ receiver-side objectives (issue 12)
def _receiver(data):
    sd = jt.load_model(_cfg(Path("/nonexistent")))
    return sd, jt._Denoiser(sd, data, 7.5)


def test_unroll_is_the_split_runtime_with_the_same_noise(data):
    """The differentiable unroll reproduces SplitDiffusion.resume (Euler ancestral, CFG) given its sampler noise."""
    sd, den = _receiver(data)
    n_steps, k = len(data["timesteps"]), 2
    state = sd.shared(["a red apple on a wooden table"] * 2, n_steps, k, seed=[3, 4], guidance_scale=7.5)
    receivers = ["a green apple on a wooden table", "a red apple on a wooden table"]
    final = sd.resume(state, receivers).latents
    gens = []
    for g_state in state.generator_states:
        g = torch.Generator()
        g.set_state(g_state.clone())
        gens.append(g)
    # diffusers draws each sample's noise from its own generator, one step after the other
    noise = torch.stack([torch.stack([torch.randn((1, *state.latents.shape[1:]), generator=g)[0] for g in gens])
                         for _ in range(n_steps - k)], 1)
    with torch.no_grad():
        mine = den.unroll(state.latents, k, receivers, noise)
    assert torch.allclose(mine, final, atol=1e-4 * float(final.abs().max()))
    # truncated: one step, then the x0-prediction at step k + 1
    with torch.no_grad():
        one = den.unroll(state.latents, k, receivers, noise, max_steps=1)
        nxt = sd.resume(state, receivers, until=k + 1)
        x0 = den.x0(nxt.latents, torch.full((2,), k + 1), torch.full((2,), data["sigmas"][k + 1]), receivers)
    assert torch.allclose(one, x0, atol=1e-4 * float(x0.abs().max()))


@pytest.mark.parametrize("loss", [{"latent": 1.0, "latent_db": True},
                                  {"latent": 0.0, "denoiser": 1.0, "denoiser_samples": 4},
                                  {"latent": 0.0, "unrolled": 1.0, "unrolled_samples": 3},
                                  {"latent": 0.0, "unrolled": 1.0, "unrolled_samples": 2, "unrolled_steps": 1,
                                   "receiver_db": True}])
def test_one_step_lowers_the_loss_on_a_fixed_batch_and_reaches_the_encoder(data, loss):
    cfg = _cfg(Path("/nonexistent"), loss=loss)
    sd, den = _receiver(data)
    tr = data["train"]
    codec = jt._make_codec(cfg, tr)
    idx = torch.arange(8)
    batch = (tr["latents"][idx], tr["sigma"][idx], tr["step"][idx], [tr["receiver"][i] for i in idx.tolist()])
    variance = jt._step_variance(tr)
    links = jt._Channels(cfg.csi, cfg.device)

    def value():  # the same channel, SNR and noise draws every time
        return jt._loss(cfg, codec, links, den, batch, torch.Generator().manual_seed(1), variance)

    before, parts = value()
    term = next(t for t in ("unrolled", "denoiser", "latent") if t in parts)
    assert set(parts) == {name for name in ("latent", "denoiser", "unrolled") if loss.get(name, 0) > 0}
    before.backward()
    enc = [p for name, p in codec.named_parameters() if name.startswith("enc")]
    assert enc and all(p.grad is not None for p in enc) and sum(float(p.grad.abs().sum()) for p in enc) > 0
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in codec.parameters() if p.grad is not None))
    with torch.no_grad():  # one normalised gradient step (the loss scales differ by orders of magnitude)
        for p in codec.parameters():
            if p.grad is not None:
                p -= 1e-2 * p.grad / norm
        after, parts_after = value()
    assert float(after) < float(before.detach()) and parts_after[term] < parts[term]


def test_finetuning_starts_from_init(tmp_path, data):
    cfg = _cfg(tmp_path, steps=2)
    first = jt.train(cfg, data, progress=False)
    folder = first.save_pretrained(tmp_path / "init")
    tuned = jt.train(_cfg(tmp_path, "tuned", steps=1, lr=1e-12, init=str(folder)), data, progress=False)
    start = dict(first.named_parameters())  # (the buffers track the transmit power: they move on)
    assert all(torch.allclose(v, start[k], atol=1e-6) for k, v in tuned.named_parameters())
    assert not all(torch.allclose(v, start[k], atol=1e-6) for k, v in jt._make_codec(cfg, data["train"]).named_parameters())
    with pytest.raises(ValueError, match="codec config"):
        jt.train(_cfg(tmp_path, "other", steps=1, init=str(folder), codec={"bandwidth_ratio": 0.25, "width": 16,
                                                                            "depth": 1, "cond_dim": 16}), data,
                 progress=False)


def test_ablation_is_paired_and_writes_a_table(tmp_path, data):
    cfgs = []
    for name, loss in (("a", {"latent": 1.0}), ("b", {"latent": 1.0, "denoiser": 1.0, "denoiser_samples": 2})):
        cfg = _cfg(tmp_path, name, steps=2, loss=loss, dataset=str(tmp_path / "data.pt"))
        torch.save(data, tmp_path / "data.pt")
        jt.export(cfg, jt.train(cfg, data, progress=False), data, [], "cmd", 1.0)
        cfgs.append(cfg)
    from experiments.commands.train_jscc import ablation

    out = ablation(cfgs, str(tmp_path / "abl.md"), [("awgn", 10.0)], per_step=4)
    text = out.read_text()
    assert "| awgn | 10 | a | 8 |" in text and "| awgn | 10 | b | 8 |" in text and "| all | all | b | 8 |" in text
    # evaluating one codec twice gives identical per-state figures (channel and sampler noise fixed)
    sd = jt.load_model(cfgs[0])
    codec = LearnedCodec.from_pretrained(cfgs[0].out)
    r1 = jt.evaluate_receiver(cfgs[0], codec, data, sd, [("awgn", 10.0)], per_step=4)
    r2 = jt.evaluate_receiver(cfgs[0], codec, data, sd, [("awgn", 10.0)], per_step=4)
    assert (r1[("awgn", 10.0)]["psnr_db"] == r2[("awgn", 10.0)]["psnr_db"]).all()
    assert r1[("awgn", 10.0)]["psnr_db"].shape == (8,)


def test_bad_receiver_loss_config_is_one_line(tmp_path):
    for over, match in (({"loss": {"unrolled": -1.0}}, "unrolled"), ({"loss": {"unrolled_samples": 0}}, "unrolled_samples"),
                        ({"loss": {"latent": 0.0, "unrolled": 0.0}}, "at least one")):
        with pytest.raises(ValueError, match=match) as err:
            _cfg(tmp_path, **over)
        assert "\n" not in str(err.value)
    assert _cfg(tmp_path, loss={"latent": 0.0, "unrolled": 1.0}).loss.unrolled == 1.0


def test_same_seed_same_weights(tmp_path, data):
    a = jt.train(_cfg(tmp_path, "s1", steps=3, loss={"latent": 1.0, "unrolled": 1.0, "unrolled_samples": 1}), data,
                 progress=False)
    b = jt.train(_cfg(tmp_path, "s2", steps=3, loss={"latent": 1.0, "unrolled": 1.0, "unrolled_samples": 1}), data,
                 progress=False)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


SHIPPED = sorted(p for p in (Path(jt.__file__).parents[1] / "models").glob("jscc-rho*") if p.is_dir())


@pytest.fixture(scope="module")
def shipped_model():
    return jt.load_model(jt.load_config_dict({"workdir": "w", "out": "o"}))


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_the_shipped_weights_give_their_cards_figure(folder, shipped_model):
    """The card's held-out latent NMSE at the first k and 10 dB AWGN, recomputed (held-out states rebuilt, ~10 s)."""
    card = json.loads((folder / "evaluation.json").read_text())
    cfg = jt.load_config_dict({**card["config"], "eval_snr_db": [10.0]})
    row = next(r for r in card["evaluation"] if r["channel"] == "awgn" and r["snr_db"] == 10.0)
    codec = LearnedCodec.from_pretrained(folder)
    assert codec.bandwidth_ratio == cfg.codec.bandwidth_ratio and not codec.training  # tracked transmit power
    got = jt.evaluate(cfg, codec, jt.heldout_states(cfg, shipped_model, row["k"]))[0]
    assert got["n"] == row["n"]
    assert row["learned_ci95_db"][0] <= got["learned_nmse_db"] <= row["learned_ci95_db"][1]


def test_a_missing_init_codec_is_one_line_before_any_work(tmp_path, monkeypatch):
    """A fine-tuning config whose pretrained codec was never trained here says which config makes it."""
    cfg = _cfg(tmp_path, init=str(tmp_path / "never-trained"))
    monkeypatch.setattr(jt, "load_model", lambda *_: pytest.fail("the model was loaded before the check"))
    with pytest.raises(ValueError, match="init: .*never-trained holds no codec .*train_jscc\\*_pretrain.yaml"):
        jt.run(cfg, progress=False)


def test_init_config_trains_phase_one_first_so_one_command_reproduces_both(tmp_path):
    import yaml

    phase1 = _cfg(tmp_path, "phase1", steps=3, eval_snr_db=[10.0])
    (tmp_path / "phase1.yaml").write_text(yaml.safe_dump(phase1.model_dump(mode="json")))
    phase2 = _cfg(tmp_path, "phase2", steps=3, eval_snr_db=[10.0], init=phase1.out,
                  init_config=str(tmp_path / "phase1.yaml"))
    out = jt.run(phase2, progress=False)
    assert (Path(phase1.out) / "config.json").is_file() and (out / "config.json").is_file()
    assert f"starting from the codec in `{phase1.out}`" in (out / "README.md").read_text()
    wrong = _cfg(tmp_path, "phase3", init=str(tmp_path / "elsewhere"), init_config=str(tmp_path / "phase1.yaml"))
    with pytest.raises(ValueError, match="init_config: .*phase1.yaml writes .*phase1-out, not init .*elsewhere"):
        jt.run(wrong, progress=False)
