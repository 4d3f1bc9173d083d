r"""SNR bookkeeping.

Two quantities, always named with their kind:

* ``snr_db`` -- :math:`E_s/N_0` per received complex symbol (channel use)
  [dB].  Symbols have unit average energy, so the noise variance per complex
  symbol is :math:`N_0 = 10^{-\mathrm{snr\_db}/10}`.  Over fading channels it
  is the *average* received :math:`E_s/N_0` (unit average channel gain).
* ``ebno_db`` -- :math:`E_b/N_0` per *information* bit [dB]:

  .. math::
      \frac{E_b}{N_0} = \frac{E_s}{N_0}\,\frac{1}{m\,R\,(1-\beta)}

  with :math:`m` bits per symbol, :math:`R` the information bits per coded bit
  (code rate including CRC) and :math:`\beta` the fraction of channel uses that
  carry pilots (OFDM pilot overhead; the energy spent on pilots is charged to
  the information bits).
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np

__all__ = [
    "noise_variance_from_snr_db",
    "ebno_db_from_snr_db",
    "snr_db_from_ebno_db",
]

ArrayLike = Union[float, np.ndarray]


def _check(bits_per_symbol: float, code_rate: float, overhead: float) -> float:
    if not bits_per_symbol > 0:
        raise ValueError(f"bits_per_symbol must be positive, got {bits_per_symbol}")
    if not 0.0 < code_rate <= 1.0:
        raise ValueError(f"code_rate must be in (0, 1], got {code_rate}")
    if not 0.0 <= overhead < 1.0:
        raise ValueError(f"overhead must be in [0, 1), got {overhead}")
    return 10.0 * math.log10(bits_per_symbol * code_rate * (1.0 - overhead))


def noise_variance_from_snr_db(snr_db: ArrayLike) -> ArrayLike:
    """Noise variance per complex symbol :math:`N_0` for unit-energy symbols.

    :param snr_db: :math:`E_s/N_0` [dB].
    :output no: :math:`N_0 = 10^{-snr\\_db/10}` (linear).

    Example::

        >>> noise_variance_from_snr_db(10.0)
        0.1
    """
    if isinstance(snr_db, np.ndarray):
        return np.power(10.0, -snr_db.astype(np.float64) / 10.0)
    return 10.0 ** (-float(snr_db) / 10.0)


def ebno_db_from_snr_db(
    snr_db: ArrayLike, bits_per_symbol: float, code_rate: float = 1.0, overhead: float = 0.0
) -> ArrayLike:
    """:math:`E_b/N_0` [dB] of an :math:`E_s/N_0` [dB].

    :param snr_db: :math:`E_s/N_0` per channel use [dB].
    :param bits_per_symbol: coded bits per channel use ``m``.
    :param code_rate: information bits per coded bit ``R``.
    :param overhead: fraction of channel uses spent on pilots ``beta``.
    :output ebno_db: ``snr_db - 10 log10(m R (1 - beta))`` [dB].

    Example::

        >>> round(ebno_db_from_snr_db(3.0, bits_per_symbol=2, code_rate=0.5), 6)
        3.0
    """
    return snr_db - _check(bits_per_symbol, code_rate, overhead)


def snr_db_from_ebno_db(
    ebno_db: ArrayLike, bits_per_symbol: float, code_rate: float = 1.0, overhead: float = 0.0
) -> ArrayLike:
    """Inverse of :func:`ebno_db_from_snr_db`.

    Example::

        >>> round(snr_db_from_ebno_db(0.0, bits_per_symbol=4, code_rate=0.5), 4)
        3.0103
    """
    return ebno_db + _check(bits_per_symbol, code_rate, overhead)
