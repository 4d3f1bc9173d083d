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
>>> out = codec.decompress(payload.bits, codec.parse_header(payload.header_bits, llrs=False))
>>> out.latents.shape, int(out.num_repaired.sum())
(torch.Size([1, 4, 16, 16]), 0)
"""

from .accounting import channel_uses, channel_uses_per_pixel
from .codecs import Float16Codec, LloydMaxCodec, UniformQuantizerCodec  # noqa: I001  (registry order)
from .analog import AnalogCodec, dct_matrix
from .base import (
    CODECS,
    BitPayload,
    DecodeResult,
    DigitalCodec,
    LatentCodec,
    Payload,
    SymbolPayload,
    register_codec,
)
from .bitops import (
    bits_to_float16,
    bits_to_int,
    float16_to_bits,
    hard_decision_bits,
    hard_decision_llrs,
    int_to_bits,
)
from .config import CodecConfig, codec_from_header, codec_kwargs_allowed, make_codec
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
    "BitPayload",
    "CODECS",
    "CodecConfig",
    "DEFAULT_HEADER_REPETITION",
    "DecodeResult",
    "DigitalCodec",
    "Float16Codec",
    "Header",
    "HeaderCorruptedError",
    "LatentCodec",
    "LloydMaxCodec",
    "Payload",
    "SymbolPayload",
    "UniformQuantizerCodec",
    "bitplane_permutation",
    "bits_to_float16",
    "bits_to_int",
    "channel_uses",
    "channel_uses_per_pixel",
    "codebook_bit_importance",
    "codec_from_header",
    "codec_kwargs_allowed",
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
    "register_codec",
    "sanitize",
]
