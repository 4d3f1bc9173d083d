"""The digital latent codecs, gathered (each lives in its own module).

``float16`` (:mod:`latent_codec.float16`), ``uniform``
(:mod:`latent_codec.uniform`) and ``lloydmax`` (:mod:`latent_codec.lloyd_max`)
all follow :class:`latent_codec.base.DigitalCodec`: they send a
:class:`~latent_codec.base.BitPayload` and decode bits or LLRs.

Example
-------
>>> import torch
>>> x = torch.randn(1, 4, 8, 8)
>>> [type(c()).__name__ for c in DIGITAL_CODECS]
['Float16Codec', 'UniformQuantizerCodec', 'LloydMaxCodec']
"""

from __future__ import annotations

# isort: off  (the import order is the registry order: float16, uniform, lloydmax)
from .float16 import Float16Codec
from .uniform import UniformQuantizerCodec
from .lloyd_max import LloydMaxCodec
# isort: on

__all__ = ["DIGITAL_CODECS", "Float16Codec", "LloydMaxCodec", "UniformQuantizerCodec"]

DIGITAL_CODECS = (Float16Codec, UniformQuantizerCodec, LloydMaxCodec)
