"""Bit-level helpers: MSB-first packing of integers and float16 words,
bytes <-> bits, and robust hard decisions on received bits or LLRs.

Conventions shared with ``phy`` (see DESIGN.md): bits are ``torch.float32``
tensors of 0/1 with shape ``[batch, n]``; LLRs are ``float32 [batch, n]`` and a
POSITIVE LLR means bit = 1 (Sionna's convention),
``llr = log P(b=1 | y) - log P(b=0 | y)``.
"""

from __future__ import annotations

import torch

__all__ = [
    "int_to_bits",
    "bits_to_int",
    "float16_to_bits",
    "bits_to_float16",
    "bytes_to_bits",
    "bits_to_bytes",
    "hard_decision_bits",
    "hard_decision_llrs",
    "clean_llrs",
]

#: LLR magnitude used in place of +-inf (sigmoid(60) == 1 in float32).
LLR_CLAMP = 60.0


def _check_bits_per_value(bits_per_value: int, max_bits: int = 32) -> None:
    if not isinstance(bits_per_value, int) or not 1 <= bits_per_value <= max_bits:
        raise ValueError(
            f"bits_per_value must be an int in [1, {max_bits}], got {bits_per_value!r}"
        )


def int_to_bits(codes: torch.Tensor, bits_per_value: int) -> torch.Tensor:
    """Unsigned integers -> bits, MSB first.

    Parameters
    ----------
    codes : torch.Tensor, integer dtype, shape ``[..., N]``
        Values in ``[0, 2**bits_per_value)``.
    bits_per_value : int
        Bits per value, 1..32.

    Returns
    -------
    torch.Tensor, float32, shape ``[..., N * bits_per_value]``
        Value ``j`` occupies positions ``j*b .. j*b+b-1``, its MSB first.

    Example
    -------
    >>> int_to_bits(torch.tensor([[5, 1]]), 3)
    tensor([[1., 0., 1., 0., 0., 1.]])
    """
    _check_bits_per_value(bits_per_value)
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise ValueError(f"codes must have an integer dtype, got {codes.dtype}")
    shifts = torch.arange(bits_per_value - 1, -1, -1, device=codes.device, dtype=torch.int64)
    b = (codes.to(torch.int64).unsqueeze(-1) >> shifts) & 1
    return b.reshape(*codes.shape[:-1], codes.shape[-1] * bits_per_value).to(torch.float32)


def bits_to_int(bits: torch.Tensor, bits_per_value: int) -> torch.Tensor:
    """Bits (MSB first, exact 0/1) -> unsigned integers; inverse of :func:`int_to_bits`.

    Parameters
    ----------
    bits : torch.Tensor, shape ``[..., N * bits_per_value]``
        Hard bits 0/1 (any dtype; values > 0.5 count as 1).
    bits_per_value : int

    Returns
    -------
    torch.Tensor, int64, shape ``[..., N]``

    Example
    -------
    >>> bits_to_int(torch.tensor([[1., 0., 1., 0., 0., 1.]]), 3)
    tensor([[5, 1]])
    """
    _check_bits_per_value(bits_per_value)
    n = bits.shape[-1]
    if n % bits_per_value:
        raise ValueError(
            f"the last dimension of bits ({n}) is not a multiple of bits_per_value={bits_per_value}"
        )
    b = (bits > 0.5).to(torch.int64).reshape(*bits.shape[:-1], n // bits_per_value, bits_per_value)
    weights = 2 ** torch.arange(bits_per_value - 1, -1, -1, device=bits.device, dtype=torch.int64)
    return (b * weights).sum(-1)


def float16_to_bits(values: torch.Tensor) -> torch.Tensor:
    """IEEE-754 binary16 words -> 16 bits each, MSB (sign) first.

    Layout per value: ``[sign, e4..e0, m9..m0]``.

    Parameters
    ----------
    values : torch.Tensor, shape ``[..., N]``
        Any float dtype; converted to float16 (round to nearest even).

    Returns
    -------
    torch.Tensor, float32, shape ``[..., 16 N]``

    Example
    -------
    >>> float16_to_bits(torch.tensor([[1.0]]))
    tensor([[0., 0., 1., 1., 1., 1., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.]])
    """
    words = values.to(torch.float16).view(torch.int16).to(torch.int64) & 0xFFFF
    return int_to_bits(words, 16)


def bits_to_float16(bits: torch.Tensor) -> torch.Tensor:
    """16 bits per value (MSB first) -> float16 values (may be NaN/Inf).

    Parameters
    ----------
    bits : torch.Tensor, shape ``[..., 16 N]``

    Returns
    -------
    torch.Tensor, float16, shape ``[..., N]``

    Example
    -------
    >>> bits_to_float16(float16_to_bits(torch.tensor([[1.5, -2.0]])))
    tensor([[ 1.5000, -2.0000]], dtype=torch.float16)
    """
    words = bits_to_int(bits, 16)
    words = torch.where(words >= 32768, words - 65536, words)
    return words.to(torch.int16).view(torch.float16)


def bytes_to_bits(data: bytes) -> torch.Tensor:
    """Bytes -> float32 bits, each byte MSB first. Returns shape ``[8 len(data)]``.

    Example
    -------
    >>> bytes_to_bits(b"\\x81")
    tensor([1., 0., 0., 0., 0., 0., 0., 1.])
    """
    return int_to_bits(torch.tensor(list(data), dtype=torch.int64).unsqueeze(0), 8)[0]


def bits_to_bytes(bits: torch.Tensor) -> bytes:
    """Float bits ``[8 k]`` (MSB first per byte) -> ``bytes`` of length ``k``.

    Example
    -------
    >>> bits_to_bytes(bytes_to_bits(b"ok"))
    b'ok'
    """
    return bytes(bits_to_int(bits.reshape(1, -1).cpu(), 8)[0].tolist())


def hard_decision_bits(received: torch.Tensor) -> torch.Tensor:
    """Received (possibly noisy or corrupted) bits -> exact 0/1 float32.

    Values > 0.5 become 1; everything else, NaN included, becomes 0.

    Parameters
    ----------
    received : torch.Tensor, shape ``[batch, n]``

    Returns
    -------
    torch.Tensor, float32, shape ``[batch, n]``

    Example
    -------
    >>> hard_decision_bits(torch.tensor([[0.9, float("nan"), 0.0]]))
    tensor([[1., 0., 0.]])
    """
    return (received > 0.5).to(torch.float32)


def clean_llrs(llrs: torch.Tensor) -> torch.Tensor:
    """Make LLRs safe: NaN -> 0 (no information), +-inf and huge -> +-60.

    Parameters
    ----------
    llrs : torch.Tensor, shape ``[batch, n]``

    Returns
    -------
    torch.Tensor, float32, same shape, finite.

    Example
    -------
    >>> clean_llrs(torch.tensor([[float("nan"), float("inf"), -3.0]]))
    tensor([[ 0., 60., -3.]])
    """
    llrs = llrs.to(torch.float32)
    llrs = torch.nan_to_num(llrs, nan=0.0, posinf=LLR_CLAMP, neginf=-LLR_CLAMP)
    return llrs.clamp(-LLR_CLAMP, LLR_CLAMP)


def hard_decision_llrs(llrs: torch.Tensor) -> torch.Tensor:
    """LLRs (positive means bit = 1) -> hard bits, threshold at 0; NaN -> 0.

    Parameters
    ----------
    llrs : torch.Tensor, shape ``[batch, n]``

    Returns
    -------
    torch.Tensor, float32 0/1, shape ``[batch, n]``

    Example
    -------
    >>> hard_decision_llrs(torch.tensor([[2.3, -0.1, 0.0]]))
    tensor([[1., 0., 0.]])
    """
    return (llrs > 0).to(torch.float32)
