"""Uncoded BER of the link against closed forms and an independent modem.

Tolerances are confidence intervals, not fudge factors: bit errors within one
symbol (or one fading block) are dependent, so the variance of the BER
estimate is computed from the per-symbol (per-block) error counts, which are
i.i.d.; the interval is the mean +- Z standard errors (Z = 4.5, a two-sided
false-alarm probability below 1e-5).
"""

import math

import numpy as np
import pytest
import torch

from phy import DigitalLink, LinkConfig, snr_db_from_ebno_db, theory

Z = 4.5


def _ci(errors_per_unit: np.ndarray, bits_per_unit: int) -> tuple[float, float, float]:
    """BER estimate and its Z-sigma interval from i.i.d. per-unit error counts."""
    n = errors_per_unit.size
    mean = errors_per_unit.mean() / bits_per_unit
    se = errors_per_unit.std(ddof=1) / math.sqrt(n) / bits_per_unit
    return mean, mean - Z * se, mean + Z * se


def _simulate(cfg: LinkConfig, snr_db: float, num_bits: int, unit_bits: int, seed: int):
    """Per-unit error counts of an uncoded link (units of ``unit_bits`` bits)."""
    link = DigitalLink(cfg)
    gen = torch.Generator().manual_seed(seed)
    rows = 8
    n = num_bits // rows // unit_bits * unit_bits
    bits = torch.randint(0, 2, (rows, n), generator=gen).float()
    with torch.no_grad():
        res = link(bits, snr_db, gen)
    errs = (res.bits_hat != bits).reshape(-1, unit_bits).sum(dim=1).numpy().astype(np.float64)
    assert res.bit_errors == int(errs.sum())
    return errs, res


@pytest.mark.parametrize(
    "modulation, ebno_db",
    [("bpsk", 4.0), ("qpsk", 4.0), ("16qam", 8.0), ("64qam", 12.0)],
)
def test_uncoded_ber_awgn_matches_closed_form(modulation, ebno_db):
    cfg = LinkConfig(modulation=modulation, code="none", channel="awgn", block_length=4096)
    m = cfg.bits_per_symbol
    snr_db = snr_db_from_ebno_db(ebno_db, m)
    errs, res = _simulate(cfg, snr_db, 600_000, m, seed=1)
    ber, lo, hi = _ci(errs, m)
    expected = float(theory.ber_qam_awgn(ebno_db, m))
    assert lo <= expected <= hi, (modulation, ber, expected, lo, hi)
    # the confidence interval is tight: a 0.3 dB error would fall outside it
    assert hi - lo < 0.3 * expected
    assert res.ebno_db == pytest.approx(ebno_db, abs=1e-9)


@pytest.mark.parametrize("modulation, ebno_db", [("bpsk", 4.0), ("qpsk", 5.0), ("16qam", 8.0), ("64qam", 12.0)])
def test_uncoded_ber_awgn_agrees_with_commpy_modem(modulation, ebno_db):
    """scikit-commpy's modem (its own Gray mapping, hard decisions) over the
    same AWGN channel gives the same BER as the link, within both intervals."""
    commpy = pytest.importorskip("commpy.modulation")
    cfg = LinkConfig(modulation=modulation, code="none", channel="awgn", block_length=4096)
    m = cfg.bits_per_symbol
    snr_db = snr_db_from_ebno_db(ebno_db, m)
    modem = commpy.PSKModem(2) if m == 1 else commpy.QAMModem(2**m)
    rng = np.random.default_rng(7)
    num_sym = 150_000 // m
    tx = rng.integers(0, 2, num_sym * m)
    s = modem.modulate(tx)
    es = np.mean(np.abs(modem.constellation) ** 2)
    n0 = es * 10 ** (-snr_db / 10)
    noise = np.sqrt(n0 / 2) * (rng.standard_normal(s.size) + 1j * rng.standard_normal(s.size))
    rx = modem.demodulate(s + noise, "hard")
    errs_cp = (rx[: tx.size] != tx).reshape(-1, m).sum(axis=1).astype(np.float64)
    ber_cp, lo_cp, hi_cp = _ci(errs_cp, m)
    errs, _ = _simulate(cfg, snr_db, 400_000, m, seed=2)
    ber, lo, hi = _ci(errs, m)
    # the two estimates differ by less than Z standard errors of the difference
    se_diff = math.hypot((hi - ber) / Z, (hi_cp - ber_cp) / Z)
    assert abs(ber - ber_cp) <= Z * se_diff, (ber, ber_cp)
    expected = float(theory.ber_qam_awgn(ebno_db, m))
    assert lo_cp <= expected <= hi_cp, (ber_cp, expected)


@pytest.mark.parametrize("modulation", ["bpsk", "qpsk"])
@pytest.mark.parametrize("ebno_db", [5.0, 15.0])
def test_uncoded_ber_rayleigh_perfect_csi_matches_closed_form(modulation, ebno_db):
    coherence = 10
    cfg = LinkConfig(
        modulation=modulation, code="none", channel="rayleigh", csi="perfect",
        coherence_symbols=coherence, block_length=4096,
    )
    m = cfg.bits_per_symbol
    snr_db = snr_db_from_ebno_db(ebno_db, m)
    # errors are i.i.d. across fading blocks (coherence * m bits), not bits
    errs, _ = _simulate(cfg, snr_db, 640_000, coherence * m, seed=3)
    ber, lo, hi = _ci(errs, coherence * m)
    expected = float(theory.ber_bpsk_rayleigh(ebno_db))
    assert lo <= expected <= hi, (ber, expected, lo, hi)
    assert hi - lo < 0.35 * expected


@pytest.mark.parametrize("ebno_db", [5.0, 15.0])
def test_uncoded_bpsk_rayleigh_ls_csi_matches_closed_form(ebno_db):
    """BPSK with an LS channel estimate from P pilots, h_hat = h + e with
    e ~ CN(0, N0/P): the decision statistic Re(h_hat* y) involves two
    jointly Gaussian variables, so P_b = (1 - mu)/2 with
    mu = 1 / sqrt((1 + N0/P)(1 + N0)) (perfect CSI: P -> inf)."""
    pilots, coherence = 4, 20
    cfg = LinkConfig(modulation="bpsk", code="none", channel="rayleigh", csi="ls",
                     coherence_symbols=coherence, num_pilot_symbols=pilots, block_length=4096)
    n0 = 10 ** (-ebno_db / 10)
    data = coherence - pilots
    errs, res = _simulate(cfg, ebno_db, 480_000, data, seed=4)
    ber, lo, hi = _ci(errs, data)
    expected = 0.5 * (1 - 1 / math.sqrt((1 + n0 / pilots) * (1 + n0)))
    assert lo <= expected <= hi, (ber, expected, lo, hi)
    assert lo > float(theory.ber_bpsk_rayleigh(ebno_db))  # worse than perfect CSI
    # pilots are overhead: channel uses = data symbols (the payload padded to
    # whole code blocks, one bit per BPSK symbol) * coherence / data
    assert res.channel_uses == res.num_blocks * cfg.codeword_length * coherence // data
