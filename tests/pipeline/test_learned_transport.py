"""The learned JSCC transport: config, sigma_k, accounting, determinism, the chain end to end."""

from __future__ import annotations

import pytest
import torch

from latent_codec.learned import LearnedCodec
from phy import LinkConfig
from pipeline.chain import ChainConfig, ChainConfigError, CollaborativeChain, clear_memo
from pipeline.embedded.model import EmbeddedModelConfig, build_pipeline
from pipeline.transport import LearnedTransport, build_transport, learned_sigma

SHARED, RECEIVER = "a red apple on a wooden table", "a yellow lemon on a wooden table"
SMALL = {"width": 8, "depth": 1, "cond_dim": 8}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    codec = LearnedCodec({"bandwidth_ratio": 0.125, **SMALL}, seed=0)
    with torch.no_grad():  # away from the identity-like initialisation
        for p in codec.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    return codec.save_pretrained(tmp_path_factory.mktemp("jscc") / "jscc-rho0.125")


def _cfg(folder, **kw):
    base = dict(num_inference_steps=4, num_shared_steps=2, compare_alone=False, classify=False,
                transmission="learned", bandwidth_ratio=0.125, learned_model=str(folder), snr_db=5.0)
    return ChainConfig(**{**base, **kw})


def test_build_transport_reads_the_folder_and_the_schedulers_sigma(folder):
    t = build_transport(_cfg(folder, link={"channel": "rayleigh"}))
    assert isinstance(t, LearnedTransport) and t.codec.bandwidth_ratio == 0.125 and t.snr_db == 5.0
    assert t.sigma == pytest.approx(learned_sigma(4, 2)) and learned_sigma(4, 2) < learned_sigma(4, 0)
    with pytest.raises(ValueError, match="bandwidth_ratio=0.125, the config asks for bandwidth_ratio=0.5"):
        build_transport(_cfg(folder, bandwidth_ratio=0.5))


@pytest.mark.parametrize("kw, match", [({"scheduler": "ddim"}, "Euler-type scheduler"),
                                       ({"snr_db": None}, "snr_db is needed"),
                                       ({"bandwidth_ratio": 0.0}, "bandwidth_ratio")])
def test_bad_learned_configs_are_one_line(folder, kw, match):
    with pytest.raises(ChainConfigError, match=match):
        _cfg(folder, **kw)


def test_send_accounts_channel_uses_and_repeats_with_the_seed(folder):
    t = build_transport(_cfg(folder))
    x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    a = t.send(x, generator=torch.Generator().manual_seed(3))
    b = t.send(x, generator=torch.Generator().manual_seed(3))
    c = t.send(x, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.latents, b.latents) and not torch.equal(a.latents, c.latents)
    assert a.link_stats["channel_uses"] == 2 * 128  # rho C H W symbols per latent, no header
    assert a.payload_stats["bandwidth_ratio"] == 0.125
    assert {"bit_errors", "num_bits", "channel_uses", "header_corrupted", "num_repaired",
            "latent_noise_var", "noise_var_eff"} <= set(a.link_stats)
    assert {"payload_bits", "payload_body_bits", "payload_header_bits", "bits_per_latent_value"} <= \
        set(a.payload_stats)


def test_transport_rejects_bad_numbers(folder):
    codec = LearnedCodec.from_pretrained(folder)
    with pytest.raises(ValueError, match="sigma must be"):
        LearnedTransport(codec, LinkConfig(channel="awgn"), 5.0, sigma=-1.0)
    with pytest.raises(ValueError, match="snr_db must be"):
        LearnedTransport(codec, LinkConfig(channel="awgn"), float("nan"), sigma=1.0)


def test_the_chain_runs_learned_end_to_end(folder):
    clear_memo()
    pipe = build_pipeline(EmbeddedModelConfig.tiny(), seed=0)
    cfg = _cfg(folder, bandwidth_hz=1e6)
    rows = [r.to_row() for r in CollaborativeChain(pipe, cfg).run(SHARED, [RECEIVER], seed=1)]
    again = [r.to_row() for r in CollaborativeChain(pipe, cfg).run(SHARED, [RECEIVER], seed=1)]
    assert rows == again
    assert rows[0]["channel_uses"] == 128 and rows[0]["transmission"] == "learned"
    assert rows[0]["airtime_s"] == pytest.approx(128 / 1e6)
    # the chain's latent_mse (received vs sent) is the error the learned transport measured itself
    assert rows[0]["latent_mse"] == pytest.approx(rows[0]["latent_noise_var"], rel=1e-5)


def test_the_shipped_weights_load_by_default():
    t = build_transport(ChainConfig(num_inference_steps=20, num_shared_steps=8, transmission="learned",
                                    bandwidth_ratio=0.125, snr_db=10.0))
    assert t.codec.bandwidth_ratio == 0.125 and t.codec.scheduler_config["_class_name"]
    assert t.sigma == pytest.approx(learned_sigma(20, 8))
    assert int(t.codec.tx_batches) > 0  # trained: its average power is tracked
