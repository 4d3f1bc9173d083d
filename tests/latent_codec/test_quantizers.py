"""latent_codec: quantiser design (closed forms), codec round trips, bit-exactness,
gradients, float16 failure modes, accounting and the factory/config."""

import math

import pytest
import torch
from pydantic import ValidationError

from latent_codec import (
    AnalogCodec,
    CodecConfig,
    Float16Codec,
    LloydMaxCodec,
    SymbolPayload,
    UniformQuantizerCodec,
    bits_to_float16,
    channel_uses,
    channel_uses_per_pixel,
    codec_from_header,
    gaussian_quantizer_mse,
    gaussian_uniform_loading,
    lloyd_max_gaussian,
    make_codec,
    sanitize,
)

GEN = lambda s=0: torch.Generator().manual_seed(s)  # noqa: E731


def latents(batch=2, std=1.0, shape=(4, 16, 16), seed=0, mean=0.0):
    return mean + std * torch.randn(batch, *shape, generator=GEN(seed))


ALL_CODECS = [
    lambda: Float16Codec(),
    lambda: Float16Codec(bit_order="interleaved_by_importance", bits_per_symbol=6),
    lambda: UniformQuantizerCodec(bits=1),
    lambda: UniformQuantizerCodec(bits=8),
    lambda: UniformQuantizerCodec(bits=16, bit_order="bitplane"),
    lambda: UniformQuantizerCodec(bits=5, clip="auto", bit_order="interleaved_by_importance", bits_per_symbol=4),
    lambda: UniformQuantizerCodec(bits=7, clip=2.5),
    lambda: LloydMaxCodec(bits=1),
    lambda: LloydMaxCodec(bits=4, bit_order="bitplane"),
    lambda: LloydMaxCodec(bits=8, bit_order="interleaved_by_importance", bits_per_symbol=2),
]


# ----------------------------------------------------------------------------- closed forms


def test_lloyd_max_one_bit_closed_form():
    levels, thresholds, probs = lloyd_max_gaussian(1)
    e_abs = math.sqrt(2 / math.pi)  # E|X|
    assert torch.allclose(levels, torch.tensor([-e_abs, e_abs], dtype=torch.float64), atol=1e-12)
    assert thresholds.tolist() == [0.0]
    assert math.isclose(gaussian_quantizer_mse(levels, thresholds), 1 - 2 / math.pi, rel_tol=1e-12)
    assert torch.allclose(probs, torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_lloyd_max_matches_max_1960_table():
    levels, thresholds, _ = lloyd_max_gaussian(2)
    assert torch.allclose(levels[2:], torch.tensor([0.4528, 1.5104], dtype=torch.float64), atol=1e-4)
    assert math.isclose(thresholds[2].item(), 0.9816, abs_tol=1e-4)
    assert math.isclose(gaussian_quantizer_mse(levels, thresholds), 0.1175, abs_tol=1e-4)
    levels, thresholds, _ = lloyd_max_gaussian(3)
    assert math.isclose(gaussian_quantizer_mse(levels, thresholds), 0.03455, abs_tol=2e-5)
    assert math.isclose(levels[-1].item(), 2.152, abs_tol=1e-3)


@pytest.mark.parametrize("bits", [3, 6, 9])
def test_lloyd_max_is_stationary_and_beats_uniform(bits):
    levels, thresholds, probs = lloyd_max_gaussian(bits)
    # centroid condition: each level is the conditional mean of its cell
    inf = torch.tensor([math.inf], dtype=torch.float64)
    a, b = torch.cat([-inf, thresholds]), torch.cat([thresholds, inf])
    phi = lambda x: torch.where(torch.isinf(x), 0.0, torch.exp(-x * x / 2) / math.sqrt(2 * math.pi))  # noqa: E731
    assert torch.allclose(levels, (phi(a) - phi(b)) / probs, atol=1e-8)
    assert torch.allclose(thresholds, (levels[1:] + levels[:-1]) / 2)
    c = gaussian_uniform_loading(bits)
    n = 2**bits
    d = 2 * c / n
    uni = gaussian_quantizer_mse(-c + (torch.arange(n) + 0.5) * d, -c + torch.arange(1, n) * d)
    assert gaussian_quantizer_mse(levels, thresholds) < uni


def test_lloyd_max_high_rate_panter_dite():
    levels, thresholds, _ = lloyd_max_gaussian(10)
    d = gaussian_quantizer_mse(levels, thresholds)
    assert math.isclose(d, math.sqrt(3) * math.pi / 2 * 4.0**-10, rel_tol=0.02)


def test_uniform_loading_matches_max_1960_table():
    # Max (1960): optimum uniform step for N(0,1): 1.596, 0.9957, 0.5860, 0.3352 (1..4 bits)
    for bits, step in [(1, 1.596), (2, 0.9957), (3, 0.5860), (4, 0.3352)]:
        assert math.isclose(2 * gaussian_uniform_loading(bits) / 2**bits, step, rel_tol=1e-3)


@pytest.mark.parametrize("codec, theory", [
    (LloydMaxCodec(bits=3), 0.03455),
    (UniformQuantizerCodec(bits=3, clip="auto"), 0.03744),
    (LloydMaxCodec(bits=1), 1 - 2 / math.pi),
])
def test_codec_mse_on_gaussian_latents_matches_theory(codec, theory):
    x = latents(batch=8, std=13.0, shape=(4, 64, 64), mean=0.5)
    mse = float(((codec.roundtrip(x) - x) ** 2).mean()) / 13.0**2
    assert math.isclose(mse, theory, rel_tol=0.05)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 12, 16])
@pytest.mark.parametrize("std", [14.6, 1.0, 1e-3])
def test_uniform_roundtrip_within_half_step(bits, std):
    codec = UniformQuantizerCodec(bits=bits)
    x = latents(std=std, mean=0.3 * std)
    p = codec.compress(x)
    out = codec.decompress(p.bits, p.header_bits)
    low, high = p.header.params[..., 0], p.header.params[..., 1]
    assert torch.all(low <= x.amin((2, 3))) and torch.all(high >= x.amax((2, 3)))
    step = ((high - low) / 2**bits)[..., None, None]
    err = (out.latents - x).abs()
    assert torch.all(err <= step / 2 * (1 + 1e-3) + 1e-6 * x.abs())
    assert int(out.num_repaired.sum()) == 0


def test_range_follows_the_latent():
    """Early-step latents (std ~14) and late ones (std ~1) get their own ranges."""
    codec = UniformQuantizerCodec(bits=8)
    early, late = latents(std=14.0), latents(std=1.0, seed=1)
    pe, pl = codec.compress(early), codec.compress(late)
    width = lambda p: (p.header.params[..., 1] - p.header.params[..., 0]).mean()  # noqa: E731
    assert 8 < float(width(pe) / width(pl)) < 20
    rel = lambda x: float(((codec.roundtrip(x) - x) ** 2).mean() / x.var())  # noqa: E731
    assert math.isclose(rel(early), rel(late), rel_tol=0.3)


@pytest.mark.parametrize("make", ALL_CODECS)
def test_compress_decompress_bit_exact(make):
    codec = make()
    x = latents(std=5.0)
    p = codec.compress(x)
    assert p.bits.dtype == torch.float32 and set(p.bits.unique().tolist()) <= {0.0, 1.0}
    assert p.bits.shape == (2, p.num_values * codec.bits_per_value)
    assert p.bit_importance.shape == (p.num_body_bits,)
    assert torch.equal(codec.compress(x).bits, p.bits)  # deterministic
    out = codec.decompress(p.bits, p.header_bits)
    assert torch.equal(out.latents, codec.roundtrip(x))
    # hard decisions on perfect LLRs give the same bits
    out_llr = codec.decompress((2 * p.bits - 1) * 50.0, codec.parse_header(p.header_bits, llrs=False), llrs=True,
                               estimator="hard")
    assert torch.equal(out_llr.latents, out.latents)
    # re-encoding the reconstruction gives the reconstruction again (idempotent)
    if codec.name == "float16":
        assert torch.equal(out.latents, x.half().float())


def test_float16_input_latents_supported():
    codec = UniformQuantizerCodec(bits=10)
    x = latents(std=3.0).half()
    out = codec.decompress(*(lambda p: (p.bits, p.header))(codec.compress(x)))
    assert out.latents.dtype == torch.float32
    assert float((out.latents - x.float()).abs().max()) < 6 * 3.0 * 8 / 1024


def test_payload_bit_importance_orders():
    u = UniformQuantizerCodec(bits=4).value_bit_importance()
    assert u.tolist() == [64.0, 16.0, 4.0, 1.0]  # (2^k step)^2 in step^2
    f = Float16Codec().value_bit_importance()
    order = torch.argsort(-f).tolist()
    assert order[:6] == [1, 2, 3, 4, 0, 5]  # e4 e3 e2 e1, sign, e0, then mantissa
    lm = LloydMaxCodec(bits=3).value_bit_importance()
    assert torch.all(lm[:-1] > lm[1:])


# ----------------------------------------------------------------------------- float16 failure mode


def test_float16_exponent_flip_is_caught_and_counted():
    codec = Float16Codec()
    x = latents(batch=1, std=1.0)
    p = codec.compress(x)
    bits = p.bits.clone()
    bits[0, 1] = 1 - bits[0, 1]  # e4 of the first value: |x| ~ 1 -> ~2^16 or Inf/NaN
    raw = bits_to_float16(bits)[0, 0].float()
    assert not torch.isfinite(raw) or raw.abs() > 1000
    out = codec.decompress(bits, p.header)
    assert torch.isfinite(out.latents).all()
    assert int(out.num_repaired[0]) == 1
    low, high = p.header.params[0, :, 1], p.header.params[0, :, 2]
    assert low[0] <= out.latents[0, 0, 0, 0] <= high[0]


def test_sanitize_counts_and_fills():
    x = torch.tensor([[[1.0, float("nan")], [9.0, -float("inf")]]])
    out, n = sanitize(x, -2.0, 2.0, fill=0.5)
    assert out.tolist() == [[[1.0, 0.5], [2.0, 0.5]]] and n.tolist() == [3]
    with pytest.raises(ValueError, match="low must be <= high"):
        sanitize(x, 1.0, -1.0)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("make", ALL_CODECS)
def test_forward_straight_through_gradient(make):
    codec = make()
    x = latents(std=2.0).requires_grad_()
    y = codec(x)
    assert torch.allclose(y, codec.roundtrip(x.detach()), atol=1e-5 * 2.0 * 2**4)
    (y * torch.arange(y.numel()).reshape(y.shape)).sum().backward()
    assert torch.equal(x.grad, torch.arange(y.numel()).reshape(y.shape).float())


def test_forward_noise_mode_is_seeded_and_differentiable():
    codec = UniformQuantizerCodec(bits=4)
    x = latents(std=2.0).requires_grad_()
    a = codec(x, mode="noise", generator=GEN(7))
    b = codec(x, mode="noise", generator=GEN(7))
    assert torch.equal(a, b)
    a.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # minmax range: nothing clipped
    p = codec.compress(x.detach())
    step = ((p.header.params[..., 1] - p.header.params[..., 0]) / 16)[..., None, None]
    assert torch.all((a.detach() - x.detach()).abs() <= step / 2 + 1e-6)
    with pytest.raises(ValueError, match="mode must be one of"):
        LloydMaxCodec(bits=2)(x, mode="noise")


# ----------------------------------------------------------------------------- validation


def test_bad_inputs_give_clear_errors():
    codec = UniformQuantizerCodec(bits=4)
    with pytest.raises(ValueError, match="non-finite"):
        codec.compress(torch.tensor([[[[1.0, float("nan")]]]]))
    with pytest.raises(ValueError, match=r"\[batch, C, H, W\]"):
        codec.compress(torch.zeros(4, 8, 8))
    with pytest.raises(ValueError, match="bits must be an int in \\[1, 16\\]"):
        UniformQuantizerCodec(bits=17)
    with pytest.raises(ValueError, match="bits must be an int in \\[1, 10\\]"):
        LloydMaxCodec(bits=12)
    with pytest.raises(ValueError, match="clip must be"):
        UniformQuantizerCodec(bits=4, clip=-1.0)
    p = codec.compress(latents())
    with pytest.raises(ValueError, match="strip any PHY padding"):
        codec.decompress(torch.cat([p.bits, torch.zeros(2, 8)], 1), p.header)
    with pytest.raises(ValueError, match="estimator must be one of .'mmse', 'hard', 'sample'."):
        codec.decompress(p.bits, p.header, llrs=True, estimator="exact")


def test_make_codec_and_config():
    with pytest.raises(ValueError, match="allowed: float16, uniform, lloydmax, analog"):
        make_codec("jpeg")
    with pytest.raises(ValueError, match="does not take compression_ratio"):
        make_codec("uniform", compression_ratio=0.5)
    assert isinstance(make_codec("analog", compression_ratio=0.5), AnalogCodec)
    cfg = CodecConfig.model_validate({"name": "lloydmax", "bits": 3, "bit_order": "bitplane"})
    codec = cfg.build()
    assert isinstance(codec, LloydMaxCodec) and codec.bits_per_value == 3
    assert CodecConfig(name="uniform").build().bits_per_value == 8
    with pytest.raises(ValidationError, match="extra"):
        CodecConfig.model_validate({"name": "uniform", "bitz": 3})
    with pytest.raises(ValidationError, match="does not use compression_ratio"):
        CodecConfig(name="uniform", compression_ratio=0.5)
    with pytest.raises(ValidationError, match="bits must be in \\[1, 10\\]"):
        CodecConfig(name="lloydmax", bits=12)
    for cfg in (CodecConfig(name="analog", compression_ratio=0.25, estimator="unbiased"),
                CodecConfig(name="uniform", bits=4, clip=3.0, decoding="hard")):
        assert CodecConfig.model_validate(cfg.model_dump()) == cfg
        assert CodecConfig.model_validate_json(cfg.model_dump_json()) == cfg


@pytest.mark.parametrize("make", ALL_CODECS + [lambda: AnalogCodec(0.3, num_bands=4)])
def test_codec_from_header_decodes(make):
    codec = make()
    x = latents(std=3.0)
    p = codec.compress(x)
    twin = codec_from_header(p.header)
    assert type(twin) is type(codec)
    received = p.symbols if isinstance(p, SymbolPayload) else p.bits
    assert torch.equal(twin.decompress(received, p.header).latents, codec.decompress(received, p.header).latents)


# ----------------------------------------------------------------------------- accounting


def test_channel_use_accounting():
    p = UniformQuantizerCodec(bits=8).compress(latents(batch=1))
    assert p.num_bits == p.num_body_bits + p.num_header_bits == 8 * 1024 + p.num_header_bits
    assert channel_uses(p, 3.0) == math.ceil(8192 / 3) + math.ceil(p.num_header_bits / 3)
    assert channel_uses(p, 3.0, header_info_bits_per_channel_use=0.5) == math.ceil(8192 / 3) + 2 * p.num_header_bits
    assert math.isclose(channel_uses_per_pixel(p, 2.0, 128 * 128), channel_uses(p, 2.0) / 16384)
    a = AnalogCodec(compression_ratio=0.5).compress(latents(batch=1))
    assert channel_uses(a, 1.0) == 256 + a.num_header_bits
    with pytest.raises(ValueError, match="info_bits_per_channel_use"):
        channel_uses(p, 0.0)
