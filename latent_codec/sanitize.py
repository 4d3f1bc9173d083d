"""Sanitising received latents: nothing non-finite or out of range leaves the codec."""

from __future__ import annotations

import torch

__all__ = ["sanitize"]


def sanitize(
    latents: torch.Tensor,
    low: torch.Tensor | float,
    high: torch.Tensor | float,
    fill: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace non-finite values and clip to ``[low, high]``, counting repairs.

    Parameters
    ----------
    latents : torch.Tensor, shape ``[batch, ...]``
        Any float dtype.
    low, high : torch.Tensor or float
        Range, broadcastable to ``latents`` (e.g. per channel ``[batch, C, 1, 1]``);
        finite, ``low <= high``.
    fill : torch.Tensor or float or None
        Value for NaN/+-Inf entries (both signs: their magnitude is meaningless), broadcastable (e.g. the channel mean);
        default: ``0`` clipped to ``[low, high]``. It is clipped to the range too.

    Returns
    -------
    latents : torch.Tensor, float32, same shape, finite and within ``[low, high]``
    num_repaired : torch.Tensor, int64, shape ``[batch]``
        Entries per batch element that were non-finite or outside the range.

    Example
    -------
    >>> x = torch.tensor([[1.0, float("nan"), 7.0, -float("inf")]])
    >>> sanitize(x, -2.0, 2.0)
    (tensor([[1., 0., 2., 0.]]), tensor([3]))
    """
    if latents.ndim < 1:
        raise ValueError("latents must have a batch dimension")
    x = latents.to(torch.float32)
    low_t = torch.as_tensor(low, dtype=torch.float32, device=x.device)
    high_t = torch.as_tensor(high, dtype=torch.float32, device=x.device)
    if not (torch.isfinite(low_t).all() and torch.isfinite(high_t).all()):
        raise ValueError("sanitize: low and high must be finite")
    if bool((low_t > high_t).any()):
        raise ValueError("sanitize: low must be <= high everywhere")
    low_t, high_t = torch.broadcast_tensors(low_t, high_t)
    if fill is None:
        fill_t = torch.zeros((), dtype=torch.float32, device=x.device)
    else:
        fill_t = torch.nan_to_num(torch.as_tensor(fill, dtype=torch.float32, device=x.device))
    fill_t = torch.minimum(torch.maximum(fill_t, low_t), high_t)
    bad = ~torch.isfinite(x)
    out_of_range = (x < low_t) | (x > high_t)
    repaired = (bad | out_of_range).reshape(x.shape[0], -1).sum(1)
    x = torch.where(bad, fill_t, x)
    x = torch.minimum(torch.maximum(x, low_t), high_t)
    return x, repaired.to(torch.int64)
