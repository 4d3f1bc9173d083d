"""Adaptive modulation and coding: pick the 5G NR MCS for an SNR.

:func:`select_mcs` maximises the spectral efficiency (throughput) subject to
an expected block error rate at or below a target (10 % by default).  The
expected BLER of each MCS comes from BLER-vs-SNR curves measured with this
project's own bit-true chain over AWGN (5G LDPC with CRC24B, the default
early-stopping decoder, app demapping) by ``python -m phy.calibrate`` and
shipped in ``phy/data/mcs_bler_awgn.csv``.  For a fading channel pass the
effective (AWGN-equivalent) SNR or a measured post-equalisation SINR.

The curves are made non-increasing in SNR (a conservative envelope) before
use, so the chosen spectral efficiency never decreases when the SNR grows.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
import os
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import torch

from .config import CRCS, LDPC_RATE_MIN, ldpc_support_error
from .mi_tables import MI_GRID_DB, mi_table
from .nr_tables import MCS_TABLES, mcs_table

__all__ = [
    "effective_snr_db",
    "MODULATIONS_QAM",
    "McsChoice",
    "BlerCurve",
    "select_mcs",
    "load_calibration",
    "CALIBRATION_FILE",
]

CALIBRATION_FILE = Path(__file__).resolve().parent / "data" / "mcs_bler_awgn.csv"


@dataclasses.dataclass(frozen=True)
class McsChoice:
    """The MCS :func:`select_mcs` picked.

    :ivar index: MCS index in ``table``.
    :ivar table: MCS table (1, 2 or 3).
    :ivar modulation: "qpsk" ... "256qam".
    :ivar bits_per_symbol: modulation order.
    :ivar code_rate: target code rate of the table.
    :ivar spectral_efficiency: ``bits_per_symbol * code_rate`` [bit/channel use].
    :ivar expected_bler: BLER the calibration predicts at ``snr_db``.
    :ivar required_snr_db: SNR [dB] at which this MCS reaches the target BLER.
    :ivar meets_target: whether ``expected_bler <= target_bler`` (if no MCS
        does, the most robust one is returned with ``meets_target=False``).
    :ivar snr_db: the (effective) SNR [dB] the choice was made at.
    :ivar block_length: the calibrated block length that was used.
    """

    index: int
    table: int
    modulation: str
    bits_per_symbol: int
    code_rate: float
    spectral_efficiency: float
    expected_bler: float
    required_snr_db: float
    meets_target: bool
    snr_db: float
    block_length: int


@dataclasses.dataclass(frozen=True)
class BlerCurve:
    """A measured BLER-vs-SNR curve (non-increasing envelope).

    :ivar snr_db: [P] increasing SNR points [dB].
    :ivar bler: [P] BLER at those points (conservative envelope).
    :ivar blocks: [P] simulated code blocks per point.
    """

    snr_db: np.ndarray
    bler: np.ndarray
    blocks: np.ndarray

    def bler_at(self, snr_db: float) -> float:
        """Expected BLER at ``snr_db``; 1 below the first point, the last
        point's value above the last; log-linear in between."""
        s, b = self.snr_db, self.bler
        if snr_db < s[0]:
            return 1.0
        if snr_db >= s[-1]:
            return float(b[-1])
        floor = 0.5 / self.blocks  # zero-error points: half an error
        logb = np.log(np.maximum(b, floor))
        return float(min(1.0, math.exp(np.interp(snr_db, s, logb))))

    def snr_for_bler(self, target: float) -> float:
        """Smallest SNR [dB] at which :meth:`bler_at` is at most ``target``
        (``inf`` if the curve never gets there)."""
        s, b = self.snr_db, self.bler
        if b[0] <= target:
            return float(s[0])
        floor = 0.5 / self.blocks
        logb = np.log(np.maximum(b, floor))
        lt = math.log(target)
        for i in range(1, len(s)):
            if b[i] <= target:
                if logb[i] == logb[i - 1]:
                    return float(s[i])
                frac = (logb[i - 1] - lt) / (logb[i - 1] - logb[i])
                return float(s[i - 1] + frac * (s[i] - s[i - 1]))
        return math.inf


def _rate_key(code_rate: float) -> float:
    return round(code_rate * 1024.0, 1)


@functools.lru_cache(maxsize=4)
def load_calibration(path: Optional[str] = None) -> dict[tuple[int, float, int], BlerCurve]:
    """Read a calibration CSV into ``{(bits_per_symbol, rate_x1024, block_length): BlerCurve}``.

    :param path: CSV file; default :data:`CALIBRATION_FILE` (or the
        environment variable ``DISTDIFF_MCS_CALIBRATION``).
    """
    path = Path(path or os.environ.get("DISTDIFF_MCS_CALIBRATION") or CALIBRATION_FILE)
    if not path.exists():
        raise ValueError(
            f"MCS calibration table {path} is missing; generate it with `python -m phy.calibrate`"
        )
    rows: dict[tuple[int, float, int], list[tuple[float, float, int]]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(line for line in fh if not line.startswith("#"))
        for r in reader:
            key = (int(r["bits_per_symbol"]), float(r["code_rate_x1024"]), int(r["block_length"]))
            blocks = int(r["blocks"])
            rows.setdefault(key, []).append((float(r["snr_db"]), int(r["block_errors"]) / blocks, blocks))
    curves = {}
    for key, pts in rows.items():
        pts.sort()
        s = np.array([p[0] for p in pts])
        b = np.array([p[1] for p in pts])
        n = np.array([p[2] for p in pts], dtype=np.float64)
        # conservative non-increasing envelope: BLER(s) = max over s' >= s
        b = np.maximum.accumulate(b[::-1])[::-1]
        curves[key] = BlerCurve(s, b, n)
    return curves


def select_mcs(
    snr_db: "float | Mapping[str, float]",
    target_bler: float = 0.1,
    table: int = 1,
    block_length: int = 1024,
    calibration: Optional[str] = None,
) -> McsChoice:
    """The 5G NR MCS with the highest spectral efficiency whose expected BLER
    at ``snr_db`` is at most ``target_bler``.

    :param snr_db: (effective) :math:`E_s/N_0` [dB], or one effective SNR
        per modulation (``{"qpsk": ..., "16qam": ...}``, as
        :func:`effective_snr_db` gives).
    :param target_bler: BLER target in (0, 1).
    :param table: PDSCH MCS table of TS 38.214 (1, 2 or 3).
    :param block_length: information bits per code block; the nearest
        calibrated block length (in log scale) is used.
    :param calibration: calibration CSV (default: the shipped one).
    :output choice: :class:`McsChoice`.

    Example::

        >>> from phy import select_mcs
        >>> lo, hi = select_mcs(0.0), select_mcs(20.0)
        >>> lo.spectral_efficiency < hi.spectral_efficiency
        True
    """
    if isinstance(snr_db, Mapping):
        per_mod = {k: float(v) for k, v in snr_db.items()}
        if not all(math.isfinite(v) for v in per_mod.values()):
            raise ValueError(f"snr_db values must be finite numbers [dB], got {snr_db!r}")
    elif isinstance(snr_db, bool) or not isinstance(snr_db, (int, float)) or not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be a finite number [dB] or a mapping modulation -> dB, got {snr_db!r}")
    else:
        per_mod = None
    if not 0.0 < target_bler < 1.0:
        raise ValueError(f"target_bler must be in (0, 1), got {target_bler}")
    if table not in MCS_TABLES:
        raise ValueError(f"table must be one of {list(MCS_TABLES)}, got {table!r}")
    if not isinstance(block_length, int) or block_length < 1:
        raise ValueError(f"block_length must be a positive integer, got {block_length!r}")
    curves = load_calibration(calibration)
    lengths = sorted({k[2] for k in curves})
    k_cal = min(lengths, key=lambda k: (abs(math.log(k / block_length)), k))
    best = None
    fallback = None
    k_code = block_length + CRCS["crc24b"]
    for e in mcs_table(table):
        if e.code_rate < LDPC_RATE_MIN:
            continue
        n = math.ceil(k_code / e.code_rate / e.bits_per_symbol - 1e-9) * e.bits_per_symbol
        if ldpc_support_error(k_code, n) is not None:
            continue  # 5G LDPC cannot carry this MCS in blocks of this length
        curve = curves.get((e.bits_per_symbol, _rate_key(e.code_rate), k_cal))
        if curve is None:
            continue
        if per_mod is not None and e.modulation not in per_mod:
            raise ValueError(f"snr_db has no effective SNR for {e.modulation!r} (MCS table {table})")
        snr_e = per_mod[e.modulation] if per_mod is not None else float(snr_db)
        bler = curve.bler_at(snr_e)
        cand = (e, bler, curve.snr_for_bler(target_bler), snr_e)
        if bler <= target_bler and (best is None or e.spectral_efficiency > best[0].spectral_efficiency):
            best = cand
        if fallback is None or (bler, e.spectral_efficiency) < (fallback[1], fallback[0].spectral_efficiency):
            fallback = cand
    if fallback is None:
        raise ValueError(f"the MCS calibration has no curves for table {table} and block_length {k_cal}")
    chosen = best or fallback
    e, bler, req, snr_used = chosen
    return McsChoice(
        index=e.index,
        table=table,
        modulation=e.modulation,
        bits_per_symbol=e.bits_per_symbol,
        code_rate=e.code_rate,
        spectral_efficiency=e.spectral_efficiency,
        expected_bler=bler,
        required_snr_db=req,
        meets_target=best is not None,
        snr_db=snr_used,
        block_length=k_cal,
    )


#: SNR grid [dB] of the BICM mutual-information tables used for MIESM (shipped: :mod:`phy.mi_tables`)
_MI_GRID_DB = MI_GRID_DB
MODULATIONS_QAM = ("qpsk", "16qam", "64qam", "256qam")


def _mi_table(modulation: str) -> np.ndarray:
    """BICM mutual information [bit/symbol] of ``modulation`` on :data:`_MI_GRID_DB` (shipped, cached per process)."""
    return mi_table(modulation)


#: probe rows of :func:`effective_snr_db`. 128 rows would cost a quarter but change the choice of the main
#: job's TDL-C link at 20 and 25 dB (MCS 16 vs 15, 22 vs 21), so the probe keeps 512; links of one
#: configuration share it per process instead (:class:`phy.DigitalLink`)
PROBE_CODEWORDS = 512


def effective_snr_db(
    channel: "torch.nn.Module",
    snr_db: float,
    symbols_per_codeword: int,
    quantile: float = 0.1,
    num_codewords: int = PROBE_CODEWORDS,
    seed: int = 0,
    device: "torch.device | str" = "cpu",
    modulations: tuple[str, ...] = MODULATIONS_QAM,
) -> dict[str, float]:
    r"""Outage quantile of the per-codeword effective SINR [dB] of a channel (MIESM).

    ``num_codewords`` rows of ``symbols_per_codeword`` unit-energy QPSK
    symbols cross ``channel`` (a :class:`~phy.channels.SymbolChannel`, with
    its estimator and LMMSE equaliser) at ``snr_db``.  The equaliser's
    effective noise variances give per-symbol SINRs
    :math:`\gamma_i = 1/\sigma^2_i`; for each modulation the row's SINRs are
    averaged in BICM mutual information (MIESM),
    :math:`\gamma_{\mathrm{eff}} = I^{-1}(\overline{I(\gamma_i)})`, and the
    ``quantile`` over rows is returned.  Deterministic (fixed ``seed``).

    :param channel: the symbol channel.
    :param snr_db: average :math:`E_s/N_0` [dB].
    :param symbols_per_codeword: channel uses of one codeword.
    :param quantile: outage probability (the BLER target).
    :output snr_eff_db: ``{modulation: effective SNR [dB]}``.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    gen = torch.Generator(device=device).manual_seed(seed)
    shape = (num_codewords, max(1, int(symbols_per_codeword)))
    re = torch.randint(0, 2, shape, generator=gen, device=device).float() * 2 - 1
    im = torch.randint(0, 2, shape, generator=gen, device=device).float() * 2 - 1
    x = torch.complex(re, im) / math.sqrt(2.0)
    with torch.no_grad():
        out = channel(x, 10.0 ** (-snr_db / 10.0), gen)
    sinr_db = (-10.0 * torch.log10(out.noise_var_eff.double().clamp_min(1e-30))).cpu().numpy()
    sinr_db = np.clip(sinr_db, _MI_GRID_DB[0], _MI_GRID_DB[-1])
    result = {}
    for mod in modulations:
        table = _mi_table(mod)
        mean_mi = np.interp(sinr_db, _MI_GRID_DB, table).mean(axis=1)
        eff = np.interp(mean_mi, table, _MI_GRID_DB)
        result[mod] = float(np.quantile(eff, quantile))
    return result
