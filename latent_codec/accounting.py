"""Bandwidth accounting: channel uses of a payload and channel uses per pixel.

A *channel use* is one complex symbol. A digital payload of ``n`` bits sent
with a PHY configuration carrying ``r`` information bits per channel use
(``r = code_rate * bits_per_symbol``, e.g. 0.5 * 4 = 2 for rate-1/2 16-QAM)
needs ``ceil(n / r)`` channel uses. An analog payload uses one channel use per
symbol plus those of its (digital) header. The JSCC literature reports the
bandwidth ratio ``channel uses / source dimension``; pass ``pixels`` =
``H * W * 3`` of the image for that ratio (``k/n`` of deep JSCC), or
``H * W`` for channel uses per pixel.
"""

from __future__ import annotations

import math

__all__ = ["channel_uses", "channel_uses_per_pixel"]


def _check_rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} must be a finite float > 0 [bits/channel use], got {value!r}")
    return float(value)


def channel_uses(payload, info_bits_per_channel_use: float,
                 header_info_bits_per_channel_use: float | None = None) -> int:
    """Channel uses (complex symbols) per batch element needed by a payload.

    Parameters
    ----------
    payload : Payload
    info_bits_per_channel_use : float
        Information bits carried per channel use by the body's PHY mode
        (code rate x bits per symbol) [bits/channel use].
    header_info_bits_per_channel_use : float or None
        The same for the header if it is sent differently (default: the body's).

    Returns
    -------
    int
        ``ceil(body_bits / r) + ceil(header_bits / r_h)`` for digital payloads,
        ``num_symbols + ceil(header_bits / r_h)`` for analog ones.

    Example
    -------
    >>> from latent_codec import UniformQuantizerCodec
    >>> import torch
    >>> p = UniformQuantizerCodec(bits=8).compress(torch.randn(1, 4, 16, 16))
    >>> channel_uses(p, 2.0) == (8192 + p.num_header_bits) // 2
    True
    """
    r = _check_rate("info_bits_per_channel_use", info_bits_per_channel_use)
    rh = r if header_info_bits_per_channel_use is None else _check_rate(
        "header_info_bits_per_channel_use", header_info_bits_per_channel_use)
    header = math.ceil(payload.num_header_bits / rh)
    return payload.body_channel_uses(r) + header


def channel_uses_per_pixel(payload, info_bits_per_channel_use: float, pixels: int,
                           header_info_bits_per_channel_use: float | None = None) -> float:
    """Bandwidth ratio: channel uses per batch element divided by ``pixels``.

    Parameters
    ----------
    payload : Payload
    info_bits_per_channel_use : float
        [bits/channel use]
    pixels : int
        Source dimension of one image: ``H * W`` (per pixel) or ``H * W * 3``
        (per real source value, the JSCC ``k/n`` convention).
    header_info_bits_per_channel_use : float or None

    Returns
    -------
    float [channel uses / pixel]

    Example
    -------
    >>> from latent_codec import AnalogCodec
    >>> import torch
    >>> p = AnalogCodec().compress(torch.randn(1, 4, 64, 64))   # SD latent of a 512x512 image
    >>> round(channel_uses_per_pixel(p, 1e9, 512 * 512 * 3), 4)  # header ~free at a huge rate
    0.0104
    """
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 1:
        raise ValueError(f"pixels must be an int >= 1, got {pixels!r}")
    return channel_uses(payload, info_bits_per_channel_use, header_info_bits_per_channel_use) / pixels
