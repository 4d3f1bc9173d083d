r"""Closed forms and limits to check the link against.

Error rates (``ebno_db`` is :math:`E_b/N_0` per bit [dB], uncoded):

* :func:`ber_bpsk_awgn` -- BPSK (and Gray QPSK per bit):
  :math:`Q(\sqrt{2E_b/N_0})`.
* :func:`ber_qam_awgn` -- exact BER of Gray-labelled square M-QAM
  (Cho & Yoon, IEEE Trans. Commun. 50(7), 2002); BPSK/QPSK included.
* :func:`ber_bpsk_rayleigh` -- BPSK (and Gray QPSK per bit) over flat
  Rayleigh fading with perfect CSI:
  :math:`\tfrac12\left(1-\sqrt{\gamma/(1+\gamma)}\right)`, :math:`\gamma=E_b/N_0`.

Capacities (``snr_db`` is :math:`E_s/N_0` [dB], complex AWGN):

* :func:`shannon_capacity` -- :math:`\log_2(1+E_s/N_0)` [bit/channel use].
* :func:`constellation_capacity` -- coded-modulation (``"cm"``) or BICM
  (``"bicm"``) capacity of a Gray-labelled constellation exactly as Sionna
  maps it, by Gauss-Hermite quadrature.
* :func:`shannon_ebno_limit_db` and :func:`bicm_ebno_limit_db` -- the
  smallest :math:`E_b/N_0` at which a spectral efficiency (or a modulation and
  code rate) is achievable.
"""

from __future__ import annotations

import functools
import math
from typing import Literal, Union

import numpy as np
from scipy.optimize import brentq
from scipy.special import erfc, logsumexp

from .nr_tables import MODULATIONS

__all__ = [
    "qfunc",
    "ber_bpsk_awgn",
    "ber_qam_awgn",
    "ber_awgn",
    "ber_bpsk_rayleigh",
    "shannon_capacity",
    "shannon_ebno_limit_db",
    "constellation_capacity",
    "constellation_capacity_curve",
    "bicm_ebno_limit_db",
]

ArrayLike = Union[float, np.ndarray]


def qfunc(x: ArrayLike) -> ArrayLike:
    """Gaussian tail function :math:`Q(x) = \\tfrac12\\operatorname{erfc}(x/\\sqrt2)`."""
    return 0.5 * erfc(np.asarray(x, dtype=np.float64) / math.sqrt(2.0))


def _lin(db: ArrayLike) -> np.ndarray:
    return np.power(10.0, np.asarray(db, dtype=np.float64) / 10.0)


def ber_bpsk_awgn(ebno_db: ArrayLike) -> ArrayLike:
    """Uncoded BER of BPSK (= per-bit BER of Gray QPSK) over AWGN.

    :param ebno_db: :math:`E_b/N_0` [dB].
    :output ber: :math:`Q(\\sqrt{2E_b/N_0})`.

    Example::

        >>> float(ber_bpsk_awgn(9.6)) < 1e-5
        True
    """
    return qfunc(np.sqrt(2.0 * _lin(ebno_db)))


def ber_qam_awgn(ebno_db: ArrayLike, bits_per_symbol: int) -> ArrayLike:
    """Exact uncoded BER of Gray-labelled square M-QAM over AWGN.

    Cho & Yoon (2002), eq. (14)-(16); for 1 bit per symbol it is BPSK.

    :param ebno_db: :math:`E_b/N_0` [dB].
    :param bits_per_symbol: 1 (BPSK) or an even number (QPSK, 16-, 64-, 256-QAM).
    :output ber: average bit error probability.
    """
    m = int(bits_per_symbol)
    if m == 1:
        return ber_bpsk_awgn(ebno_db)
    if m < 2 or m % 2:
        raise ValueError(f"bits_per_symbol must be 1 or even, got {bits_per_symbol}")
    big_m = 2**m
    sqrt_m = int(round(math.sqrt(big_m)))
    gamma_b = _lin(ebno_db)
    arg = np.sqrt(3.0 * m * gamma_b / (2.0 * (big_m - 1)))
    total = np.zeros_like(gamma_b)
    for k in range(1, int(math.log2(sqrt_m)) + 1):
        pk = np.zeros_like(gamma_b)
        for i in range(int((1 - 2.0 ** (-k)) * sqrt_m)):
            w = (-1) ** math.floor(i * 2 ** (k - 1) / sqrt_m) * (
                2 ** (k - 1) - math.floor(i * 2 ** (k - 1) / sqrt_m + 0.5)
            )
            pk = pk + w * erfc((2 * i + 1) * arg)
        total = total + pk / sqrt_m
    return total / math.log2(sqrt_m)


def ber_awgn(ebno_db: ArrayLike, modulation: str) -> ArrayLike:
    """Uncoded BER over AWGN of a modulation by name ("bpsk" ... "256qam")."""
    return ber_qam_awgn(ebno_db, _bits(modulation))


def ber_bpsk_rayleigh(ebno_db: ArrayLike) -> ArrayLike:
    """Uncoded BER of BPSK (= Gray QPSK per bit) over flat Rayleigh fading with
    perfect CSI and coherent detection.

    :param ebno_db: average :math:`E_b/N_0` [dB].
    :output ber: :math:`\\tfrac12(1-\\sqrt{\\gamma/(1+\\gamma)})`.
    """
    g = _lin(ebno_db)
    return 0.5 * (1.0 - np.sqrt(g / (1.0 + g)))


def shannon_capacity(snr_db: ArrayLike) -> ArrayLike:
    """Capacity of the complex AWGN channel [bit/channel use]."""
    return np.log2(1.0 + _lin(snr_db))


def shannon_ebno_limit_db(spectral_efficiency: float) -> float:
    """Smallest :math:`E_b/N_0` [dB] at which ``spectral_efficiency``
    [bit/channel use] is achievable over complex AWGN:
    :math:`(2^\\eta-1)/\\eta`.

    Example::

        >>> round(shannon_ebno_limit_db(1.0), 6)
        0.0
        >>> round(shannon_ebno_limit_db(2.0), 3)
        1.761
    """
    eta = float(spectral_efficiency)
    if eta <= 0:
        raise ValueError(f"spectral_efficiency must be positive, got {eta}")
    return 10.0 * math.log10((2.0**eta - 1.0) / eta)


def _bits(modulation: str) -> int:
    try:
        return MODULATIONS[modulation]
    except KeyError:
        raise ValueError(f"modulation must be one of {list(MODULATIONS)}, got {modulation!r}") from None


@functools.lru_cache(maxsize=None)
def _pam_1d(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-energy Gray PAM points and labels [2^bits, bits], as Sionna builds them."""
    from sionna.phy.mapping import pam  # pylint: disable=import-outside-toplevel

    points = np.real(np.asarray(pam(bits, normalize=True))).astype(np.float64)
    labels = ((np.arange(2**bits)[:, None] >> np.arange(bits - 1, -1, -1)[None, :]) & 1).astype(bool)
    return points, labels


@functools.lru_cache(maxsize=None)
def _hermgauss(order: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.hermite.hermgauss(order)


def _capacity_1d(points: np.ndarray, labels: np.ndarray, noise_var, kind: str, order: int) -> np.ndarray:
    """Mutual information of a real constellation in real AWGN of variance
    ``noise_var`` (a scalar or an array: one value per entry)."""
    nv = np.atleast_1d(np.asarray(noise_var, dtype=np.float64))[:, None, None, None]  # [S,1,1,1]
    x, w = _hermgauss(order)
    n = x[None, None, :, None] * np.sqrt(2.0 * nv)  # [S,1,N,1]; E[f(n)] = sum(w f(n)) / sqrt(pi)
    w = w / math.sqrt(math.pi)
    y = points[None, :, None, None] + n  # [S,X,N,1]
    metric = -((y - points[None, None, None, :]) ** 2) / (2.0 * nv)  # [S,X,N,X']
    lse_all = logsumexp(metric, axis=3)  # [S,X,N]
    bits = labels.shape[1]
    if kind == "cm":
        own = -(n[..., 0] ** 2) / (2.0 * nv[..., 0])  # [S,1,N]
        loss = (lse_all - own) / math.log(2.0)
        return bits - np.mean(loss @ w, axis=1)
    total = 0.0
    for i in range(bits):
        same = labels[:, i][:, None] == labels[:, i][None, :]  # [X, X']
        lse_same = logsumexp(np.where(same[None, :, None, :], metric, -np.inf), axis=3)
        total = total + np.mean(((lse_all - lse_same) / math.log(2.0)) @ w, axis=1)
    return bits - total


def constellation_capacity(
    snr_db: float,
    modulation: str,
    kind: Literal["cm", "bicm"] = "bicm",
    order: int = 80,
) -> float:
    """Mutual information of a constellation over complex AWGN [bit/symbol].

    Sionna's square QAM is the product of two Gray PAMs (even bits on the
    real, odd bits on the imaginary part), so its CM and BICM capacities are
    twice those of the PAM in each dimension; BPSK sees only the real noise.
    The expectations are computed by Gauss-Hermite quadrature.

    :param snr_db: :math:`E_s/N_0` [dB] (unit-energy constellation).
    :param modulation: "bpsk" ... "256qam" (Sionna's Gray labelling).
    :param kind: ``"cm"`` (coded modulation, :math:`I(X;Y)`) or ``"bicm"``
        (bit-interleaved coded modulation, :math:`\\sum_i I(B_i;Y)`).
    :param order: Gauss-Hermite nodes.
    :output capacity: [bit/channel use], at most the bits per symbol.

    Example::

        >>> round(constellation_capacity(0.0, "bpsk"), 4)
        0.7215
    """
    return float(constellation_capacity_curve(np.array([float(snr_db)]), modulation, kind, order)[0])


def constellation_capacity_curve(
    snr_db: np.ndarray, modulation: str, kind: Literal["cm", "bicm"] = "bicm", order: int = 80
) -> np.ndarray:
    """:func:`constellation_capacity` for an array of SNRs [dB] at once."""
    if kind not in ("cm", "bicm"):
        raise ValueError(f"kind must be 'cm' or 'bicm', got {kind!r}")
    m = _bits(modulation)
    n0 = np.power(10.0, -np.asarray(snr_db, dtype=np.float64) / 10.0)
    if m == 1:
        points, labels = _pam_1d(1)
        return _capacity_1d(points, labels, n0 / 2.0, kind, order)
    points, labels = _pam_1d(m // 2)
    return 2.0 * _capacity_1d(points * math.sqrt(0.5), labels, n0 / 2.0, kind, order)


def bicm_ebno_limit_db(modulation: str, code_rate: float, kind: Literal["cm", "bicm"] = "bicm") -> float:
    """Smallest :math:`E_b/N_0` [dB] at which rate ``code_rate`` on
    ``modulation`` is achievable with BICM (or coded modulation, ``kind="cm"``).

    Solves ``constellation_capacity(snr_db) = m * code_rate`` (Brent) and
    converts with :math:`E_b/N_0 = E_s/N_0 - 10\\log_{10}(mR)`.

    Example::

        >>> round(bicm_ebno_limit_db("qpsk", 0.5), 2)  # = Shannon: QPSK is 2x BPSK
        0.19
    """
    m = _bits(modulation)
    if not 0.0 < code_rate < 1.0:
        raise ValueError(f"code_rate must be in (0, 1), got {code_rate}")
    target = m * code_rate
    snr_db = brentq(lambda s: constellation_capacity(s, modulation, kind) - target, -20.0, 60.0, xtol=1e-6)
    return snr_db - 10.0 * math.log10(target)
