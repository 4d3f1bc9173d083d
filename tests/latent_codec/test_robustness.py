"""latent_codec: property-based robustness (hypothesis).

Whatever the channel does to the body -- random bit flips at any BER from
1e-6 to 0.5, LLRs with NaN/Inf, garbage symbols -- every codec returns finite
float32 latents inside the range written in its header. A corrupted header is
either rejected (HeaderCorruptedError) or recovered exactly, never silently
changed.
"""

import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latent_codec import (
    AnalogCodec,
    Float16Codec,
    HeaderCorruptedError,
    LloydMaxCodec,
    UniformQuantizerCodec,
    parse_header,
)

ESTIMATOR = {"soft": "mmse", "hard": "hard"}  # the old decompress_llrs modes

DIGITAL = [
    lambda: Float16Codec(),
    lambda: Float16Codec(bit_order="interleaved_by_importance", bits_per_symbol=4),
    lambda: UniformQuantizerCodec(bits=1),
    lambda: UniformQuantizerCodec(bits=3, clip="auto"),
    lambda: UniformQuantizerCodec(bits=8),
    lambda: UniformQuantizerCodec(bits=8, clip=2.0, bit_order="bitplane"),
    lambda: UniformQuantizerCodec(bits=16, bit_order="interleaved_by_importance", bits_per_symbol=8),
    lambda: LloydMaxCodec(bits=1),
    lambda: LloydMaxCodec(bits=4, bit_order="interleaved_by_importance", bits_per_symbol=6),
    lambda: LloydMaxCodec(bits=8, soft_prior="uniform"),
]
_CODECS = {}


def codec_of(i):
    if i not in _CODECS:
        _CODECS[i] = DIGITAL[i]()
    return _CODECS[i]


PROFILE = settings(max_examples=60, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow])


@st.composite
def latent_tensors(draw):
    """Latents of any scale (1e-4 .. 1e4), offset, shape; some constant channels or outliers."""
    b = draw(st.integers(1, 2))
    c = draw(st.integers(1, 4))
    h = draw(st.integers(1, 6))
    w = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    log_scale = draw(st.floats(-4, 4))
    offset = draw(st.floats(-3, 3))
    kind = draw(st.sampled_from(["gauss", "constant", "outliers", "half"]))
    g = torch.Generator().manual_seed(seed)
    scale = 10.0**log_scale
    x = scale * (torch.randn(b, c, h, w, generator=g) + offset)
    if kind == "constant":
        x[:, 0] = scale * offset
    elif kind == "outliers":
        x.view(-1)[0] *= 1000.0
    elif kind == "half":
        x = x.half()
    return x, seed


def ber_strategy():
    return st.floats(-6.0, math.log10(0.5)).map(lambda e: 10.0**e)


def _assert_clean(codec, out, header, x):
    lat = out.latents
    assert lat.dtype == torch.float32 and lat.shape == x.shape
    assert torch.isfinite(lat).all()
    low, high = codec.value_range(header)
    assert torch.isfinite(low).all() and torch.isfinite(high).all()
    assert torch.all(lat >= low) and torch.all(lat <= high)
    assert out.num_repaired.dtype == torch.int64 and torch.all(out.num_repaired >= 0)
    assert torch.all(out.num_repaired <= x[0].numel())


@PROFILE
@given(codec_idx=st.integers(0, len(DIGITAL) - 1), data=latent_tensors(), ber=ber_strategy())
def test_random_bit_flips_never_produce_nan_inf_or_out_of_range(codec_idx, data, ber):
    x, seed = data
    codec = codec_of(codec_idx)
    p = codec.compress(x)
    g = torch.Generator().manual_seed(seed + 1)
    flips = (torch.rand(p.bits.shape, generator=g) < ber).to(torch.float32)
    received = (p.bits + flips) % 2
    _assert_clean(codec, codec.decompress(received, p.header_bits), p.header, x)


@PROFILE
@given(codec_idx=st.integers(0, len(DIGITAL) - 1), data=latent_tensors(),
       ebno_db=st.floats(-10.0, 15.0), bad_fraction=st.floats(0.0, 0.2))
def test_noisy_and_broken_llrs_never_produce_nan_inf_or_out_of_range(codec_idx, data, ebno_db, bad_fraction):
    x, seed = data
    codec = codec_of(codec_idx)
    p = codec.compress(x)
    g = torch.Generator().manual_seed(seed + 2)
    s2 = 1.0 / (2.0 * 10 ** (ebno_db / 10))
    llrs = 2 * ((2 * p.bits - 1) + math.sqrt(s2) * torch.randn(p.bits.shape, generator=g)) / s2
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e38, -1e38])
    mask = torch.rand(llrs.shape, generator=g) < bad_fraction
    pick = torch.randint(0, len(special), llrs.shape, generator=g)
    llrs = torch.where(mask, special[pick], llrs)
    for mode in ("soft", "hard"):
        _assert_clean(codec, codec.decompress(llrs, p.header, llrs=True, estimator=ESTIMATOR[mode]), p.header, x)


@PROFILE
@given(codec_idx=st.integers(0, len(DIGITAL) - 1), data=latent_tensors())
def test_arbitrary_received_values_are_tolerated(codec_idx, data):
    """Received 'bits' that are not 0/1 at all (NaN, Inf, 0.7, -3) are read as hard bits."""
    x, seed = data
    codec = codec_of(codec_idx)
    p = codec.compress(x)
    g = torch.Generator().manual_seed(seed + 3)
    junk = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.7, -3.0, 0.5, 1.0, 0.0])
    received = junk[torch.randint(0, len(junk), p.bits.shape, generator=g)]
    _assert_clean(codec, codec.decompress(received, p.header), p.header, x)


@PROFILE
@given(data=latent_tensors(), ratio=st.floats(0.05, 1.0), log_nv=st.floats(-6, 6),
       corrupt=st.floats(0.0, 0.3), num_bands=st.integers(1, 16))
def test_analog_garbage_symbols_never_produce_nan_inf_or_out_of_range(data, ratio, log_nv, corrupt, num_bands):
    x, seed = data
    codec = AnalogCodec(ratio, num_bands=num_bands)
    p = codec.compress(x)
    assert torch.isfinite(p.symbols).all()
    g = torch.Generator().manual_seed(seed + 4)
    nv = torch.full(p.symbols.shape, 10.0**log_nv)
    z = torch.randn(*p.symbols.shape, 2, generator=g)
    y = p.symbols + torch.complex(z[..., 0], z[..., 1]) * (nv / 2).sqrt()
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30, 0.0])
    mask = torch.rand(y.shape, generator=g) < corrupt
    bad = special[torch.randint(0, len(special), y.shape, generator=g)]
    y = torch.where(mask, torch.complex(bad, bad.flip(-1)), y)
    nv = torch.where(torch.rand(nv.shape, generator=g) < corrupt, special[0], nv)
    for estimator in ("mmse", "unbiased"):
        _assert_clean(codec, codec.decompress(y, p.header, noise_var=nv, estimator=estimator), p.header, x)


@PROFILE
@given(codec_idx=st.integers(0, len(DIGITAL) - 1), data=latent_tensors(), ber=ber_strategy(),
       repetition=st.sampled_from([1, 3, 5]))
def test_header_is_recovered_exactly_or_rejected(codec_idx, data, ber, repetition):
    x, seed = data
    codec = codec_of(codec_idx)
    p = codec.compress(x)
    hb = p.header.to_bits(repetition)
    g = torch.Generator().manual_seed(seed + 5)
    noisy = (hb + (torch.rand(hb.shape, generator=g) < ber).float()) % 2
    try:
        h = parse_header(noisy, repetition=repetition)
    except HeaderCorruptedError:
        return
    assert h.matches(p.header) and torch.equal(h.params, p.header.params)
