r"""Limits of joint source-channel transmission of a Gaussian source over AWGN.

The source is ``n`` independent real Gaussian components with variances
:math:`\lambda_i` (e.g. the DCT coefficients of a latent, measured by
:func:`dct_variances`); it is sent with ``bandwidth_ratio`` :math:`\rho`
complex channel uses per source value over complex AWGN at ``snr_db``
(:math:`E_s/N_0` per complex symbol, average power 1 per symbol). Each bound
returns the normalised mean-squared error

.. math:: \mathrm{NMSE} = \sum_i D_i \,/\, \sum_i \lambda_i ,

the error relative to the source's own variance (so "send nothing" is 1).

* :func:`opta_nmse` -- the Gaussian OPTA bound: reverse water-filling
  :math:`D_i = \min(\theta, \lambda_i)` at the rate the channel carries,
  :math:`\tfrac1n\sum_i \tfrac12\log_2(\lambda_i/D_i) = \rho\log_2(1+\mathrm{SNR})`
  bits per source value (a complex use carries :math:`\log_2(1+\mathrm{SNR})`
  bits, a real value costs :math:`R(D)=\tfrac12\log_2(\lambda/D)`). For a white
  source :math:`\mathrm{NMSE} = (1+\mathrm{SNR})^{-2\rho}`. It is an upper
  bound on the true OPTA of a non-Gaussian source of the same spectrum (the
  Gaussian is the hardest source for MSE): a learned scheme may beat it.
* :func:`linear_nmse` -- uncoded linear transmission with MMSE decoding for
  :math:`\rho \le 1/2`: the ``K = round(2 rho n)`` strongest components ride one
  real dimension each (two per complex symbol), the rest are dropped
  (estimated by their mean). Per real dimension the power budget is 1 on
  average and the noise variance :math:`1/\mathrm{SNR}`.

  - ``allocation="equal"``: one common gain for every sent component, i.e. the
    source's own spectrum normalised to unit mean power (what
    :class:`latent_codec.AnalogCodec` does): :math:`D_i = \lambda_i /
    (1 + \mathrm{SNR}\, g^2 \lambda_i)`, :math:`g^2 = K / \sum_{sent}\lambda_i`.
  - ``allocation="optimal"``: the best power allocation of a linear scheme
    with MMSE decoding (Lee & Petersen, IEEE Trans. Commun. 24(12), 1976):
    power :math:`q_i = \max(0, \sigma\sqrt{\lambda_i/\mu} - \sigma^2)` with
    :math:`\sigma^2 = 1/\mathrm{SNR}` and :math:`\mu` such that
    :math:`\sum q_i = K`; :math:`D_i = \lambda_i\sigma^2/(q_i+\sigma^2)`.

  A white source at :math:`\rho=1/2` gives :math:`1/(1+\mathrm{SNR})` for both
  allocations, equal to the OPTA bound; always
  ``opta <= linear(optimal) <= linear(equal)``.
* :func:`latent_bounds` -- the three curves for latents ``[N, C, H, W]`` over
  lists of ``bandwidth_ratio`` and ``snr_db`` (a tidy ``pandas.DataFrame``).

Example::

    >>> import numpy as np
    >>> from phy.jscc_bounds import opta_nmse, linear_nmse
    >>> white = np.ones(64)
    >>> round(opta_nmse(white, 0.5, 10.0), 6), round(1 / 11, 6)
    (0.090909, 0.090909)
    >>> round(linear_nmse(white, 0.5, 10.0, "equal"), 6)
    0.090909
    >>> spectrum = 2.0 ** -np.arange(16.0)
    >>> opta_nmse(spectrum, 0.5, 10.0) < linear_nmse(spectrum, 0.5, 10.0, "optimal") \
    ...     < linear_nmse(spectrum, 0.5, 10.0, "equal")
    True
"""

from __future__ import annotations

import math
from typing import Iterable, Literal, Optional, Sequence, Union

import numpy as np

__all__ = ["opta_nmse", "linear_nmse", "dct_variances", "latent_bounds", "nmse_db", "LINEAR_ALLOCATIONS"]

LINEAR_ALLOCATIONS = ("equal", "optimal")
ArrayLike = Union[Sequence[float], np.ndarray]


def _variances(variances: ArrayLike) -> np.ndarray:
    try:
        lam = np.asarray(variances, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"variances must be a sequence of numbers, got {type(variances).__name__}") from None
    if lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam < 0) or not np.any(lam > 0):
        raise ValueError("variances must be finite, >= 0, at least one > 0 (one per source component)")
    return np.sort(lam)[::-1]  # strongest first


def _ratio(bandwidth_ratio: float, linear: bool) -> float:
    if isinstance(bandwidth_ratio, bool) or not isinstance(bandwidth_ratio, (int, float, np.floating)) \
            or not math.isfinite(float(bandwidth_ratio)) or bandwidth_ratio <= 0:
        raise ValueError(f"bandwidth_ratio must be a number > 0 [complex channel uses per source value], "
                         f"got {bandwidth_ratio!r}")
    if linear and bandwidth_ratio > 0.5 + 1e-12:
        raise ValueError(f"bandwidth_ratio must be <= 0.5 for the linear bounds (one real dimension per "
                         f"component), got {bandwidth_ratio!r}")
    return float(bandwidth_ratio)


def _snr(snr_db: float) -> float:
    if isinstance(snr_db, bool) or not isinstance(snr_db, (int, float, np.floating)) \
            or not math.isfinite(float(snr_db)):
        raise ValueError(f"snr_db must be a finite number [dB] (Es/N0 per complex symbol), got {snr_db!r}")
    return 10.0 ** (float(snr_db) / 10.0)


def nmse_db(nmse: Union[float, np.ndarray]) -> Union[float, np.ndarray]:
    """``10 log10(nmse)`` [dB].

    Example::

        >>> nmse_db(0.1)
        -10.0
    """
    out = 10.0 * np.log10(np.asarray(nmse, dtype=np.float64))
    return float(out) if out.ndim == 0 else out


def opta_nmse(variances: ArrayLike, bandwidth_ratio: float, snr_db: float) -> float:
    r"""Gaussian OPTA bound on the NMSE (reverse water-filling at the channel's capacity).

    :param variances: [n] per-component source variances (any order, >= 0).
    :param bandwidth_ratio: :math:`\rho` > 0 [complex channel uses per source value].
    :param snr_db: :math:`E_s/N_0` per complex symbol [dB].
    :output nmse: :math:`\sum_i\min(\theta,\lambda_i)/\sum_i\lambda_i` with the
        water level :math:`\theta` at rate :math:`\rho\log_2(1+\mathrm{SNR})`
        bits per value.

    Example::

        >>> round(opta_nmse([1.0, 1.0], 0.25, 10.0), 6) == round(11 ** -0.5, 6)
        True
    """
    lam = _variances(variances)
    rho, snr = _ratio(bandwidth_ratio, False), _snr(snr_db)
    n = lam.size
    total_bits = n * rho * math.log2(1.0 + snr)  # bits for the whole source
    pos = lam[lam > 0]
    # water level with the j strongest components active: j log2(theta) = sum log2(lam) - 2 * bits
    cum = np.cumsum(np.log2(pos))
    j = np.arange(1, pos.size + 1)
    log_theta = (cum - 2.0 * total_bits) / j
    below_next = np.append(np.log2(pos[1:]), -np.inf)
    valid = (log_theta < np.log2(pos)) & (log_theta >= below_next)
    if not np.any(valid):  # rate 0 (snr -> 0): nothing sent
        return 1.0
    theta = 2.0 ** log_theta[np.nonzero(valid)[0][-1]]
    return float(np.minimum(theta, lam).sum() / lam.sum())


def linear_nmse(variances: ArrayLike, bandwidth_ratio: float, snr_db: float,
                allocation: Literal["equal", "optimal"] = "optimal", *, ranking: Optional[ArrayLike] = None) -> float:
    r"""NMSE of uncoded linear transmission with per-component MMSE decoding.

    :param variances: [n] per-component source variances (any order, >= 0).
    :param bandwidth_ratio: :math:`0 < \rho \le 1/2` [complex channel uses per
        source value]; the ``max(1, round(2 rho n))`` strongest components are sent.
    :param snr_db: :math:`E_s/N_0` per complex symbol [dB].
    :param allocation: ``"equal"`` (one common gain) or ``"optimal"``
        (Lee-Petersen power allocation).
    :param ranking: optional [n] scores of the same components (e.g. their
        variances measured on *other* samples): the ``K`` components with the
        highest scores are sent instead of the ``K`` strongest ``variances``.
        With variances estimated from ``N`` samples, picking the strongest
        *estimates* favours components whose estimate came out high, so the
        default bound is optimistic by a sampling bias (about 0.25 dB at
        ``N = 81``, 0.5 dB at ``N = 32`` for 1024 nearly white components at
        ``rho = 1/8``, 20 dB); a ranking from independent samples removes that
        bias (and is slightly pessimistic: its choice is not the best one).
    :output nmse: normalised MSE.

    Example::

        >>> # the strongest two are sent with g^2 = 2/5: (4/2.6 + 1/1.4) / 5
        >>> round(linear_nmse([4.0, 1.0, 0.0, 0.0], 0.25, 0.0, "equal"), 4)
        0.4505
    """
    if allocation not in LINEAR_ALLOCATIONS:
        raise ValueError(f"allocation must be one of {LINEAR_ALLOCATIONS}, got {allocation!r}")
    lam = _variances(variances)
    rho, snr = _ratio(bandwidth_ratio, True), _snr(snr_db)
    n = lam.size
    k = max(1, min(n, int(round(2.0 * rho * n))))
    if ranking is None:
        sent, dropped = lam[:k], lam[k:].sum()
    else:
        raw = np.asarray(variances, dtype=np.float64).reshape(-1)
        score = np.asarray(ranking, dtype=np.float64).reshape(-1)
        if score.shape != raw.shape or not np.all(np.isfinite(score)):
            raise ValueError(f"ranking must be {raw.size} finite scores (one per component), got shape "
                             f"{list(score.shape)}")
        chosen = np.argsort(-score, kind="stable")[:k]
        mask = np.zeros(n, bool)
        mask[chosen] = True
        sent, dropped = np.sort(raw[mask])[::-1], raw[~mask].sum()
    sigma2 = 1.0 / snr  # noise per real dimension, power budget 1 per dimension on average
    budget = float(k)
    if not np.any(sent > 0):  # only empty components sent (a ranking may choose them)
        dist = sent
    elif allocation == "equal":
        g2 = budget / sent.sum()
        dist = sent / (1.0 + g2 * sent / sigma2)
    else:
        pos = sent[sent > 0]
        root = np.sqrt(pos)
        j = np.arange(1, pos.size + 1)
        # q_i = sigma * sqrt(lam_i) * s - sigma^2 on the j strongest, sum = budget
        s = (budget + j * sigma2) / (math.sqrt(sigma2) * np.cumsum(root))
        valid = root * s > math.sqrt(sigma2)
        jj = int(np.nonzero(valid)[0][-1]) + 1 if np.any(valid) else 1
        q = np.zeros_like(sent)
        q[:jj] = np.maximum(math.sqrt(sigma2) * root[:jj] * s[jj - 1] - sigma2, 0.0)
        dist = sent * sigma2 / (q + sigma2)
    return float((dist.sum() + dropped) / lam.sum())


def dct_variances(latents) -> np.ndarray:
    """Per-coefficient variances of latents after a per-channel orthonormal 2-D DCT-II.

    :param latents: ``[N, C, H, W]`` (torch tensor or NumPy array), ``N >= 2``
        samples of the source.
    :output variances: ``[C*H*W]`` float64 -- the variance over the ``N``
        samples of each DCT coefficient around its own mean (the mean is known
        to both ends and costs nothing); the orthonormal DCT keeps the total,
        so ``variances.sum()`` is the summed per-value variance of the latents.

    The samples must be independent draws of the source. Diffusion states
    that share a sampler seed (e.g. many prompts x a few seeds) share most of
    their noise: it then sits in the per-coefficient means, out of these
    variances, and the few distinct noise fields make the spectrum look far
    from white -- the bounds come out several dB too optimistic (issue 12:
    3-4 dB at ``rho = 1/8``, 20 dB, with 27 prompts x 3 shared seeds). Use one
    seed per state (:func:`pipeline.embedded.latent_nmse.heldout_states`).

    Example::

        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((500, 2, 4, 4))
        >>> v = dct_variances(x)
        >>> v.shape, bool(abs(v.mean() - 1) < 0.05)
        ((32,), True)
    """
    from scipy.fft import dctn  # pylint: disable=import-outside-toplevel

    if hasattr(latents, "detach"):
        latents = latents.detach().to("cpu").double().numpy()
    x = np.asarray(latents, dtype=np.float64)
    if x.ndim != 4 or x.shape[0] < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"latents must be finite with shape [N >= 2, C, H, W], got shape {list(x.shape)}")
    coeffs = dctn(x, type=2, norm="ortho", axes=(-2, -1))
    return coeffs.reshape(x.shape[0], -1).var(axis=0)


def latent_bounds(latents, bandwidth_ratios: Iterable[float], snr_db_list: Iterable[float]):
    """The three NMSE curves of a latent source, for every ``(bandwidth_ratio, snr_db)``.

    :param latents: ``[N, C, H, W]`` samples (torch or NumPy), e.g. the states
        at one shared step ``k``; their spectrum comes from :func:`dct_variances`.
    :param bandwidth_ratios: values of :math:`\\rho` in (0, 1/2]
        [complex channel uses per latent value].
    :param snr_db_list: :math:`E_s/N_0` values [dB].
    :output table: ``pandas.DataFrame`` with one row per pair and columns
        ``bandwidth_ratio, snr_db, opta_nmse, linear_optimal_nmse,
        linear_equal_nmse`` (linear NMSE), their ``*_db`` versions, and
        ``num_samples`` (N).

    Example::

        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((64, 4, 8, 8)) * np.linspace(0.1, 2, 8)
        >>> t = latent_bounds(x, [0.5, 0.125], [0.0, 10.0])
        >>> len(t), bool((t.opta_nmse <= t.linear_optimal_nmse + 1e-12).all())
        (4, True)
    """
    import pandas as pd  # pylint: disable=import-outside-toplevel

    lam = dct_variances(latents)
    n = int(np.asarray(latents.shape)[0])
    rows = []
    for rho in bandwidth_ratios:
        for snr_db in snr_db_list:
            row = {"bandwidth_ratio": float(rho), "snr_db": float(snr_db),
                   "opta_nmse": opta_nmse(lam, rho, snr_db),
                   "linear_optimal_nmse": linear_nmse(lam, rho, snr_db, "optimal"),
                   "linear_equal_nmse": linear_nmse(lam, rho, snr_db, "equal"),
                   "num_samples": n}
            rows.append(row)
    table = pd.DataFrame(rows)
    for col in ("opta_nmse", "linear_optimal_nmse", "linear_equal_nmse"):
        table[col.replace("_nmse", "_nmse_db")] = nmse_db(table[col].to_numpy())
    return table
