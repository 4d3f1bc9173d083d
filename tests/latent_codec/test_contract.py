"""The codec contract, checked for every registered codec (modelled on diffusers' scheduler common tests).

A codec added with ``@register_codec`` is picked up here automatically; give
it a small constructor in ``KWARGS`` only if its defaults do not fit.
"""

from __future__ import annotations

import pytest
import torch

from latent_codec import (
    CODECS,
    BitPayload,
    CodecConfig,
    DigitalCodec,
    SymbolPayload,
    codec_from_header,
    make_codec,
)

KWARGS: dict[str, dict] = {"uniform": {"bits": 6}, "lloydmax": {"bits": 3}, "analog": {"num_bands": 4}}
NAMES = list(CODECS)


def _codec(name):
    return CODECS[name](**KWARGS.get(name, {}))


def _latents(seed=0, shape=(2, 4, 8, 8), std=3.0):
    return std * torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) + 0.5


def _body(payload):
    return payload.symbols if isinstance(payload, SymbolPayload) else payload.bits


def test_registry_holds_the_shipped_codecs():
    assert set(CODECS) >= {"float16", "uniform", "lloydmax", "analog"}


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_shapes_and_dtypes(name):
    codec, x = _codec(name), _latents()
    p = codec.compress(x)
    assert p.header_bits.dtype == torch.float32 and p.header_bits.shape[0] == 2
    assert set(p.header_bits.unique().tolist()) <= {0.0, 1.0}
    if isinstance(codec, DigitalCodec):
        assert isinstance(p, BitPayload) and p.bits.dtype == torch.float32
        assert p.bits.shape == (2, 4 * 8 * 8 * codec.bits_per_value) and p.num_body_bits == p.bits.shape[1]
        assert set(p.bits.unique().tolist()) <= {0.0, 1.0}
    else:
        assert isinstance(p, SymbolPayload) and p.symbols.dtype == torch.complex64 and p.num_body_bits == 0
    out = codec.decompress(_body(p), p.header)
    assert out.latents.dtype == torch.float32 and out.latents.shape == x.shape
    assert torch.equal(out.latents, codec.roundtrip(x))
    assert out.num_repaired.shape == (2,) and int(out.num_repaired.sum()) == 0
    low, high = codec.value_range(p.header)
    assert bool(((out.latents >= low) & (out.latents <= high)).all())


@pytest.mark.parametrize("name", NAMES)
def test_perfect_llrs_are_bit_exact_with_hard_bits(name):
    codec, x = _codec(name), _latents(1)
    p = codec.compress(x)
    if not isinstance(codec, DigitalCodec):
        with pytest.raises(ValueError, match="llrs must be False"):
            codec.decompress(_body(p), p.header, llrs=True)
        return
    hard = codec.decompress(p.bits, p.header).latents
    for magnitude in (60.0, float("inf")):
        llrs = (2 * p.bits - 1) * magnitude
        for est in codec.estimators:
            out = codec.decompress(llrs, p.header, llrs=True, estimator=est,
                                   generator=torch.Generator().manual_seed(0))
            assert torch.equal(out.latents, hard), (est, magnitude)


@pytest.mark.parametrize("name", NAMES)
def test_header_round_trip_from_bits_and_llrs(name):
    codec = _codec(name)
    p = codec.compress(_latents(2))
    for llrs, rx in ((False, p.header_bits), (True, (2 * p.header_bits - 1) * 3.0)):
        h = codec.parse_header(rx, llrs=llrs)
        assert h.matches(p.header) and torch.equal(h.params, p.header.params)
    if isinstance(codec, DigitalCodec):  # header LLRs are parsed explicitly, never guessed
        with pytest.raises(ValueError, match="parse_header"):
            codec.decompress(_body(p), p.header_bits, llrs=True)
    twin = codec_from_header(p.header, header_repetition=codec.header_repetition)
    assert type(twin) is type(codec)
    assert torch.equal(twin.decompress(_body(p), p.header).latents, codec.decompress(_body(p), p.header).latents)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name):
    codec, x = _codec(name), _latents(3)
    a, b = codec.compress(x), codec.compress(x.clone())
    assert torch.equal(_body(a), _body(b)) and torch.equal(a.header_bits, b.header_bits)
    if isinstance(codec, DigitalCodec):
        llrs = (2 * a.bits - 1) * 0.7 + 0.5 * torch.randn(a.bits.shape, generator=torch.Generator().manual_seed(9))
        for est in codec.estimators:
            r1 = codec.decompress(llrs, a.header, llrs=True, estimator=est, generator=torch.Generator().manual_seed(5))
            r2 = codec.decompress(llrs, a.header, llrs=True, estimator=est, generator=torch.Generator().manual_seed(5))
            assert torch.equal(r1.latents, r2.latents), est


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_differentiable_with_one_signature(name):
    codec = _codec(name)
    x = _latents(4).requires_grad_(True)
    y = codec(x, mode=None, noise_var=0.0, estimator=None, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_gives_a_clear_error(name):
    codec = _codec(name)
    with pytest.raises(ValueError, match="non-finite"):
        codec.compress(torch.full((1, 4, 8, 8), float("nan")))
    with pytest.raises(ValueError, match=r"\[batch, C, H, W\]"):
        codec.compress(torch.zeros(4, 8, 8))
    p = codec.compress(_latents(5))
    with pytest.raises(ValueError, match="header implies"):
        codec.decompress(_body(p)[:, :-1], p.header)
    with pytest.raises(ValueError, match="estimator must be one of"):
        codec.decompress(_body(p), p.header, estimator="psychic")
    with pytest.raises(ValueError, match="mode must be one of"):
        codec(_latents(), mode="psychic")
    if isinstance(codec, DigitalCodec):
        with pytest.raises(ValueError, match="noise_var"):
            codec.decompress(p.bits, p.header, noise_var=0.1)
        with pytest.raises(ValueError, match="noise_var must be 0"):
            codec(_latents(), noise_var=0.1)
        with pytest.raises(ValueError, match="needs an explicit generator"):
            codec.decompress(p.bits, p.header, llrs=True, estimator="sample")
        with pytest.raises(ValueError, match="crc_ok must be a torch.bool"):
            codec.decompress(p.bits, p.header, llrs=True, crc_ok=torch.ones(3, dtype=torch.bool))
    else:
        with pytest.raises(ValueError, match="crc_ok does not apply"):
            codec.decompress(_body(p), p.header, crc_ok=torch.ones(1, dtype=torch.bool))


@pytest.mark.parametrize("name", NAMES)
def test_config_is_derived_from_the_registry(name):
    cfg = CodecConfig(name=name, **KWARGS.get(name, {}))
    built = cfg.build()
    assert type(built) is CODECS[name]
    assert repr(built) == repr(make_codec(name, **cfg.codec_kwargs()))
    for est in built.estimators:
        assert CodecConfig(name=name, estimator=est).estimator == est
    wrong = next(e for c in CODECS.values() for e in c.estimators if e not in built.estimators)
    with pytest.raises(ValueError, match="estimator must be one of"):
        CodecConfig(name=name, estimator=wrong)
