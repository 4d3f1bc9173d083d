"""latent_codec: soft (MMSE) decoding from LLRs against hard decisions.

Channel model (simulated here, as phy would deliver it): BPSK over real AWGN,
bit 1 -> +1, ``y = s + n``, ``n ~ N(0, s2)`` with ``s2 = 1 / (2 Eb/N0)``;
``llr = 2 y / s2`` (positive means bit = 1).
"""

import math

import pytest
import torch

from latent_codec import Float16Codec, LloydMaxCodec, UniformQuantizerCodec

ESTIMATOR = {"soft": "mmse", "hard": "hard"}  # the old decompress_llrs modes


def bpsk_awgn_llrs(bits: torch.Tensor, ebno_db: float, gen: torch.Generator) -> torch.Tensor:
    s2 = 1.0 / (2.0 * 10 ** (ebno_db / 10))
    y = (2 * bits - 1) + math.sqrt(s2) * torch.randn(bits.shape, generator=gen)
    return 2 * y / s2


def test_one_bit_soft_estimate_closed_form():
    """1 bit: E[value] = mid + (range / 4) * tanh(llr / 2)."""
    codec = UniformQuantizerCodec(bits=1)
    x = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    p = codec.compress(x)
    llrs = torch.linspace(-6, 6, p.num_body_bits).reshape(1, -1)
    out = codec.decompress(llrs, p.header, llrs=True).latents
    low, high = p.header.params[..., 0], p.header.params[..., 1]
    expected = (0.5 * (low + high))[..., None, None] + ((high - low) / 4)[..., None, None] * torch.tanh(
        llrs.reshape(out.shape) / 2)
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("codec", [UniformQuantizerCodec(bits=6), LloydMaxCodec(bits=4)])
def test_soft_limits(codec):
    """No information -> the prior mean; certain LLRs -> the hard decision."""
    x = 3 * torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    p = codec.compress(x)
    blind = codec.decompress(torch.zeros_like(p.bits), p.header, llrs=True).latents
    if codec.name == "uniform":
        mid = p.header.params.mean(-1)[..., None, None]
    else:
        mid = p.header.params[..., 0][..., None, None]  # Gaussian prior is symmetric: the mean
    assert torch.allclose(blind, mid.expand_as(blind), atol=1e-4)
    certain = codec.decompress((2 * p.bits - 1) * 60, p.header, llrs=True).latents
    assert torch.allclose(certain, codec.roundtrip(x), atol=1e-5)


CODECS = {
    "uniform4": lambda: UniformQuantizerCodec(bits=4),
    "uniform8": lambda: UniformQuantizerCodec(bits=8),
    "lloydmax3": lambda: LloydMaxCodec(bits=3),
    "lloydmax4_uniform_prior": lambda: LloydMaxCodec(bits=4, soft_prior="uniform"),
}


@pytest.mark.parametrize("name", sorted(CODECS))
def test_soft_never_worse_than_hard_and_better_at_low_snr(name):
    """Paired test per value: d = err_soft^2 - err_hard^2. "Never worse in
    expectation": mean(d) is not significantly positive (below 3 standard
    errors) at any Eb/N0; "better at low SNR": soft MSE < 0.85 hard MSE."""
    codec = CODECS[name]()
    gen = torch.Generator().manual_seed(2)
    x = 12 * torch.randn(4, 4, 32, 32, generator=gen)  # an early-step latent
    p = codec.compress(x)
    for ebno_db in (-2.0, 2.0, 6.0, 10.0):
        d, soft, hard = [], 0.0, 0.0
        for _ in range(3):
            llrs = bpsk_awgn_llrs(p.bits, ebno_db, gen)
            es = (codec.decompress(llrs, p.header, llrs=True, estimator="mmse").latents - x) ** 2
            eh = (codec.decompress(llrs, p.header, llrs=True, estimator="hard").latents - x) ** 2
            d.append((es - eh).reshape(-1).double())
            soft, hard = soft + float(es.mean()), hard + float(eh.mean())
        d = torch.cat(d)
        se = float(d.std() / math.sqrt(d.numel()))
        assert float(d.mean()) <= 3 * se + 1e-12, (ebno_db, float(d.mean()), se)
        if ebno_db <= 2.0:
            assert soft < 0.85 * hard, (ebno_db, soft, hard)


def test_soft_estimate_is_the_conditional_mean():
    """Matched model (Gaussian data, Lloyd-Max with the Gaussian prior): the soft
    estimate is unbiased given itself -- E[x | x_soft] = x_soft -- which the hard
    one is not at low SNR (regression slope of x on the estimate ~ 1)."""
    codec = LloydMaxCodec(bits=3)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(8, 4, 32, 32, generator=gen)
    p = codec.compress(x)
    llrs = bpsk_awgn_llrs(p.bits, 0.0, gen)
    slopes = {}
    for mode in ("soft", "hard"):
        est = codec.decompress(llrs, p.header, llrs=True, estimator=ESTIMATOR[mode]).latents
        e = est - est.mean()
        slopes[mode] = float((e * (x - x.mean())).sum() / (e * e).sum())
    assert abs(slopes["soft"] - 1.0) < 0.05, slopes
    assert slopes["hard"] < 0.8, slopes


def test_float16_llrs_are_hard_decided():
    codec = Float16Codec()
    x = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(4))
    p = codec.compress(x)
    llrs = bpsk_awgn_llrs(p.bits, 4.0, torch.Generator().manual_seed(5))
    a = codec.decompress(llrs, p.header, llrs=True, estimator="mmse").latents
    b = codec.decompress((llrs > 0).float(), p.header).latents
    assert torch.equal(a, b)


@pytest.mark.parametrize("codec", [LloydMaxCodec(bits=3), UniformQuantizerCodec(bits=4)])
def test_soft_posterior_variance_is_calibrated(codec):
    """noise_var is the posterior variance of the reconstruction level: on average it equals
    the squared distance between the soft estimate and the noise-free reconstruction when
    the data match the decoder's model -- Gaussian data for Lloyd-Max (Gaussian level prior),
    uniformly distributed data for the uniform quantiser (independent equiprobable bits)."""
    gen = torch.Generator().manual_seed(6)
    if codec.name == "lloydmax":
        x = torch.randn(8, 4, 32, 32, generator=gen)
    else:
        x = 2 * torch.rand(8, 4, 32, 32, generator=gen) - 1
    p = codec.compress(x)
    clean = codec.roundtrip(x)
    for ebno_db in (0.0, 4.0):
        out = codec.decompress(bpsk_awgn_llrs(p.bits, ebno_db, gen), p.header, llrs=True)
        measured = float(((out.latents - clean) ** 2).mean())
        predicted = float(out.noise_var.mean())
        assert math.isclose(measured, predicted, rel_tol=0.05), (ebno_db, measured, predicted)
    assert codec.decompress(p.bits * 0 + 1, p.header, llrs=True, estimator="hard").noise_var is None
