"""Bit orders of the body and unequal error protection (UEP) by bit mapping.

The quantisers produce their bits value-major, MSB first: value ``v`` occupies
positions ``v*b .. v*b+b-1``. A *permutation* ``perm`` of length ``n`` then
gives the order on the wire: ``sent = body[:, perm]`` and
``body = sent[:, inverse_permutation(perm)]``.

Orders
------
``msb_first``
    The identity (value-major, MSB first).
``bitplane``
    Plane-major: all MSBs first, then all second bits, ... Each importance
    class is a contiguous block, so a PHY can code each block at its own
    rate (UEP by code rate).
``interleaved_by_importance``
    Bits sorted by importance are placed on the most reliable label
    positions of Gray-labelled QAM symbols (UEP by bit level). In Sionna's
    QAM (``sionna.phy.mapping.qam``, 3GPP 38.211 §5.1) label bit 0 sets the
    sign of the in-phase and bit 1 the sign of the quadrature PAM; bits
    2, 3 the next level, and so on: positions ``2k`` and ``2k+1`` form
    reliability class ``k`` (0 strongest). This assumes the PHY maps the
    body to symbols in order, ``bits_per_symbol`` at a time, without an
    interleaver in between (uncoded, or a code that keeps positions).
"""

from __future__ import annotations

import torch

__all__ = [
    "qam_bit_reliability_classes",
    "importance_permutation",
    "bitplane_permutation",
    "inverse_permutation",
]


def _check_bits_per_symbol(bits_per_symbol: int) -> None:
    if not isinstance(bits_per_symbol, int) or bits_per_symbol < 1 or bits_per_symbol > 16 or (
        bits_per_symbol > 1 and bits_per_symbol % 2
    ):
        raise ValueError(
            f"bits_per_symbol must be 1 or an even int in [2, 16] (Gray QAM), got {bits_per_symbol!r}"
        )


def qam_bit_reliability_classes(bits_per_symbol: int) -> torch.Tensor:
    """Reliability class of each label position of a Gray QAM symbol (0 = most reliable).

    Parameters
    ----------
    bits_per_symbol : int
        1 (BPSK) or even (4-QAM, 16-QAM, ...).

    Returns
    -------
    torch.Tensor, int64, shape ``[bits_per_symbol]``
        ``position // 2``.

    Example
    -------
    >>> qam_bit_reliability_classes(6)
    tensor([0, 0, 1, 1, 2, 2])
    """
    _check_bits_per_symbol(bits_per_symbol)
    return torch.arange(bits_per_symbol, dtype=torch.int64) // 2


def importance_permutation(importance: torch.Tensor, bits_per_symbol: int) -> torch.Tensor:
    """Permutation that puts the most important bits on the most reliable QAM label positions.

    Slots ``j = 0..n-1`` of the sent stream belong to symbol ``j // m``,
    label position ``j % m`` (``m = bits_per_symbol``). Slots are ranked by
    (reliability class, j) and bits by (-importance, index); the i-th bit
    goes to the i-th slot. Ties keep the original order, so the result is
    deterministic.

    Parameters
    ----------
    importance : torch.Tensor, shape ``[n]``
        Importance of each body bit (larger = more important).
    bits_per_symbol : int

    Returns
    -------
    torch.Tensor, int64, shape ``[n]``
        ``perm`` with ``sent = body[:, perm]``.

    Example
    -------
    >>> importance_permutation(torch.tensor([4., 1., 4., 1.]), 4)  # two 2-bit values, 16-QAM
    tensor([0, 2, 1, 3])
    """
    _check_bits_per_symbol(bits_per_symbol)
    if importance.ndim != 1:
        raise ValueError(f"importance must have shape [n], got {list(importance.shape)}")
    n = importance.shape[0]
    cls = qam_bit_reliability_classes(bits_per_symbol)[torch.arange(n) % bits_per_symbol]
    slot_order = torch.sort(cls, stable=True).indices
    bit_order = torch.sort(-importance.detach().cpu().to(torch.float64), stable=True).indices
    perm = torch.empty(n, dtype=torch.int64)
    perm[slot_order] = bit_order
    return perm


def bitplane_permutation(num_values: int, bits_per_value: int) -> torch.Tensor:
    """Value-major -> plane-major permutation (all MSBs first).

    Parameters
    ----------
    num_values : int
    bits_per_value : int

    Returns
    -------
    torch.Tensor, int64, shape ``[num_values * bits_per_value]``
        ``perm[p * num_values + v] = v * bits_per_value + p``.

    Example
    -------
    >>> bitplane_permutation(3, 2)
    tensor([0, 2, 4, 1, 3, 5])
    """
    if num_values < 1 or bits_per_value < 1:
        raise ValueError("num_values and bits_per_value must be >= 1")
    idx = torch.arange(num_values * bits_per_value, dtype=torch.int64).reshape(num_values, bits_per_value)
    return idx.t().reshape(-1)


def inverse_permutation(perm: torch.Tensor) -> torch.Tensor:
    """Inverse of a permutation: ``body = sent[:, inverse_permutation(perm)]``.

    Parameters
    ----------
    perm : torch.Tensor, int64, shape ``[n]``

    Returns
    -------
    torch.Tensor, int64, shape ``[n]``

    Example
    -------
    >>> inverse_permutation(torch.tensor([2, 0, 1]))
    tensor([1, 2, 0])
    """
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), dtype=perm.dtype, device=perm.device)
    return inv
