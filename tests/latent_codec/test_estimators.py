"""Decoding from LLRs: bits whose code block passed its CRC are exact; MMSE, hard and posterior sampling elsewhere."""

from __future__ import annotations

import pytest
import torch

from latent_codec import Float16Codec, LloydMaxCodec, UniformQuantizerCodec


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _weak_correct_llrs(bits, seed):
    """Correct signs, |LLR| in [0.5, 1.3]: what an LDPC decoder can output for a block that decoded."""
    mag = 0.5 + 0.8 * torch.rand(bits.shape, generator=_gen(seed))
    return (2 * bits - 1) * mag


@pytest.mark.parametrize("codec", [UniformQuantizerCodec(bits=8), LloydMaxCodec(bits=4),
                                   UniformQuantizerCodec(bits=4, bit_order="interleaved_by_importance",
                                                         bits_per_symbol=4)], ids=repr)
def test_blocks_whose_crc_held_are_decoded_exactly(codec):
    x = 2.0 * torch.randn(2, 4, 8, 8, generator=_gen(0))
    p = codec.compress(x)
    hard = codec.decompress(p.bits, p.header).latents
    llrs = _weak_correct_llrs(p.bits, 1)
    # the defect this fixes: MMSE on weak but correct LLRs damages a correct payload
    damaged = codec.decompress(llrs, p.header, llrs=True, estimator="mmse").latents
    assert not torch.equal(damaged, hard)
    ok = torch.ones_like(p.bits, dtype=torch.bool)
    for est in ("mmse", "sample", "hard"):
        out = codec.decompress(llrs, p.header, llrs=True, estimator=est, crc_ok=ok, generator=_gen(2))
        assert torch.equal(out.latents, hard), est
        assert out.noise_var is None or float(out.noise_var.abs().max()) == 0.0
    # one failed block (the second half of row 0, in transmitted order): only its values may differ
    ok[0, ok.shape[1] // 2:] = False
    out = codec.decompress(llrs, p.header, llrs=True, estimator="mmse", crc_ok=ok)
    reference = codec.decompress(llrs, p.header, llrs=True, estimator="mmse").latents
    exact = (out.latents == hard).reshape(2, -1)
    assert bool(exact[1].all())                          # row 1: every block passed
    pinned = torch.where(ok, (2 * p.bits - 1) * 60.0, llrs)  # known bits as certain LLRs
    assert torch.equal(out.latents, codec.decompress(pinned, p.header, llrs=True, estimator="mmse").latents)
    if codec.bit_order == "msb_first":  # a value's bits are contiguous: the passed half's values are exact
        assert 0.45 < float(exact[0].float().mean()) < 0.55
        soft_part = ~exact[0]
        assert torch.equal(out.latents.reshape(2, -1)[0][soft_part], reference.reshape(2, -1)[0][soft_part])

def test_posterior_sampling_keeps_the_spread_mmse_shrinks():
    """No information (LLR 0): MMSE returns the prior mean, a posterior sample spreads like the data."""
    x = torch.randn(4, 4, 16, 16, generator=_gen(3))
    for codec in (LloydMaxCodec(bits=4), UniformQuantizerCodec(bits=4, clip="auto")):
        p = codec.compress(x)
        zero = torch.zeros_like(p.bits)
        mmse = codec.decompress(zero, p.header, llrs=True, estimator="mmse").latents
        sample = codec.decompress(zero, p.header, llrs=True, estimator="sample", generator=_gen(4)).latents
        assert float(mmse.std()) < 0.15
        if isinstance(codec, LloydMaxCodec):  # Gaussian prior over levels: the sample's std matches the data's
            assert abs(float(sample.std()) / float(x.std()) - 1.0) < 0.1
        else:  # independent equiprobable bits: uniform over the range [mean -+ c std]
            assert float(sample.std()) > 1.0
        again = codec.decompress(zero, p.header, llrs=True, estimator="sample", generator=_gen(4)).latents
        other = codec.decompress(zero, p.header, llrs=True, estimator="sample", generator=_gen(5)).latents
        assert torch.equal(sample, again) and not torch.equal(sample, other)


def test_sampled_values_follow_the_llrs():
    """With informative LLRs the sample error is about twice the MMSE error (E|X - X'|^2 = 2 Var)."""
    codec = LloydMaxCodec(bits=3)
    x = torch.randn(8, 4, 16, 16, generator=_gen(6))
    p = codec.compress(x)
    s2 = 0.5
    llrs = 2 * ((2 * p.bits - 1) + s2**0.5 * torch.randn(p.bits.shape, generator=_gen(7))) / s2
    ref = codec.roundtrip(x)
    mmse = codec.decompress(llrs, p.header, llrs=True, estimator="mmse")
    smp = codec.decompress(llrs, p.header, llrs=True, estimator="sample", generator=_gen(8))
    e_mmse = float(((mmse.latents - ref) ** 2).mean())
    e_smp = float(((smp.latents - ref) ** 2).mean())
    assert 1.5 < e_smp / e_mmse < 2.6, (e_mmse, e_smp)
    assert torch.allclose(smp.noise_var, 2 * mmse.noise_var)


def test_float16_mmse_is_the_hard_decision_and_sampling_is_sanitised():
    codec = Float16Codec()
    x = torch.randn(1, 4, 8, 8, generator=_gen(9))
    p = codec.compress(x)
    llrs = _weak_correct_llrs(p.bits, 10)
    assert torch.equal(codec.decompress(llrs, p.header, llrs=True).latents, x.half().float())
    out = codec.decompress(torch.zeros_like(p.bits), p.header, llrs=True, estimator="sample", generator=_gen(1))
    low, high = codec.value_range(p.header)
    assert torch.isfinite(out.latents).all() and bool(((out.latents >= low) & (out.latents <= high)).all())
