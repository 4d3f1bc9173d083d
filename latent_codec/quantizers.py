"""Scalar quantiser design for a standard Gaussian source (closed forms).

All integrals use the partial moments of the standard normal density
``phi`` on ``[a, b]``::

    P  = Phi(b) - Phi(a)
    M1 = phi(a) - phi(b)                   (= int x phi)
    M2 = P + a phi(a) - b phi(b)           (= int x^2 phi)

so the squared error of reconstructing ``[a, b]`` by ``y`` is
``M2 - 2 y M1 + y^2 P``. Everything is float64 and cached.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

__all__ = [
    "lloyd_max_gaussian",
    "gaussian_quantizer_mse",
    "gaussian_uniform_loading",
    "codebook_bit_importance",
]

_SQRT2 = math.sqrt(2.0)


def _phi(x: torch.Tensor) -> torch.Tensor:
    out = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return torch.where(torch.isinf(x), torch.zeros_like(x), out)


def _xphi(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isinf(x), torch.zeros_like(x), x * _phi(x))


def _cell_moments(thresholds: torch.Tensor):
    """P, M1, M2 of the L cells delimited by L-1 inner thresholds."""
    inf = torch.tensor([math.inf], dtype=torch.float64)
    edges = torch.cat([-inf, thresholds.to(torch.float64), inf])
    a, b = edges[:-1], edges[1:]
    p = torch.special.ndtr(b) - torch.special.ndtr(a)
    m1 = _phi(a) - _phi(b)
    m2 = p + _xphi(a) - _xphi(b)
    return p, m1, m2


def gaussian_quantizer_mse(levels: torch.Tensor, thresholds: torch.Tensor) -> float:
    """Exact MSE of a scalar quantiser on a standard Gaussian input.

    Parameters
    ----------
    levels : torch.Tensor, shape ``[L]``
        Reconstruction levels, increasing.
    thresholds : torch.Tensor, shape ``[L-1]``
        Cell boundaries, increasing.

    Returns
    -------
    float
        ``E[(X - Q(X))^2]`` for ``X ~ N(0, 1)``.

    Example
    -------
    >>> round(gaussian_quantizer_mse(torch.tensor([-0.7979, 0.7979]), torch.tensor([0.0])), 4)
    0.3634
    """
    p, m1, m2 = _cell_moments(thresholds)
    y = levels.to(torch.float64)
    return float((m2 - 2 * y * m1 + y * y * p).sum())


@lru_cache(maxsize=None)
def _lloyd_max(bits: int):
    num = 2**bits
    # Panter-Dite start: point density ~ phi^(1/3), i.e. quantiles of N(0, 3).
    u = (torch.arange(num, dtype=torch.float64) + 0.5) / num
    y = math.sqrt(3.0) * torch.special.ndtri(u)
    for _ in range(20):  # a few plain Lloyd steps
        p, m1, _ = _cell_moments(0.5 * (y[1:] + y[:-1]))
        y = m1 / p
    # Newton on F(y) = y - centroid(y) = 0 (Lloyd alone converges very slowly
    # for many levels). d c_i / d a = phi(a)(c_i - a)/P_i, d c_i / d b = phi(b)(b - c_i)/P_i.
    prev = math.inf
    for _ in range(50):
        t = 0.5 * (y[1:] + y[:-1])
        p, m1, _ = _cell_moments(t)
        c = m1 / p
        f = y - c
        err = float(torch.max(torch.abs(f)))
        if err < 1e-14 or err > 0.5 * prev:  # converged to float64 precision
            break
        prev = err
        inf = torch.tensor([math.inf], dtype=torch.float64)
        a = torch.cat([-inf, t])
        b = torch.cat([t, inf])
        dca = torch.where(torch.isinf(a), torch.zeros_like(a), _phi(a) * (c - a) / p)
        dcb = torch.where(torch.isinf(b), torch.zeros_like(b), _phi(b) * (b - c) / p)
        jac = torch.diag(1.0 - 0.5 * (dca + dcb))
        if num > 1:
            jac -= torch.diag(0.5 * dca[1:], -1) + torch.diag(0.5 * dcb[:-1], 1)
        step = torch.linalg.solve(jac, f)
        scale = 1.0
        while scale > 1e-6:  # keep the levels increasing
            y_new = y - scale * step
            if bool(torch.all(y_new[1:] > y_new[:-1])):
                break
            scale *= 0.5
        y = y_new
    t = 0.5 * (y[1:] + y[:-1])
    p, _, _ = _cell_moments(t)
    return y, t, p


def lloyd_max_gaussian(bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lloyd-Max (minimum-MSE) quantiser for ``N(0, 1)`` with ``2**bits`` levels.

    Lloyd's iteration (centroid / midpoint conditions) in float64 from a
    Panter-Dite start, iterated to a change below 1e-13.

    Parameters
    ----------
    bits : int
        1..10.

    Returns
    -------
    levels : torch.Tensor, float64, shape ``[2**bits]``
    thresholds : torch.Tensor, float64, shape ``[2**bits - 1]``
    probabilities : torch.Tensor, float64, shape ``[2**bits]``
        ``P(X in cell i)``.

    Example
    -------
    >>> levels, thresholds, probs = lloyd_max_gaussian(2)
    >>> [round(v, 4) for v in levels.tolist()]
    [-1.5104, -0.4528, 0.4528, 1.5104]
    """
    if not isinstance(bits, int) or not 1 <= bits <= 10:
        raise ValueError(f"bits must be an int in [1, 10] for Lloyd-Max, got {bits!r}")
    y, t, p = _lloyd_max(bits)
    return y.clone(), t.clone(), p.clone()


def _uniform_mse(c: float, num: int) -> float:
    delta = 2 * c / num
    if num <= 1024:  # exact
        y = -c + (torch.arange(num, dtype=torch.float64) + 0.5) * delta
        t = -c + torch.arange(1, num, dtype=torch.float64) * delta
        return gaussian_quantizer_mse(y, t)
    # many cells: the inner cells have width delta << 1, where the density is
    # linear to O(delta^2) and their MSE is delta^2/12 each; the two outer
    # cells [c - delta, inf) (level c - delta/2) are integrated exactly.
    a = torch.tensor([c - delta], dtype=torch.float64)
    p, m1, m2 = _cell_moments(a)  # cells (-inf, a], [a, inf)
    y = c - delta / 2
    tail = float(m2[1] - 2 * y * m1[1] + y * y * p[1])
    inner = float(1.0 - 2.0 * p[1])
    return delta * delta / 12.0 * inner + 2.0 * tail


@lru_cache(maxsize=None)
def gaussian_uniform_loading(bits: int) -> float:
    """MSE-optimal clipping factor ``c`` of a mid-rise uniform quantiser for ``N(0, 1)``.

    The quantiser has ``2**bits`` cells of width ``2c / 2**bits`` covering
    ``[-c, c]``; the outer cells extend to infinity. ``c`` minimises the exact
    Gaussian MSE (golden-section search on [0.05, 12]).

    Parameters
    ----------
    bits : int
        1..16.

    Returns
    -------
    float
        Optimal ``c`` [in standard deviations].

    Example
    -------
    >>> round(gaussian_uniform_loading(1), 3)   # = 2 * 0.798: levels at +-E|X|
    1.596
    """
    if not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an int in [1, 16], got {bits!r}")
    num = 2**bits
    lo, hi = 0.05, 12.0
    g = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = _uniform_mse(x1, num), _uniform_mse(x2, num)
    for _ in range(60):
        if f1 < f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = _uniform_mse(x1, num)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = _uniform_mse(x2, num)
    return 0.5 * (lo + hi)


def codebook_bit_importance(levels: torch.Tensor, probabilities: torch.Tensor | None = None) -> torch.Tensor:
    """Expected squared error caused by flipping each bit of a natural-binary index.

    ``importance[j] = sum_i p_i (y_i - y_{i xor 2^(b-1-j)})^2`` for bit ``j``
    (MSB first). For a uniform quantiser with step ``d`` this is
    ``(2^(b-1-j) d)^2`` exactly.

    Parameters
    ----------
    levels : torch.Tensor, shape ``[2**b]``
    probabilities : torch.Tensor or None, shape ``[2**b]``
        Level probabilities (uniform when None).

    Returns
    -------
    torch.Tensor, float32, shape ``[b]``

    Example
    -------
    >>> codebook_bit_importance(torch.arange(4.0))   # step 1, 2 bits
    tensor([4., 1.])
    """
    num = levels.shape[0]
    bits = int(round(math.log2(num)))
    if 2**bits != num:
        raise ValueError(f"number of levels must be a power of two, got {num}")
    y = levels.to(torch.float64)
    p = torch.full_like(y, 1.0 / num) if probabilities is None else probabilities.to(torch.float64)
    idx = torch.arange(num)
    out = [(p * (y - y[idx ^ (1 << (bits - 1 - j))]) ** 2).sum() for j in range(bits)]
    return torch.stack(out).to(torch.float32)
