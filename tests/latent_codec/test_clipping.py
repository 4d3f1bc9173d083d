"""Digital codecs clip values beyond the float16 range and count them (issue 10)."""

import pytest
import torch

from latent_codec import make_codec
from latent_codec.base import FP16_MAX


@pytest.mark.parametrize("name", ["float16", "uniform", "lloydmax"])
def test_values_beyond_65504_are_clipped_and_counted(name):
    x = torch.randn(2, 4, 8, 8)
    x[0, 0, 0, :3] = torch.tensor([1e6, -7e4, 65504.0])  # two beyond the range, one at it
    x[1, 2, 3, 4] = 3e38
    codec = make_codec(name)
    payload = codec.compress(x)
    assert payload.num_clipped.dtype == torch.int64
    assert payload.num_clipped.tolist() == [2, 1]
    out = codec.decompress(payload.bits, codec.parse_header(payload.header_bits))
    assert bool(torch.isfinite(out.latents).all())
    if name != "lloydmax":  # Lloyd-Max decodes mean + std * level, which may exceed the range
        assert bool(out.latents.abs().max() <= FP16_MAX)


def test_ordinary_latents_clip_nothing():
    payload = make_codec("uniform", bits=4).compress(torch.randn(3, 4, 8, 8))
    assert payload.num_clipped.tolist() == [0, 0, 0]
