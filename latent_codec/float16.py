"""Raw IEEE float16 latents: what a naive system sends (16 bits per value)."""

from __future__ import annotations

import torch

from .base import FP16_MAX, DecodeResult, DigitalCodec, fp16_round, minmax_range, register_codec
from .bitops import bits_to_float16, float16_to_bits
from .header import DEFAULT_HEADER_REPETITION

__all__ = ["Float16Codec"]



@register_codec
class Float16Codec(DigitalCodec):
    """Raw IEEE float16: what a naive system sends (16 bits per value).

    One flipped exponent bit can turn ``1.0`` into ``65504`` or Inf/NaN; the
    decoder replaces non-finite values by the channel mean and clips to the
    channel's ``[min, max]`` carried in the header (float16, rounded outward),
    and counts them. With ``sanitize=False`` (the *raw* arm: what the paper's
    file hand-off does) the decoder returns the received float16 values as
    they are: no range clamp, no repair, and NaN/+-Inf pass through (the
    chain then replaces them by 0 and counts them in ``num_repaired``, so the
    UNet never sees them silently). Values beyond +-65504 are clipped before
    sending. LLRs are hard-decided (an MMSE over 65536 levels is not attempted).

    Parameters
    ----------
    bit_order : str
        ``"msb_first"`` (sign, e4..e0, m9..m0 per value), ``"bitplane"`` or
        ``"interleaved_by_importance"`` (order: e4, e3, e2, e1, sign, e0, m9..m0).
    bits_per_symbol : int or None
        Required with ``"interleaved_by_importance"``.
    header_repetition : int
    sanitize : bool
        Repair non-finite values and clamp to the header's range (default);
        False: return the received values unchanged (``num_repaired`` is 0).

    Example
    -------
    >>> codec = Float16Codec()
    >>> x = torch.randn(2, 4, 8, 8)
    >>> p = codec.compress(x)
    >>> p.bits.shape
    torch.Size([2, 4096])
    >>> bool((codec.decompress(p.bits, p.header_bits).latents == x.half().float()).all())
    True
    >>> raw = Float16Codec(sanitize=False)
    >>> bits = raw.compress(torch.ones(1, 1, 1, 1)).bits
    >>> bits[0, 1] = 1.0 - bits[0, 1]     # flip the top exponent bit: 1.0 -> 65536 overflows to inf
    >>> r = raw.decompress(bits, raw.compress(torch.ones(1, 1, 1, 1)).header_bits)
    >>> r.latents.flatten().tolist(), int(r.num_repaired)
    ([inf], 0)
    """

    name = "float16"

    def __init__(self, *, bit_order: str = "msb_first", bits_per_symbol: int | None = None,
                 header_repetition: int = DEFAULT_HEADER_REPETITION, sanitize: bool = True):
        super().__init__(16, bit_order=bit_order, bits_per_symbol=bits_per_symbol,
                         header_repetition=header_repetition)
        self.sanitize = bool(sanitize)

    def _finish(self, values, header, var=None):
        if self.sanitize:
            return super()._finish(values, header, var)
        shape = (header.batch_size, *header.shape)
        return DecodeResult(values.reshape(shape), torch.zeros((), dtype=torch.int64), header, noise_var=None)

    def _make_params(self, flat):
        low, high = minmax_range(flat)
        mean = fp16_round(flat.mean(-1)).clamp(low, high)
        return torch.stack([mean, low, high], -1)

    def _encode(self, flat, params):
        return float16_to_bits(flat.clamp(-FP16_MAX, FP16_MAX).reshape(flat.shape[0], -1))

    def _decode_hard(self, bits, params, n):
        vals = bits_to_float16(bits).to(torch.float32)
        return vals.reshape(bits.shape[0], params.shape[1], -1)

    def _ranges(self, params):
        return params[..., 1:2], params[..., 2:3], params[..., 0:1]

    def value_bit_importance(self):
        # squared error of a flip for |x| ~ 1 (exponent 15): sign 2^2; exponent bit k
        # multiplies by 2^(2^k): (2^(2^k) - 1)^2; mantissa bit j adds 2^-j.
        sign = [4.0]
        expo = [float((2.0 ** (2.0**k) - 1.0) ** 2) for k in range(4, -1, -1)]
        mant = [4.0 ** (-j) for j in range(1, 11)]
        return torch.tensor(sign + expo + mant, dtype=torch.float32)

    def _quantize_dequantize(self, flat, params):
        return flat.clamp(-FP16_MAX, FP16_MAX).half().float()
