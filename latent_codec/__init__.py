"""distdiff.latent_codec: diffusion latents <-> bits / complex symbols, robust to channel errors.

The source-coding half of the JSCC stack (see DESIGN.md). It never knows
which channel is used: its interface to ``phy`` is plain tensors -- bits
(float32 0/1 ``[B, n]``), LLRs (float32 ``[B, n]``, positive means bit = 1),
or complex symbols ``[B, m]`` with their effective noise variance.

Quick start
-----------
>>> import torch
>>> from latent_codec import make_codec
>>> codec = make_codec("uniform", bits=8)
>>> x = torch.randn(1, 4, 16, 16)
>>> payload = codec.compress(x)
>>> out = codec.decompress(payload.bits, payload.header_bits)
>>> out.latents.shape, int(out.num_repaired.sum())
(torch.Size([1, 4, 16, 16]), 0)
"""

from .accounting import channel_uses, channel_uses_per_pixel
from .analog import AnalogCodec, dct_matrix
from .bitops import (
    bits_to_float16,
    bits_to_int,
    float16_to_bits,
    hard_decision_bits,
    hard_decision_llrs,
    int_to_bits,
)
from .codecs import DecodeResult, Float16Codec, LatentCodec, LloydMaxCodec, Payload, UniformQuantizerCodec
from .config import CODEC_CLASSES, CodecConfig, codec_from_header, make_codec
from .errors import HeaderCorruptedError
from .header import DEFAULT_HEADER_REPETITION, Header, header_error_probability, parse_header
from .ordering import (
    bitplane_permutation,
    importance_permutation,
    inverse_permutation,
    qam_bit_reliability_classes,
)
from .quantizers import (
    codebook_bit_importance,
    gaussian_quantizer_mse,
    gaussian_uniform_loading,
    lloyd_max_gaussian,
)
from .sanitize import sanitize

__all__ = [
    "AnalogCodec",
    "CODEC_CLASSES",
    "CodecConfig",
    "DEFAULT_HEADER_REPETITION",
    "DecodeResult",
    "Float16Codec",
    "Header",
    "HeaderCorruptedError",
    "LatentCodec",
    "LloydMaxCodec",
    "Payload",
    "UniformQuantizerCodec",
    "bitplane_permutation",
    "bits_to_float16",
    "bits_to_int",
    "channel_uses",
    "channel_uses_per_pixel",
    "codebook_bit_importance",
    "codec_from_header",
    "dct_matrix",
    "float16_to_bits",
    "gaussian_quantizer_mse",
    "gaussian_uniform_loading",
    "hard_decision_bits",
    "hard_decision_llrs",
    "header_error_probability",
    "importance_permutation",
    "int_to_bits",
    "inverse_permutation",
    "lloyd_max_gaussian",
    "make_codec",
    "parse_header",
    "qam_bit_reliability_classes",
    "sanitize",
]
