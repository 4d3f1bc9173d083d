"""Adaptive modulation and coding: pick the 5G NR MCS for an SNR.

:func:`select_mcs` maximises the spectral efficiency (throughput) subject to
an expected block error rate at or below a target (10 % by default).  The
expected BLER of each MCS comes from BLER-vs-SNR curves measured with this
project's own bit-true chain over AWGN (5G LDPC with CRC24B, the default
early-stopping decoder, app demapping) by ``python -m phy.calibrate`` and
shipped in ``phy/data/mcs_bler_awgn.csv``.  For a fading channel pass the
effective (AWGN-equivalent) SNR, a :class:`FadingProfile`, or -- for the
calibrated categories (Rayleigh block fading, TDL-A/C at 3 and 30 m/s, LS
estimation; :func:`calibrated_table`) -- the average SNR with that category's
BLER table (``calibration=``), measured over the channel with the same chain
(``python -m phy.calibrate --channel ...``).

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
    "symbol_mutual_information",
    "qam_app_llrs",
    "FadingProfile",
    "max_codeword_bits",
    "MODULATIONS_QAM",
    "McsChoice",
    "BlerCurve",
    "select_mcs",
    "load_calibration",
    "rate_key",
    "CALIBRATION_FILE",
    "calibration_link",
    "calibrated_table",
    "SPEED_TOLERANCE",
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
    :ivar calibration: file name of the BLER table the choice was read
        from (``"mcs_bler_awgn.csv"``, or a fading category's table such as
        ``"mcs_bler_tdl-c_3mps_ls.csv"``); with a :class:`FadingProfile` the
        AWGN table averaged over the profile's codewords.
    :ivar path: ``"table"`` (read off a BLER table at ``snr_db``) or
        ``"profile"`` (MIESM over a measured :class:`FadingProfile`).
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
    calibration: str = CALIBRATION_FILE.name
    path: str = "table"


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


def rate_key(code_rate: float) -> float:
    """The calibration tables' key of a code rate: ``round(rate * 1024, 1)``.

    >>> rate_key(0.5)
    512.0
    """
    return round(code_rate * 1024.0, 1)


def _calibration_path(path: Optional[str] = None) -> Path:
    """The calibration CSV: ``path``, else ``$DISTDIFF_MCS_CALIBRATION``, else :data:`CALIBRATION_FILE`."""
    return Path(path or os.environ.get("DISTDIFF_MCS_CALIBRATION") or CALIBRATION_FILE)


@functools.lru_cache(maxsize=16)   # the AWGN table and every fading category's, read once per process
def load_calibration(path: Optional[str] = None) -> dict[tuple[int, float, int], BlerCurve]:
    """Read a calibration CSV into ``{(bits_per_symbol, rate_x1024, block_length): BlerCurve}``.

    :param path: CSV file; default :data:`CALIBRATION_FILE` (or the
        environment variable ``DISTDIFF_MCS_CALIBRATION``).
    """
    path = _calibration_path(path)
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


@functools.lru_cache(maxsize=32)
def calibration_link(path: str) -> Optional[dict]:
    """The link configuration a calibration CSV was measured over (its ``# link: {json}`` header line:
    every :class:`~phy.LinkConfig` field except the per-curve ones), or `None` (the AWGN file has none)."""
    import json  # pylint: disable=import-outside-toplevel

    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                return None
            if line.startswith("# link:"):
                return json.loads(line[len("# link:"):])
    return None


#: relative speed tolerance of :func:`calibrated_table`: a TDL link at ``speed_mps`` uses a table
#: calibrated at ``v`` when ``|speed_mps - v| <= SPEED_TOLERANCE * v``
SPEED_TOLERANCE = 0.2

#: LinkConfig fields a calibration table's curves vary (or the selection reads), so its ``# link:`` header
#: does not record them
PER_CURVE_FIELDS = ("modulation", "code", "code_rate", "block_length", "mcs", "mcs_table", "target_bler",
                    "max_codewords_per_batch")

#: LinkConfig fields that do not change which calibrated table applies (the speed is matched within
#: :data:`SPEED_TOLERANCE`)
_TABLE_IGNORES = PER_CURVE_FIELDS + ("speed_mps",)


def calibrated_table(config, data_dir: Optional[Path] = None) -> Optional[Path]:
    """The shipped BLER table (``phy/data/mcs_bler_<category>.csv``) calibrated over ``config``'s fading channel,
    or `None`.

    A table applies when it was measured (``python -m phy.calibrate --channel ...``) over the same channel
    model, receiver (CSI mode, LS interpolation, pilots, demapping, decoder) and OFDM numerology and carrier as
    ``config`` -- every :class:`~phy.LinkConfig` field in its ``# link:`` header equal -- at a speed within
    :data:`SPEED_TOLERANCE`, has code blocks of exactly ``config.block_length`` bits and a curve for every
    MCS of ``config.mcs_table`` that 5G LDPC can carry at that block length.  AWGN is not a category here:
    :func:`select_mcs` reads AWGN from :data:`CALIBRATION_FILE` anyway.

    :param config: a :class:`~phy.LinkConfig`.
    :param data_dir: where to look (default ``phy/data``).
    :output path: the CSV, or `None`.

    Example::

        >>> from phy import LinkConfig
        >>> calibrated_table(LinkConfig(channel="tdl-c", speed_mps=3.2, csi="ls")).name
        'mcs_bler_tdl-c_3mps_ls.csv'
        >>> calibrated_table(LinkConfig(channel="tdl-c", speed_mps=10.0, csi="ls")) is None  # no 10 m/s table
        True
    """
    if config.channel in ("awgn", "bsc"):
        return None
    want = config.model_dump(mode="json")
    for path in sorted((data_dir or CALIBRATION_FILE.parent).glob("mcs_bler_*.csv")):
        link = calibration_link(str(path))
        if link is None or link.get("channel") != config.channel:
            continue
        if any(want.get(k) != v for k, v in link.items() if k not in _TABLE_IGNORES):
            continue
        if set(want) - set(link) - set(_TABLE_IGNORES):
            continue  # a field the table does not record (written by an older version)
        v = float(link.get("speed_mps", 0.0))
        if abs(config.speed_mps - v) > SPEED_TOLERANCE * v + 1e-9:
            continue
        curves = load_calibration(str(path))
        k = config.block_length
        k_code = k + CRCS["crc24b"]
        complete = True
        for e in mcs_table(config.mcs_table):
            if e.code_rate < LDPC_RATE_MIN:
                continue
            n = math.ceil(k_code / e.code_rate / e.bits_per_symbol - 1e-9) * e.bits_per_symbol
            if ldpc_support_error(k_code, n) is None and (e.bits_per_symbol, rate_key(e.code_rate), k) not in curves:
                complete = False
                break
        if complete:
            return path
    return None


def select_mcs(
    snr_db: "float | Mapping[str, float] | FadingProfile",
    target_bler: float = 0.1,
    table: int = 1,
    block_length: int = 1024,
    calibration: Optional[str] = None,
) -> McsChoice:
    """The 5G NR MCS with the highest spectral efficiency whose expected BLER
    at ``snr_db`` is at most ``target_bler``.

    :param snr_db: (effective) :math:`E_s/N_0` [dB], or one effective SNR
        per modulation (``{"qpsk": ..., "16qam": ...}``, as
        :func:`effective_snr_db` gives), or a :class:`FadingProfile`: then
        each MCS's expected BLER is the AWGN curve averaged over the
        profile's codewords of that MCS's length (and ``snr_db`` of the
        choice is the median codeword's effective SNR).
    :param target_bler: BLER target in (0, 1).
    :param table: PDSCH MCS table of TS 38.214 (1, 2 or 3).
    :param block_length: information bits per code block; the nearest
        calibrated block length (in log scale) is used.
    :param calibration: calibration CSV (default: the shipped AWGN one).
        A fading category's table (:func:`calibrated_table`, measured over
        that channel with its estimator) makes ``snr_db`` the link's
        *average* SNR: the choice is read off the table directly, the fading
        and the LS estimation loss are in the measured curves.
    :output choice: :class:`McsChoice`.

    Example::

        >>> from phy import select_mcs
        >>> lo, hi = select_mcs(0.0), select_mcs(20.0)
        >>> lo.spectral_efficiency < hi.spectral_efficiency
        True
    """
    profile = snr_db if isinstance(snr_db, FadingProfile) else None
    if profile is not None:
        per_mod = None
    elif isinstance(snr_db, Mapping):
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
        curve = curves.get((e.bits_per_symbol, rate_key(e.code_rate), k_cal))
        if curve is None:
            continue
        if per_mod is not None and e.modulation not in per_mod:
            raise ValueError(f"snr_db has no effective SNR for {e.modulation!r} (MCS table {table})")
        if profile is not None:
            words = n // e.bits_per_symbol
            snr_e = float(np.median(profile.codeword_snr_db(e.modulation, words)))
            bler = profile.expected_bler(curve, e.modulation, words)
        else:
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
        calibration=_calibration_path(calibration).name,
        path="profile" if profile is not None else "table",
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


def _bits_per_symbol(modulation: str) -> int:
    return MODULATIONS_QAM.index(modulation) * 2 + 2


@functools.lru_cache(maxsize=None)
def _pam_axis(bits_per_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Levels of one axis of Sionna's Gray QAM (unit-energy QAM) and, per bit, the indices of levels with bit 1 / 0.

    Sionna's QAM point ``n`` carries ``binary(n)`` MSB first, real part from
    the even bits and imaginary part from the odd bits (``pam_gray``), so
    each axis is a Gray PAM of ``bits_per_axis`` bits.
    """
    from sionna.phy.mapping import pam_gray  # pylint: disable=import-outside-toplevel

    m = bits_per_axis
    labels = np.array([[int(c) for c in np.binary_repr(n, m)] for n in range(2 ** m)])
    levels = np.array([pam_gray(row) for row in labels], dtype=np.float64)
    levels /= math.sqrt(2.0 * np.mean(levels ** 2))            # unit average energy of the QAM
    index = np.stack([np.stack([np.flatnonzero(labels[:, j] == v) for v in (1, 0)]) for j in range(m)])
    return levels, index                                        # [L], [m, 2, L/2]


def qam_app_llrs(symbols_hat: torch.Tensor, noise_var: torch.Tensor, modulation: str) -> torch.Tensor:
    r"""Exact (app) LLRs of Sionna's Gray QAM, computed per axis: the same values as
    ``sionna.phy.mapping.Demapper("app", "qam", Q)`` (to float rounding), 2-16x faster.

    With circular Gaussian noise of variance :math:`N_0` and independent
    real/imaginary labels, the Q-axis terms cancel in each in-phase bit's
    likelihood ratio, so
    :math:`\ell_i = \log\sum_{a: b_i=1} e^{-(y_I-a)^2/N_0} - \log\sum_{a: b_i=0} e^{-(y_I-a)^2/N_0}`
    over the :math:`\sqrt{M}` levels of one axis instead of the :math:`M` points.
    Positive means bit 1 (the project's convention, Sionna's too).

    :param symbols_hat: [..., n] complex64 -- equalised symbols.
    :param noise_var: [..., n] float32 (broadcastable) -- effective noise variance :math:`N_0` per symbol (linear).
    :param modulation: "qpsk", "16qam", "64qam" or "256qam".
    :output llrs: [..., n * Q] float32 -- bit order of Sionna's mapper.

    Example::

        >>> import torch
        >>> from sionna.phy.mapping import Demapper
        >>> y = torch.tensor([[0.3 + 0.9j, -1.1 - 0.2j]], dtype=torch.complex64)
        >>> no = torch.full((1, 2), 0.1)
        >>> bool(torch.allclose(qam_app_llrs(y, no, "16qam"), Demapper("app", "qam", 4)(y, no), atol=1e-4))
        True
    """
    q = _bits_per_symbol(modulation)
    levels, index = _pam_axis(q // 2)
    axes = torch.stack((symbols_hat.real, symbols_hat.imag), dim=-1)            # [..., n, 2]
    lv = torch.as_tensor(levels, dtype=axes.dtype, device=axes.device)
    no = torch.as_tensor(noise_var, dtype=axes.dtype, device=axes.device).expand(symbols_hat.shape)
    metric = -(axes.unsqueeze(-1) - lv) ** 2 / no[..., None, None]                # [..., n, 2, L]
    sums = torch.logsumexp(metric[..., torch.as_tensor(index, device=axes.device)], dim=-1)  # [..., n, 2, m, 2]
    llrs = (sums[..., 0] - sums[..., 1]).transpose(-1, -2)                      # [..., n, m, 2 (re, im)]
    return llrs.reshape(*symbols_hat.shape[:-1], symbols_hat.shape[-1] * q)


def symbol_mutual_information(
    channel: "torch.nn.Module",
    snr_db: float,
    modulation: str,
    num_rows: int,
    symbols_per_row: int,
    seed: int = 0,
    device: "torch.device | str" = "cpu",
) -> np.ndarray:
    r"""Per-symbol information [bit/symbol] of the receiver's own LLRs (mismatched BICM).

    ``num_rows`` rows of ``symbols_per_row`` random ``modulation`` symbols
    (Sionna's Gray QAM) cross ``channel`` (its estimator and equaliser
    included) at ``snr_db``, like a row of codewords in the bit-true chain,
    and are demapped (app) with the equaliser's effective noise variances.
    Each symbol's information is the sum over its bits of the generalised
    mutual information of the LLRs, :math:`1 - \log_2(1 + e^{-s_i \ell_i})`
    with :math:`s_i = \pm 1` the sent bit; averaged over a codeword it
    predicts what the decoder can recover.  Unlike a SINR computed from the
    *estimated* channel, :math:`|\hat h|^2/(N_0 + \sigma_e^2)` (biased high
    where the estimate is noisy, :math:`E|\hat h|^2 = |h|^2 + \sigma_e^2`),
    it counts what channel estimation costs (LS noise spread by the
    interpolation, channel ageing between pilots) and the demapper's
    over-confidence where the estimate is poor.

    :param channel: the symbol channel (a :class:`~phy.Channel`).
    :param snr_db: average :math:`E_s/N_0` [dB].
    :param modulation: "qpsk", "16qam", "64qam" or "256qam".
    :output mi: [num_rows, symbols_per_row] float64 -- bits per symbol (at most ``Q``).

    Example::

        >>> from phy.channels import AwgnChannel
        >>> mi = symbol_mutual_information(AwgnChannel(), 30.0, "qpsk", 2, 100)
        >>> mi.shape, bool(abs(mi.mean() - 2.0) < 1e-3)
        ((2, 100), True)
    """
    from sionna.phy.mapping import Mapper  # pylint: disable=import-outside-toplevel

    q = _bits_per_symbol(modulation)
    bits_gen = torch.Generator(device=device).manual_seed(seed)
    bits = torch.randint(0, 2, (num_rows, symbols_per_row * q), generator=bits_gen, device=device).float()
    with torch.no_grad():
        x = Mapper("qam", q, device=str(device))(bits)
        # the same channel draws and noise for every modulation (same seed)
        out = channel(x, 10.0 ** (-snr_db / 10.0), generator=torch.Generator(device=device).manual_seed(seed + 1))
        no_eff = torch.as_tensor(out.noise_var_eff, dtype=torch.float32, device=x.device).expand(x.shape)
        llr = qam_app_llrs(out.symbols_hat, no_eff, modulation)
        per_bit = 1.0 - torch.nn.functional.softplus(-(2.0 * bits - 1.0) * llr.float()) / math.log(2.0)
    return per_bit.double().reshape(num_rows, symbols_per_row, q).sum(dim=2).cpu().numpy()


def max_codeword_bits(table: int, block_length: int) -> int:
    """Coded bits of the longest codeword (lowest-rate LDPC MCS) of ``table`` for blocks of ``block_length`` bits.

    Example::

        >>> max_codeword_bits(1, 1024)
        8944
    """
    rate = min(e.code_rate for e in mcs_table(table) if e.code_rate >= LDPC_RATE_MIN)
    return math.ceil((block_length + CRCS["crc24b"]) / rate / 2 - 1e-9) * 2


def _mi_to_snr_db(mi: np.ndarray, modulation: str) -> np.ndarray:
    """AWGN-equivalent SNR [dB] of an information per symbol (inverse BICM curve); <= 0 bit -> -30 dB."""
    table = _mi_table(modulation)
    eff = np.interp(np.clip(mi, table[0], table[-1]), table, _MI_GRID_DB)
    return np.where(mi <= table[0], _MI_GRID_DB[0], eff)


@dataclasses.dataclass(frozen=True)
class FadingProfile:
    r"""What a channel gives each codeword, measured once per SNR: the per-symbol information of the receiver's
    LLRs (:func:`symbol_mutual_information`) on rows of consecutive symbols, per modulation.

    :meth:`codeword_snr_db` cuts each row into codewords of a given number
    of symbols (as the bit-true chain lays them out) and maps each
    codeword's mean information back to an AWGN-equivalent SNR (MIESM on
    the LLRs); :func:`select_mcs` averages the AWGN BLER curve over those
    codewords, so the chosen MCS's *expected* BLER over the fading meets the
    target, with the channel-estimation loss included.

    :ivar snr_db: the average :math:`E_s/N_0` [dB] it was measured at.
    :ivar mi: ``{modulation: [rows, symbols] float64}`` bits per symbol.
    """

    snr_db: float
    mi: Mapping[str, np.ndarray]

    @classmethod
    def measure(
        cls,
        channel: "torch.nn.Module",
        snr_db: float,
        max_codeword_bits: int,
        symbols_per_modulation: int = 1 << 18,
        seed: int = 0,
        device: "torch.device | str" = "cpu",
        modulations: tuple[str, ...] = MODULATIONS_QAM,
    ) -> "FadingProfile":
        """Measure ``symbols_per_modulation`` symbols per modulation in rows long enough for a codeword of
        ``max_codeword_bits`` coded bits (the lowest-rate MCS).

        The expected BLER's precision is set by the number of independent
        channel draws (OFDM slots, fading blocks) the rows cover: with 2**17
        QPSK symbols (~150 TDL slots) an expected BLER of 0.13 read 0.09-0.16
        across seeds, with 2**19 0.12-0.14; 2**18 is the default.

        Example::

            >>> from phy.channels import AwgnChannel
            >>> prof = FadingProfile.measure(AwgnChannel(), 3.0, 2048, symbols_per_modulation=4096,
            ...                              modulations=("qpsk",))
            >>> abs(float(prof.codeword_snr_db("qpsk", 1024).mean()) - 3.0) < 0.2  # AWGN: the SNR itself
            True
        """
        mi = {}
        for mod in modulations:
            q = _bits_per_symbol(mod)
            row = max(1, math.ceil(max_codeword_bits / q))
            rows = max(1, math.ceil(symbols_per_modulation / row))
            mi[mod] = symbol_mutual_information(channel, snr_db, mod, rows, row, seed, device)
        return cls(float(snr_db), mi)

    def codeword_snr_db(self, modulation: str, codeword_symbols: int) -> np.ndarray:
        """[codewords] AWGN-equivalent SNR [dB] of each codeword of ``codeword_symbols`` symbols."""
        if modulation not in self.mi:
            raise ValueError(f"this FadingProfile has no measurement for modulation={modulation!r}; "
                             f"measured: {sorted(self.mi)}")
        mi = self.mi[modulation]
        n = max(1, min(int(codeword_symbols), mi.shape[1]))
        per_row = mi.shape[1] // n
        words = mi[:, : per_row * n].reshape(-1, n).mean(axis=1)
        return _mi_to_snr_db(words, modulation)

    def expected_bler(self, curve: "BlerCurve", modulation: str, codeword_symbols: int) -> float:
        """Mean over codewords of the AWGN curve's BLER at each codeword's effective SNR."""
        return float(np.mean([curve.bler_at(float(s)) for s in self.codeword_snr_db(modulation, codeword_symbols)]))


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
    r"""Outage quantile of the per-codeword effective SNR [dB] of a channel (MIESM on the receiver's LLRs).

    For each modulation, ``num_codewords`` codewords of
    ``2 * symbols_per_codeword`` coded bits (as many as
    ``symbols_per_codeword`` QPSK symbols, about one rate-1/2 codeword)
    cross ``channel`` (:func:`symbol_mutual_information`); each codeword's
    mean information is mapped back through the AWGN BICM capacity curve of
    that modulation, :math:`\gamma_{\mathrm{eff}} = I^{-1}(\bar I)`, and the
    ``quantile`` over codewords is returned.  The channel-estimation loss
    enters (see :func:`symbol_mutual_information`).  :func:`select_mcs`
    with a :class:`FadingProfile` is the finer model (codewords of each
    MCS's own length, expected BLER over the fading).  Deterministic.

    :param channel: the symbol channel.
    :param snr_db: average :math:`E_s/N_0` [dB].
    :param symbols_per_codeword: QPSK channel uses of one codeword.
    :param quantile: outage probability (the BLER target).
    :output snr_eff_db: ``{modulation: effective SNR [dB]}``.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    coded_bits = 2 * max(1, int(symbols_per_codeword))
    result = {}
    for mod in modulations:
        n = max(1, coded_bits // _bits_per_symbol(mod))
        mi = symbol_mutual_information(channel, snr_db, mod, num_codewords, n, seed, device)
        result[mod] = float(np.quantile(_mi_to_snr_db(mi.mean(axis=1), mod), quantile))
    return result
