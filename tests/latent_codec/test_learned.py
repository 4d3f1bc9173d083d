"""The learned JSCC codec: power, shapes, learning, determinism, persistence, errors."""

import pytest
import torch

from latent_codec.learned import BANDWIDTH_RATIOS, LearnedCodec, LearnedCodecConfig

SMALL = dict(width=16, depth=1, cond_dim=16)


@pytest.mark.parametrize("rho", BANDWIDTH_RATIOS)
def test_power_and_shapes_for_every_ratio(rho):
    codec = LearnedCodec(LearnedCodecConfig(bandwidth_ratio=rho, **SMALL), seed=1)
    x = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(0)) * 5
    s = codec.encode(x, snr_db=torch.tensor([-5.0, 10.0, 25.0]), sigma=torch.tensor([0.1, 2.0, 14.0]))
    m = int(rho * 4 * 16 * 16)
    assert s.shape == (3, m) and s.dtype == torch.complex64 and codec.num_symbols == m
    assert torch.allclose(s.abs().pow(2).mean(), torch.tensor(1.0), atol=1e-5)  # average power 1 (batch)
    # inference uses the tracked training power (the first batch sets it): same batch, same power
    s_eval = codec.eval().encode(x, snr_db=torch.tensor([-5.0, 10.0, 25.0]), sigma=torch.tensor([0.1, 2.0, 14.0]))
    assert torch.allclose(s_eval, s, atol=1e-5) and int(codec.tx_batches) == 1
    codec.train()
    h = torch.randn(3, m, dtype=torch.complex64)
    out = codec.decode(s, torch.full((3, m), 0.3), 10.0, 1.0, channel_estimate=h)
    assert out.shape == x.shape and torch.isfinite(out).all()


def _batch():
    g = torch.Generator().manual_seed(3)
    return torch.randn(8, 4, 16, 16, generator=g) * torch.linspace(2, 0.2, 16).view(1, 1, 1, 16)


def test_one_optimiser_step_lowers_the_loss_on_a_fixed_batch():
    codec = LearnedCodec(LearnedCodecConfig(bandwidth_ratio=0.125, **SMALL), seed=0)
    x = _batch()
    opt = torch.optim.Adam(codec.parameters(), lr=1e-3)

    def loss():
        return (codec(x, 10.0, 1.0, generator=torch.Generator().manual_seed(5)) - x).pow(2).mean()

    before = loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss()
    assert float(after) < float(before.detach())


def test_same_seed_same_weights_other_seed_other_weights():
    cfg = LearnedCodecConfig(bandwidth_ratio=0.25, **SMALL)
    a, b, c = LearnedCodec(cfg, seed=7), LearnedCodec(cfg, seed=7), LearnedCodec(cfg, seed=8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_save_load_round_trip(tmp_path):
    codec = LearnedCodec(LearnedCodecConfig(bandwidth_ratio=0.0625, **SMALL), seed=2)
    with torch.no_grad():  # weights away from the initialisation, FiLM included
        for p in codec.parameters():
            p.add_(0.01 * torch.randn_like(p))
    codec.save_pretrained(tmp_path / "jscc")
    back = LearnedCodec.from_pretrained(tmp_path / "jscc")
    assert back.config == codec.config and not back.training  # eval mode: the tracked transmit power
    x = _batch()
    codec.eval()
    s = codec.encode(x, 3.0, 0.5)
    assert torch.equal(back.encode(x, 3.0, 0.5), s)
    assert torch.equal(back.decode(s, 0.5, 3.0, 0.5), codec.decode(s, 0.5, 3.0, 0.5))


@pytest.mark.parametrize("call, match", [
    (lambda c: LearnedCodec({"bandwidth_ratio": 0.3}), "8 \\* bandwidth_ratio"),
    (lambda c: LearnedCodec({"widht": 3}), "widht"),
    (lambda c: c.encode(torch.randn(1, 3, 16, 16), 0.0, 1.0), "latents must be"),
    (lambda c: c.encode(torch.randn(2, 4, 16, 16), torch.zeros(3), 1.0), "snr_db"),
    (lambda c: c.decode(torch.zeros(1, 5, dtype=torch.complex64), 1.0, 0.0, 1.0), "received"),
    (lambda c: LearnedCodec.from_pretrained("/nonexistent/jscc"), "no learned codec"),
])
def test_errors_are_one_line(call, match):
    codec = LearnedCodec(LearnedCodecConfig(**SMALL))
    with pytest.raises((ValueError, FileNotFoundError), match=match) as err:
        call(codec)
    assert "\n" not in str(err.value)
